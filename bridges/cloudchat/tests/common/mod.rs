//! A bridge on an ephemeral loopback port and clients speaking to it the way the Angular
//! (WebSocket) and HarmonyOS (HTTP) clients do.
#![allow(dead_code)]

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use futures::{SinkExt as _, StreamExt as _};
use rosetta_bridge_kit::{Backend, settings::CloudChatSettings};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

/// Generous: the machine is slow and busy.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Bridge {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Bridge {
    /// The bridge as deployed by default: WebSocket clients only, no HTTP sessions.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, CloudChatSettings::default()).await
    }

    /// The bridge with HTTP sessions on (the HarmonyOS client), as on a private network.
    pub async fn start_http(backend: Backend) -> Self {
        let settings = CloudChatSettings {
            http_sessions: true,
            ..CloudChatSettings::default()
        };
        Self::start_with(backend, settings).await
    }

    pub async fn start_with(backend: Backend, settings: CloudChatSettings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(rosetta_bridge_cloudchat::serve(
            listener,
            backend,
            settings,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Shuts the bridge down and waits until it has closed every connection.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("bridge stops in time")
            .expect("bridge task");
    }
}

pub struct Ws {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (inner, _) = tokio::time::timeout(
            PATIENCE,
            tokio_tungstenite::connect_async(format!("ws://{addr}/")),
        )
        .await
        .expect("connect in time")
        .expect("websocket handshake");
        Self { inner }
    }

    pub async fn send(&mut self, text: &str) {
        self.inner
            .send(Message::Text(text.into()))
            .await
            .expect("send frame");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.inner.send(message).await.expect("send frame");
    }

    /// The next text frame, or `None` when the server closed the connection.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.inner.next())
                .await
                .expect("a frame in time");
            match frame {
                Some(Ok(Message::Text(text))) => return Some(text.to_string()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Waits for the server to close the connection; the close frame's code and reason
    /// (`None` for a close without a frame). Panics on a text frame.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.inner.next())
                .await
                .expect("the connection closes in time");
            match frame {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Err(_)) | None => return None,
                Some(Ok(other)) => panic!("a frame instead of the close: {other:?}"),
            }
        }
    }

    pub async fn recv(&mut self) -> String {
        self.next().await.expect("connection open")
    }

    pub async fn recv_json(&mut self) -> Value {
        serde_json::from_str(&self.recv().await).expect("JSON frame")
    }

    /// Sends `request` and returns the next frame.
    pub async fn ask(&mut self, request: &str) -> String {
        self.send(request).await;
        self.recv().await
    }
}

/// One HTTP request as HarmonyOS sends it; returns the status code, content type and body.
pub async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    post_on(stream, path, body).await
}

/// `post` from another client address (`from`, a loopback address such as 127.0.0.2).
pub async fn post_from(
    addr: SocketAddr,
    from: IpAddr,
    path: &str,
    body: &str,
) -> (u16, String, String) {
    post_on(connect_from(addr, from).await, path, body).await
}

/// A TCP connection to `addr` from the local address `from`.
pub async fn connect_from(addr: SocketAddr, from: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind source");
    socket.connect(addr).await.expect("connect")
}

async fn post_on(mut stream: TcpStream, path: &str, body: &str) -> (u16, String, String) {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: cloudchat.infinomat.com:14514\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// The payload of a frame, checking its type.
pub fn payload(frame: &str, kind: &str) -> Value {
    let value: Value = serde_json::from_str(frame).expect("JSON frame");
    assert_eq!(value["type"], kind, "{frame}");
    value["payload"].clone()
}

/// A CloudChat token: 15–19 characters from '!' to '~'.
pub fn assert_token(token: &str) {
    assert!((15..=19).contains(&token.len()), "{token:?}");
    assert!(token.bytes().all(|b| (33..=126).contains(&b)), "{token:?}");
}

/// A C ctime() string with its newline.
pub fn assert_ctime(text: &str) {
    assert_eq!(text.len(), 25, "{text:?}");
    assert!(text.ends_with('\n'), "{text:?}");
    let weekday = &text[..3];
    assert!(
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&weekday),
        "{text:?}"
    );
}

/// JSON string escaping, as in the frames.
pub fn js(text: &str) -> String {
    serde_json::to_string(text).expect("string")
}

/// Registers a user over a fresh WebSocket and returns (user id, token).
pub async fn register(addr: SocketAddr, name: &str, password: &str) -> (i64, String) {
    let mut ws = Ws::connect(addr).await;
    let reply = ws
        .ask(&format!(
            r#"{{"type":"REGISTER","payload":{{"username":"{name}","password":"{password}","email":"{name}@example.com"}}}}"#
        ))
        .await;
    let p = payload(&reply, "REGISTER_SUCCESS");
    (
        p["userId"].as_i64().expect("userId"),
        p["token"].as_str().expect("token").to_owned(),
    )
}

/// Logs `name` in on a fresh WebSocket; returns the socket (bound to the user) and the id.
pub async fn login(addr: SocketAddr, name: &str, password: &str) -> (Ws, i64) {
    let mut ws = Ws::connect(addr).await;
    let reply = ws
        .ask(&format!(
            r#"{{"type":"LOGIN","payload":{{"username":"{name}","password":"{password}"}}}}"#
        ))
        .await;
    let id = payload(&reply, "LOGIN_SUCCESS")["userId"]
        .as_i64()
        .expect("userId");
    (ws, id)
}

/// `a` (user `from`) asks user `to`; returns the request id.
pub async fn ask_friend(a: &mut Ws, from: i64, to: i64) -> i64 {
    let reply = a
        .ask(&format!(
            r#"{{"type":"ADD_FRIEND_REQUEST","payload":{{"id":-1,"requesterId":{from},"requesterUsername":"","requesterAvatar":"default.png","targetId":{to},"targetUsername":"","targetAvatar":"default.png","status":"pending"}}}}"#
        ))
        .await;
    payload(&reply, "FRIEND_REQUEST_ADDED")["id"]
        .as_i64()
        .expect("request id")
}

/// `a` (user `from`) asks `b` (user `to`) and `b` accepts; every frame of it is consumed.
pub async fn befriend(a: &mut Ws, from: i64, b: &mut Ws, to: i64) {
    let fr = ask_friend(a, from, to).await;
    payload(&b.recv().await, "ADD_FRIEND_REQUEST");
    let accepted = b
        .ask(&format!(
            r#"{{"type":"ACCEPT_FRIEND_REQUEST","payload":{{"id":{fr}}}}}"#
        ))
        .await;
    payload(&accepted, "FRIEND_REQUEST_ACCEPTED");
    payload(&b.recv().await, "CONTACT_ADDED");
    payload(&a.recv().await, "ACCEPT_FRIEND_REQUEST");
    payload(&a.recv().await, "CONTACT_ADDED");
}

/// Alice (`secret1`) and bob (`secret2`) registered, logged in on WebSockets and made friends:
/// (alice's id, her socket, bob's id, his socket).
pub async fn logged_in_friends(addr: SocketAddr) -> (i64, Ws, i64, Ws) {
    let (alice, _) = register(addr, "alice", "secret1").await;
    let (bob, _) = register(addr, "bob", "secret2").await;
    let (mut a, _) = login(addr, "alice", "secret1").await;
    let (mut b, _) = login(addr, "bob", "secret2").await;
    befriend(&mut a, alice, &mut b, bob).await;
    (alice, a, bob, b)
}

/// `contact`'s `online` flag in the CONTACTS_LOADED that `ws` (user `me`) gets.
pub async fn contact_online(ws: &mut Ws, me: i64, contact: i64) -> bool {
    let reply = ws
        .ask(&format!(
            r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{me}}}}}"#
        ))
        .await;
    let contacts = payload(&reply, "CONTACTS_LOADED")["contacts"].clone();
    contacts
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["contactId"] == contact)
        .expect("the contact is listed")["online"]
        .as_bool()
        .expect("online flag")
}

/// Changes `name`'s password over gRPC (a login of its own, then ChangePassword), which ends
/// every other session of the user.
pub async fn change_password(
    server: &rosetta_testkit::TestServer,
    name: &str,
    old: &str,
    new: &str,
) {
    use rosetta_proto::account::v1::{
        ChangePasswordRequest, LoginRequest, PasswordScheme, login_request::Identifier,
    };
    let mut account = server.account().await;
    let session = account
        .login(LoginRequest {
            identifier: Some(Identifier::Username(name.into())),
            password: old.into(),
            password_scheme: PasswordScheme::Plain.into(),
            client: "test".into(),
        })
        .await
        .expect("login")
        .into_inner();
    account
        .change_password(rosetta_testkit::authed(
            ChangePasswordRequest {
                current_password: old.into(),
                current_scheme: PasswordScheme::Plain.into(),
                new_password: new.into(),
                new_scheme: PasswordScheme::Plain.into(),
            },
            &session.access_token,
        ))
        .await
        .expect("change password");
}
