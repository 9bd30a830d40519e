//! What the socket-level tests share: a node with the pipe bridge in front of it on loopback,
//! and a client that speaks the protocol's raw bytes.

#![allow(dead_code)] // Each test crate uses its own part of this module.

use std::time::Duration;

use rosetta_bridge_kit::settings::PipeSettings;
use rosetta_db::sea_orm::ConnectionTrait as _;
use rosetta_proto::{
    account::v1::LoginResponse,
    common::v1::{UserRef, user_ref},
    messaging::v1::{
        SubscribeRequest, SubscribeResponse, messaging_service_client::MessagingServiceClient,
        subscribe_response::Item,
    },
    social::v1::{
        RespondFriendRequestRequest, SendFriendRequestRequest, respond_friend_request_request,
        social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{Backend, TestServer, authed};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};
use tonic::{Streaming, transport::Channel};

/// Generous: the machine running the tests is slow and busy.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Bridge {
    pub server: TestServer,
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Bridge {
    /// A node on `backend` and the bridge in front of it. With `last_uid`, the next account
    /// gets uid `last_uid + 1` (the real server's dump leaves its counter at 123).
    pub async fn start(backend: Backend, last_uid: Option<i64>) -> Self {
        Self::start_with(backend, last_uid, PipeSettings::default()).await
    }

    pub async fn start_with(
        backend: Backend,
        last_uid: Option<i64>,
        settings: PipeSettings,
    ) -> Self {
        let server = TestServer::start(backend).await;
        if let Some(last) = last_uid {
            set_next_uid(&server, backend, last).await;
        }
        Self::in_front_of(server, settings).await
    }

    /// The bridge in front of `server` (a node the test configured itself).
    pub async fn in_front_of(server: TestServer, settings: PipeSettings) -> Self {
        let backend = server.backend();
        Self::with_backend(server, backend, settings).await
    }

    /// The bridge reaching `server` through `backend` (e.g. through a relay).
    pub async fn with_backend(
        server: TestServer,
        backend: rosetta_bridge_kit::Backend,
        settings: PipeSettings,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(rosetta_bridge_pipe::serve(
            listener,
            backend,
            settings,
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            server,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn client(&self) -> Client {
        Client {
            stream: TcpStream::connect(self.addr)
                .await
                .expect("connect to bridge"),
            pending: Vec::new(),
        }
    }

    /// A client connecting from `local` (any 127.x.y.z on Linux), so that a test can stand
    /// for several client addresses.
    pub async fn client_from(&self, local: std::net::IpAddr) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::new(local, 0))
            .expect("bind the client address");
        Client {
            stream: socket.connect(self.addr).await.expect("connect to bridge"),
            pending: Vec::new(),
        }
    }

    /// Stops the bridge (closing every connection) and the node.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("bridge stops in time")
                .expect("bridge task");
        }
    }
}

async fn set_next_uid(server: &TestServer, backend: Backend, last: i64) {
    let db = rosetta_db::connect(&server.config.database_url())
        .await
        .expect("test connects to the node's database");
    let statements = match backend {
        Backend::Sqlite => vec![
            "DELETE FROM sqlite_sequence WHERE name = 'users'".to_owned(),
            format!("INSERT INTO sqlite_sequence (name, seq) VALUES ('users', {last})"),
        ],
        Backend::Postgres => vec![format!("SELECT setval('users_id_seq', {last})")],
    };
    for sql in statements {
        db.execute_unprepared(&sql)
            .await
            .expect("set the uid counter");
    }
}

/// A pipe client: one write per command, reads matched against exact expected bytes.
pub struct Client {
    pub stream: TcpStream,
    /// Bytes read but not yet matched (two messages may arrive in one read).
    pending: Vec<u8>,
}

impl Client {
    pub async fn send(&mut self, line: &str) {
        self.send_bytes(line.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to bridge");
    }

    async fn fill(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no reply within {PATIENCE:?} (pending: {:?})",
                    String::from_utf8_lossy(&self.pending)
                )
            })
            .expect("read from bridge");
        assert!(n > 0, "bridge closed the connection");
        self.pending.extend_from_slice(&buf[..n]);
    }

    /// Expects exactly `expected` next (possibly arriving with later messages).
    pub async fn expect(&mut self, expected: &str) {
        let expected = expected.as_bytes();
        while self.pending.len() < expected.len() && expected.starts_with(&self.pending) {
            self.fill().await;
        }
        assert!(
            self.pending.starts_with(expected),
            "expected {:?}, got {:?}",
            String::from_utf8_lossy(expected),
            String::from_utf8_lossy(&self.pending)
        );
        self.pending.drain(..expected.len());
    }

    /// Skips whatever comes before `expected` (for a connection fed garbage whose
    /// leftovers may still produce replies), then consumes it.
    pub async fn recv_until(&mut self, expected: &str) {
        let needle = expected.as_bytes();
        loop {
            if let Some(at) = self.pending.windows(needle.len()).position(|w| w == needle) {
                self.pending.drain(..at + needle.len());
                return;
            }
            self.fill().await;
        }
    }

    /// Expects a message starting with `prefix` (its reason text is the bridge's own).
    pub async fn recv_until_prefix(&mut self, prefix: &str) -> String {
        let text = self.recv().await;
        assert!(
            text.starts_with(prefix),
            "expected {prefix:?}…, got {text:?}"
        );
        text
    }

    /// Everything that arrives in the next read (for replies with unpredictable parts).
    pub async fn recv(&mut self) -> String {
        if self.pending.is_empty() {
            self.fill().await;
        }
        String::from_utf8(std::mem::take(&mut self.pending)).expect("UTF-8 reply")
    }

    /// Asserts that nothing arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        assert!(
            self.pending.is_empty(),
            "unexpected {:?}",
            String::from_utf8_lossy(&self.pending)
        );
        let mut buf = [0u8; 1024];
        if let Ok(read) = tokio::time::timeout(wait, self.stream.read(&mut buf)).await {
            let n = read.expect("read from bridge");
            panic!(
                "expected silence, got {:?}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
    }

    /// Logs in and returns (uid as sent, token, unread count).
    pub async fn login(&mut self, username: &str, password: &str) -> (String, String, u64) {
        self.send(&format!("login|{username}|{password}")).await;
        let reply = self.recv().await;
        let rest = reply
            .strip_prefix("login_succ|登录成功!|")
            .unwrap_or_else(|| panic!("login failed: {reply:?}"));
        let fields: Vec<&str> = rest.split('|').collect();
        assert_eq!(
            fields.len(),
            3,
            "login_succ has uid, token, count: {reply:?}"
        );
        let token = fields[1].to_owned();
        assert_eq!(token.len(), 16);
        assert!(
            token.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{token:?}"
        );
        (
            fields[0].to_owned(),
            token,
            fields[2].parse().expect("unread count"),
        )
    }
}

/// MD5 hex of the example session's passwords, as the client sends them.
pub const MD5_123456: &str = "e10adc3949ba59abbe56e057f20f883e";
pub const MD5_654321: &str = "c33367701511b4f6020ec61ded352059";

/// `user`'s event stream over gRPC, live (its catch-up marker read), and a messaging client.
pub async fn live_events(
    server: &TestServer,
    access_token: &str,
) -> (
    MessagingServiceClient<Channel>,
    Streaming<SubscribeResponse>,
) {
    let mut messaging = MessagingServiceClient::new(server.channel().await);
    let mut events = messaging
        .subscribe(authed(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            access_token,
        ))
        .await
        .expect("subscribe")
        .into_inner();
    loop {
        let item = events.message().await.expect("stream").expect("item").item;
        if matches!(item, Some(Item::CaughtUp(_))) {
            return (messaging, events);
        }
    }
}

/// Two gRPC accounts (plain passwords `<name>-pw`), made friends.
pub async fn grpc_friends(server: &TestServer, a: &str, b: &str) -> (LoginResponse, LoginResponse) {
    let first = server.user(a, &format!("{a}-pw")).await;
    let second = server.user(b, &format!("{b}-pw")).await;
    let id = |login: &LoginResponse| login.user.as_ref().expect("user").id;
    let mut social = SocialServiceClient::new(server.channel().await);
    social
        .send_friend_request(authed(
            SendFriendRequestRequest {
                to: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Id(id(&second))),
                }),
                note: String::new(),
            },
            &first.access_token,
        ))
        .await
        .expect("friend request");
    social
        .respond_friend_request(authed(
            RespondFriendRequestRequest {
                request: Some(respond_friend_request_request::Request::FromUserId(id(
                    &first,
                ))),
                accept: true,
            },
            &second.access_token,
        ))
        .await
        .expect("accepted");
    (first, second)
}
