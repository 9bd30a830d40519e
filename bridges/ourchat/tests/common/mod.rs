//! A bridge on loopback in front of a test node, and a WebSocket client that sends exact
//! bytes and reads JSON replies with generous timeouts.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use futures::{SinkExt as _, StreamExt as _};
use rosetta_bridge_kit::settings::OurChatSettings;
use rosetta_proto::{
    account::v1::{
        LoginRequest, LoginResponse, PasswordScheme, account_service_client::AccountServiceClient,
        login_request::Identifier,
    },
    common::v1::{UserRef, user_ref},
    social::v1::{
        RespondFriendRequestRequest, SendFriendRequestRequest,
        respond_friend_request_request::Request as Respond,
        social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{TestServer, authed};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
};
use tokio_tungstenite::{
    WebSocketStream, client_async,
    tungstenite::{Message, protocol::frame::coding::CloseCode},
};

pub const PATIENCE: Duration = Duration::from_secs(30);

/// `hex(SHA-256("123456"))`, the note's example password as the client sends it.
pub const HASH_123456: &str = "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92";

/// A running bridge; dropping it shuts the bridge down.
pub struct Bridge {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

pub async fn bridge(server: &TestServer) -> Bridge {
    bridge_with(server, OurChatSettings::default()).await
}

pub async fn bridge_with(server: &TestServer, settings: OurChatSettings) -> Bridge {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(rosetta_bridge_ourchat::serve(
        listener,
        server.backend(),
        settings,
        async {
            let _ = stopped.await;
        },
    ));
    Bridge { addr, _stop: stop }
}

pub fn sha256_hex(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

pub struct Client {
    pub ws: WebSocketStream<TcpStream>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (ws, _) = tokio::time::timeout(PATIENCE, client_async(format!("ws://{addr}/"), tcp))
            .await
            .expect("handshake in time")
            .expect("handshake");
        Self { ws }
    }

    /// Sends `text` as one text frame, byte for byte.
    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next text frame, parsed.
    pub async fn recv(&mut self) -> Value {
        let text = tokio::time::timeout(PATIENCE, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => return text.to_string(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("expected a text frame, got {other:?}"),
                }
            }
        })
        .await
        .expect("a reply in time");
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("reply {text:?}: {err}"))
    }

    /// Sends `text` and returns the reply.
    pub async fn call(&mut self, text: &str) -> Value {
        self.send(text).await;
        self.recv().await
    }

    /// Proves nothing is queued before the answer to a status request: the next frame is
    /// the `{"code":12}` reply.
    pub async fn assert_nothing_pending(&mut self) {
        let reply = self.call(r#"{"code": 12}"#).await;
        assert_eq!(reply["code"], 12, "unexpected frame {reply}");
    }

    /// Waits for the bridge to close the connection and returns the close code.
    pub async fn closed(&mut self) -> Option<CloseCode> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                    Some(Ok(Message::Text(text))) => panic!("unexpected frame {text}"),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
        .expect("closed in time")
    }

    /// Registers through the real client's sequence (12, 14, 4); returns the ocid.
    pub async fn register_real(&mut self, email: &str, password: &str) -> String {
        assert_eq!(self.call(r#"{"code": 12}"#).await["status"], 0);
        assert_eq!(self.call(r#"{"code": 14}"#).await["status"], 0);
        let reply = self
            .call(&format!(
                r#"{{"code": 4, "email": "{email}", "password": "{}"}}"#,
                sha256_hex(password)
            ))
            .await;
        assert_eq!(reply["status"], 0, "register {reply}");
        reply["ocid"].as_str().expect("ocid string").to_owned()
    }

    /// Logs in with the real client's frame (no pushes).
    pub async fn login_real(&mut self, account: &str, password: &str) -> Value {
        let login_type = i32::from(!account.contains('@'));
        self.call(&format!(
            r#"{{"code": 6, "login_type": {login_type}, "account": "{account}", "password": "{}"}}"#,
            sha256_hex(password)
        ))
        .await
    }

    /// Registers in the seed document's form (with `time` and `name`); returns the ocid.
    pub async fn register_doc(&mut self, email: &str, password: &str, name: &str) -> String {
        let reply = self
            .call(&format!(
                r#"{{"code": 4, "time": 1722441600, "email": "{email}", "password": "{}", "name": "{name}"}}"#,
                sha256_hex(password)
            ))
            .await;
        assert_eq!(reply["state"], 0, "register {reply}");
        reply["ocid"].as_str().expect("ocid string").to_owned()
    }

    /// Logs in with the seed document's frame (with `time`: pushes on).
    pub async fn login_doc(&mut self, account: &str, password: &str) {
        let login_type = i32::from(!account.contains('@'));
        let reply = self
            .call(&format!(
                r#"{{"code": 6, "time": 1722441600, "login_type": {login_type}, "account": "{account}", "password": "{}"}}"#,
                sha256_hex(password)
            ))
            .await;
        assert_eq!(reply["state"], 0, "login {reply}");
    }
}

pub fn is_ocid(ocid: &str) -> bool {
    ocid.len() == 10 && ocid.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// An OurChat account's gRPC login (the bridge stores SHA-256 verifiers).
pub async fn grpc_login(server: &TestServer, ocid: &str, password: &str) -> LoginResponse {
    AccountServiceClient::new(server.channel().await)
        .login(LoginRequest {
            identifier: Some(Identifier::Ocid(ocid.to_owned())),
            password: sha256_hex(password),
            password_scheme: PasswordScheme::Sha256Hex.into(),
            client: "test".into(),
        })
        .await
        .expect("login over gRPC")
        .into_inner()
}

/// `a` asks and `b` accepts over gRPC: OurChat itself has no friend commands.
pub async fn befriend(server: &TestServer, a: &LoginResponse, b: &LoginResponse) {
    let mut social = SocialServiceClient::new(server.channel().await);
    social
        .send_friend_request(authed(
            SendFriendRequestRequest {
                to: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Id(b.user.as_ref().expect("user").id)),
                }),
                note: String::new(),
            },
            &a.access_token,
        ))
        .await
        .expect("friend request");
    social
        .respond_friend_request(authed(
            RespondFriendRequestRequest {
                request: Some(Respond::FromUserId(a.user.as_ref().expect("user").id)),
                accept: true,
            },
            &b.access_token,
        ))
        .await
        .expect("accept");
}
