//! What the IMPS bridge's socket tests share: a bridge on a loopback port, a raw-bytes client,
//! and the steps most tests start with.
#![allow(dead_code)]

use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt as _;
use rosetta_bridge_imps::codec::{ClientMessage, Frame, FrameCodec, cmd};
use rosetta_bridge_kit::settings::ImpsSettings;
use rosetta_proto::{
    messaging::v1::{
        SubscribeRequest, SubscribeResponse, event::Kind,
        messaging_service_client::MessagingServiceClient, subscribe_response::Item,
    },
    social::v1::{
        RespondFriendRequestRequest, respond_friend_request_request::Request as Respond,
        social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{TestServer, authed};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};
use tonic::Streaming;

/// Generous: the machine is slow and busy.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).expect("hex"))
        .collect()
}

/// A bridge on an ephemeral loopback port, stopped when dropped.
pub struct Bridge {
    pub addr: std::net::SocketAddr,
    _stop: oneshot::Sender<()>,
}

pub async fn bridge(server: &TestServer, heartbeat_timeout_ms: u64) -> Bridge {
    bridge_with(
        server,
        ImpsSettings {
            heartbeat_timeout_ms,
            ..ImpsSettings::default()
        },
    )
    .await
}

pub async fn bridge_with(server: &TestServer, settings: ImpsSettings) -> Bridge {
    bridge_on(server.backend(), settings).await
}

/// A bridge reaching the services through `backend` (e.g. one counting its calls).
pub async fn bridge_on(backend: rosetta_bridge_kit::Backend, settings: ImpsSettings) -> Bridge {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let settings = ImpsSettings {
        listen: addr,
        ..settings
    };
    tokio::spawn(rosetta_bridge_imps::serve(
        listener,
        backend,
        settings,
        async move {
            let _ = stopped.await;
        },
    ));
    Bridge { addr, _stop: stop }
}

/// One IMPS client connection, speaking raw bytes.
pub struct Client {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

impl Client {
    pub async fn connect(bridge: &Bridge) -> Self {
        Self {
            stream: TcpStream::connect(bridge.addr).await.expect("connect"),
            buf: BytesMut::new(),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub async fn send(&mut self, message: ClientMessage) {
        self.send_raw(&wire(&message.encode())).await;
    }

    /// The next frame, raw (header included); panics after the patience runs out.
    pub async fn recv_raw(&mut self) -> Vec<u8> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if self.buf.len() >= 6 {
                    let len =
                        i32::from_be_bytes([self.buf[2], self.buf[3], self.buf[4], self.buf[5]]);
                    let total = 6 + len as usize;
                    if self.buf.len() >= total {
                        return self.buf.split_to(total).to_vec();
                    }
                }
                let n = self.stream.read_buf(&mut self.buf).await.expect("read");
                assert!(n > 0, "connection closed while waiting for a frame");
            }
        })
        .await
        .expect("a frame in time")
    }

    /// The next frame with command `cmd`, skipping others (e.g. presence pushes).
    pub async fn recv_cmd(&mut self, cmd: u8) -> Vec<u8> {
        loop {
            let frame = self.recv_raw().await;
            if frame[6] == cmd {
                return frame;
            }
        }
    }

    /// The next S_STATUS_NOTIFY about `user` saying `status`.
    pub async fn recv_status(&mut self, user: &str, status: u8) -> Vec<u8> {
        loop {
            let frame = self.recv_cmd(cmd::S_STATUS_NOTIFY).await;
            let mut f = Fields::of(&frame);
            if f.string() == user && f.u8() == status {
                return frame;
            }
        }
    }

    /// Asserts that the bridge closes the connection (after any frames it still sends).
    pub async fn expect_closed(&mut self) {
        let closed = tokio::time::timeout(PATIENCE, async {
            loop {
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the bridge kept the connection open");
    }

    /// A round trip proving the connection still serves: a friend-list request and its reply.
    pub async fn friend_list(&mut self, user: &str) -> Vec<u8> {
        self.send(ClientMessage::FriendList { user: user.into() })
            .await;
        self.recv_cmd(cmd::S_FRIENDLIST_REFURBISH_RSP).await
    }
}

/// Reads the fields of a server frame (after its command byte).
pub struct Fields<'a>(pub &'a [u8]);

impl<'a> Fields<'a> {
    pub fn of(frame: &'a [u8]) -> Self {
        Self(&frame[7..])
    }
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }
    pub fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    pub fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    pub fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    pub fn f64(&mut self) -> f64 {
        f64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    pub fn bytes(&mut self) -> &'a [u8] {
        let len = self.i64() as usize;
        self.take(len)
    }
    pub fn string(&mut self) -> String {
        rosetta_bridge_imps::codec::decode_gb2312(self.bytes()).expect("GB2312")
    }
}

pub fn register(user: &str, password: &str) -> ClientMessage {
    ClientMessage::Register {
        user: user.into(),
        password: password.into(),
        gender: 0,
        email: format!("{user}@x.cn"),
    }
}

/// Registers `user` on its own connection, as the client's registration screen does.
pub async fn register_user(bridge: &Bridge, user: &str) {
    let mut c = Client::connect(bridge).await;
    c.send(register(user, "pw")).await;
    assert_eq!(c.recv_raw().await[6], cmd::S_REGISTER, "{user} registered");
}

pub async fn login(bridge: &Bridge, user: &str, password: &str) -> Client {
    let mut c = Client::connect(bridge).await;
    c.send(ClientMessage::Login {
        user: user.into(),
        password: password.into(),
    })
    .await;
    let reply = c.recv_raw().await;
    assert_eq!(reply[6], cmd::S_LOGIN_RSP, "{user} logged in: {reply:02x?}");
    c
}

/// Makes `a` and `b` friends over IMPS: `a` asks, `b` accepts.
pub async fn befriend(a: &mut Client, a_name: &str, b: &mut Client, b_name: &str) {
    a.send(ClientMessage::AddFriend {
        user: a_name.into(),
        friend: b_name.into(),
    })
    .await;
    let request = b.recv_cmd(cmd::S_ADDFRIEND_REQ).await;
    assert_eq!(Fields::of(&request).string(), a_name);
    b.send(ClientMessage::AnswerFriend {
        user: b_name.into(),
        friend: a_name.into(),
        accept: true,
    })
    .await;
    let answer = a.recv_cmd(cmd::S_ADDFRIEND_RSP).await;
    let mut f = Fields::of(&answer);
    assert_eq!((f.string(), f.i32()), (b_name.to_owned(), 1));
}

pub fn is_wall_time(text: &str) -> bool {
    chrono_like(text, "dddd-dd-dd dd:dd:dd")
}

/// Whether `text` has `pattern`'s shape, `d` standing for a digit.
pub fn chrono_like(text: &str, pattern: &str) -> bool {
    text.len() == pattern.len()
        && text.bytes().zip(pattern.bytes()).all(|(t, p)| {
            if p == b'd' {
                t.is_ascii_digit()
            } else {
                t == p
            }
        })
}

pub fn wire(frame: &Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    tokio_util::codec::Encoder::encode(&mut FrameCodec, frame.clone(), &mut out).expect("encode");
    out.to_vec()
}

pub async fn events(server: &TestServer, token: &str) -> Streaming<SubscribeResponse> {
    let mut client = MessagingServiceClient::new(server.channel().await);
    let mut stream = client
        .subscribe(authed(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("subscribe")
        .into_inner();
    // Live events follow the catch-up marker.
    loop {
        let item = stream.message().await.expect("stream").expect("open");
        if matches!(item.item, Some(Item::CaughtUp(_))) {
            return stream;
        }
    }
}

pub async fn next_event(
    stream: &mut Streaming<SubscribeResponse>,
    want: fn(&Kind) -> bool,
) -> Kind {
    tokio::time::timeout(PATIENCE, async {
        while let Some(item) = stream.next().await {
            if let Some(Item::Event(event)) = item.expect("event").item
                && let Some(kind) = event.kind
                && want(&kind)
            {
                return kind;
            }
        }
        panic!("stream ended");
    })
    .await
    .expect("event in time")
}

/// The IMPS user `name` asks the gRPC user `friend` (holding `token`, whose events are
/// `stream`) to be friends, and `friend` accepts over gRPC. Returns the IMPS user's id.
pub async fn befriend_over_grpc(
    server: &TestServer,
    imps: &mut Client,
    name: &str,
    friend: &str,
    token: &str,
    stream: &mut Streaming<SubscribeResponse>,
) -> i64 {
    imps.send(ClientMessage::AddFriend {
        user: name.into(),
        friend: friend.into(),
    })
    .await;
    let Kind::FriendRequestReceived(request) =
        next_event(stream, |k| matches!(k, Kind::FriendRequestReceived(_))).await
    else {
        unreachable!()
    };
    let id = request.from.expect("from").id;
    SocialServiceClient::new(server.channel().await)
        .respond_friend_request(authed(
            RespondFriendRequestRequest {
                request: Some(Respond::FromUserId(id)),
                accept: true,
            },
            token,
        ))
        .await
        .expect("accept");
    id
}
