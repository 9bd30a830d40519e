//! The gRPC server every role runs: the Rosetta services it was given, plus standard health
//! (`grpc.health.v1`) and reflection (v1 and v1alpha, for older `grpcurl`) for exactly those
//! services, shut down gracefully on a signal. Every call runs in a span continuing the
//! caller's trace ([`crate::trace`]), within the server's [`Limits`] ([`crate::guard`]), and is
//! measured ([`crate::rpc_metrics`]). Browsers call the same listener with gRPC-Web, from the
//! allowed origins only ([`crate::grpc_web`]).

use std::{convert::Infallible, future::Future};

use tokio::net::TcpListener;
use tonic::{
    body::Body,
    server::NamedService,
    service::{Routes, RoutesBuilder},
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;

pub use crate::grpc_web::AllowedOrigins;
pub use crate::guard::Limits;
use crate::guard::{Exempt, GuardLayer};

/// Services to serve on one listener.
#[derive(Default)]
pub struct ServiceSet {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    limits: Limits,
    origins: AllowedOrigins,
}

/// What [`serve`] serves: the routes, the limits they are served within and the web origins
/// that may call them.
pub struct Served {
    routes: Routes,
    limits: Limits,
    origins: AllowedOrigins,
}

impl ServiceSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves the services within `limits` (none by default).
    pub fn with_limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }

    /// Lets web pages from `origins` call over gRPC-Web (none by default).
    pub fn with_allowed_origins(self, origins: AllowedOrigins) -> Self {
        Self { origins, ..self }
    }

    /// Adds a service; its name is reported SERVING by health and listed by reflection.
    pub fn add<S>(&mut self, service: S) -> &mut Self
    where
        S: tower_service::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// The routes, with health and reflection added.
    pub async fn into_routes(mut self) -> Result<Served, tonic_reflection::server::Error> {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        for name in &self.names {
            reporter
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(rosetta_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                // Not a service: the `google.rpc` messages errors carry as details, so that
                // reflection clients decode `ErrorInfo` and `RetryInfo`.
                .register_encoded_file_descriptor_set(rosetta_proto::ERROR_DETAILS_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health");
            for name in &self.names {
                builder = builder.with_service_name(*name);
            }
            builder
        };
        let v1 = reflection().build_v1()?;
        let v1alpha = reflection().build_v1alpha()?;
        self.routes
            .add_service(health)
            .add_service(v1)
            .add_service(v1alpha);
        Ok(Served {
            routes: self.routes.routes(),
            limits: self.limits,
            origins: self.origins,
        })
    }
}

/// Serves `served` on `listener` until `shutdown` completes, then drains open calls.
pub async fn serve(
    listener: TcpListener,
    served: Served,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let local = listener.local_addr().ok();
    let Served {
        routes,
        limits,
        origins,
    } = served;
    tracing::info!(addr = ?local, ?limits, ?origins, "gRPC listening");
    let guard = GuardLayer::new(
        limits,
        Exempt::streaming_requests_of(&[rosetta_proto::FILE_DESCRIPTOR_SET]),
    );
    Server::builder()
        // gRPC-Web from browsers comes over HTTP/1.1 as well as HTTP/2.
        .accept_http1(true)
        .tcp_nodelay(true)
        .trace_fn(crate::trace::server_span)
        // Outermost, so that preflights are answered and every answer is marked for its origin;
        // then gRPC-Web becomes gRPC, which the metrics, the guard and the routes see alike.
        .layer(origins.cors())
        .layer(tonic_web::GrpcWebLayer::new())
        // Outside the guard, so that calls it refuses or cuts are counted too.
        .layer(metered())
        .layer(guard)
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

/// The per-RPC metrics of every method a node may serve.
fn metered() -> crate::rpc_metrics::MetricsLayer {
    crate::rpc_metrics::MetricsLayer::new(&[
        rosetta_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ])
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
