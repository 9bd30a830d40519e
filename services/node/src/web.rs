//! Rosetta Web, the browser client: its files (built from `web/` and embedded in the binary, so
//! that running Rosetta needs no Node toolchain), the small HTTP server `rosetta all` serves
//! them with, and which web origins the gRPC listener lets call it over gRPC-Web.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context as _;
use axum::{
    Router,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use rosetta_kit::server::AllowedOrigins;
use serde::{Deserialize, Serialize};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

const INDEX: &str = include_str!("../../../web/dist/index.html");
const APP_JS: &str = include_str!("../../../web/dist/app.js");
const APP_CSS: &str = include_str!("../../../web/dist/app.css");

/// The page loads only its own files, and talks to the gRPC listener (another port, or another
/// host when `grpc_web.public_url` says so).
const CSP: &str = "default-src 'self'; connect-src 'self' http: https:; img-src 'self' data: blob:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Browsers calling the gRPC listener.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcWebSettings {
    /// Web origins (`http://host:port`) whose pages may call over gRPC-Web. Empty: the web
    /// client's own origins, derived from `web_listen`; every other origin is refused.
    pub allowed_origins: Vec<String>,
    /// The gRPC address as browsers reach it (e.g. `https://chat.example.com:443` behind a
    /// proxy), told to the web client. Empty: the page's own host at the gRPC listener's port.
    pub public_url: String,
}

impl GrpcWebSettings {
    /// The configured origins, or the ones the web client is served from.
    pub fn origins(&self, web_listen: &str) -> anyhow::Result<AllowedOrigins> {
        let origins = if self.allowed_origins.is_empty() {
            own_origins(web_listen)?
        } else {
            self.allowed_origins.clone()
        };
        AllowedOrigins::new(&origins).context("grpc_web.allowed_origins")
    }
}

/// `web_listen`, or `None` when it is empty (no web client).
pub fn listen_addr(web_listen: &str) -> anyhow::Result<Option<SocketAddr>> {
    let web_listen = web_listen.trim();
    if web_listen.is_empty() {
        return Ok(None);
    }
    web_listen
        .parse()
        .map(Some)
        .with_context(|| format!("web_listen {web_listen:?} is not an address (ip:port)"))
}

/// The origins a browser shows for pages served on `web_listen`: its address, and for a
/// loopback or any-address listener also `localhost`. Pages reached by another name (a
/// LAN address, a domain) need `grpc_web.allowed_origins`.
fn own_origins(web_listen: &str) -> anyhow::Result<Vec<String>> {
    let Some(addr) = listen_addr(web_listen)? else {
        return Ok(Vec::new());
    };
    let port = addr.port();
    let ip = addr.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        let mut origins = vec![
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
        ];
        if ip.is_ipv6() {
            origins.push(format!("http://[::1]:{port}"));
        }
        return Ok(origins);
    }
    Ok(vec![format!("http://{addr}")])
}

/// The web client being served; [`WebServer::stop`] ends it.
pub struct WebServer {
    closing: CancellationToken,
    task: JoinHandle<()>,
}

impl WebServer {
    /// Binds `web_listen` (a taken port fails the start) and serves the client, telling it
    /// where the gRPC listener (`grpc_addr`) is. `None` when `web_listen` is empty.
    pub async fn start(
        web_listen: &str,
        settings: &GrpcWebSettings,
        grpc_addr: SocketAddr,
    ) -> anyhow::Result<Option<Self>> {
        let Some(addr) = listen_addr(web_listen)? else {
            return Ok(None);
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the web client to {addr}"))?;
        tracing::info!(addr = ?listener.local_addr().ok(), "web client listening");
        let config = page_config(&settings.public_url, grpc_addr);
        let closing = CancellationToken::new();
        let task = tokio::spawn(serve(listener, config, closing.clone().cancelled_owned()));
        Ok(Some(Self { closing, task }))
    }

    /// Stops accepting and lets open requests finish, for at most `grace`.
    pub async fn stop(self, grace: Duration) {
        self.closing.cancel();
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!(?grace, "web client connections still open; dropping them");
            task.abort();
        }
    }
}

/// What the page reads from `/config.json`: where to send its calls.
fn page_config(public_url: &str, grpc_addr: SocketAddr) -> String {
    let public_url = public_url.trim().trim_end_matches('/');
    // A listener on a loopback or any address is reached by the page's own host name; one on
    // a specific address by that address.
    let url = if !public_url.is_empty() {
        public_url.to_owned()
    } else if grpc_addr.ip().is_loopback() || grpc_addr.ip().is_unspecified() {
        String::new()
    } else {
        format!("http://{grpc_addr}")
    };
    serde_json::json!({ "grpcUrl": url, "grpcPort": grpc_addr.port() }).to_string()
}

async fn serve(
    listener: TcpListener,
    config: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/index.html",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/config.json",
            get(move || async move { asset("application/json", config) }),
        );
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%err, "web client server failed");
    }
}

fn asset(content_type: &'static str, body: impl Into<String>) -> Response {
    let mut response = body.into().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The files change with the binary; revalidating costs little on a small client.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

#[cfg(test)]
// figment's Jail fixes the closures' error type to figment::Error.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::{Config, config::Overrides};

    #[test]
    fn the_environment_sets_the_origins_and_an_empty_web_listen() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ROSETTA_WEB_LISTEN", "");
            jail.set_env(
                "ROSETTA_GRPC_WEB__ALLOWED_ORIGINS",
                r#"["https://chat.example", "http://10.0.0.2:8080"]"#,
            );
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                listen_addr(&config.web_listen).map_err(|e| e.to_string())?,
                None
            );
            let origins = config
                .grpc_web
                .origins(&config.web_listen)
                .map_err(|e| e.to_string())?;
            let expected = AllowedOrigins::new(["https://chat.example", "http://10.0.0.2:8080"])
                .map_err(|e| e.to_string())?;
            assert_eq!(origins, expected);
            Ok(())
        });
    }

    #[test]
    fn the_own_origins_follow_web_listen_and_empty_turns_the_client_off() {
        assert_eq!(
            own_origins("127.0.0.1:8080").expect("valid"),
            ["http://127.0.0.1:8080", "http://localhost:8080"]
        );
        assert_eq!(
            own_origins("10.1.2.3:80").expect("valid"),
            ["http://10.1.2.3:80"]
        );
        assert!(own_origins("").expect("valid").is_empty());
        assert!(listen_addr("nonsense").is_err());
    }

    #[test]
    fn the_page_reaches_a_loopback_listener_by_its_own_host() {
        let loopback = page_config("", "127.0.0.1:50051".parse().expect("addr"));
        // Compared as values: key order depends on serde_json's features in the build.
        let loopback: serde_json::Value = serde_json::from_str(&loopback).expect("json");
        assert_eq!(
            loopback,
            serde_json::json!({"grpcPort": 50051, "grpcUrl": ""})
        );
        let public = page_config(
            "https://chat.example/",
            "0.0.0.0:50051".parse().expect("addr"),
        );
        assert!(
            public.contains(r#""grpcUrl":"https://chat.example""#),
            "{public}"
        );
    }
}
