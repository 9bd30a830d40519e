//! Users of different legacy protocols in one user base, each speaking their own wire format
//! to their own bridge: an IMPS user and a pipe user befriend each other and chat both ways.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use rosetta_bridge_imps::codec::{ClientMessage, Frame, FrameCodec, cmd, decode_gb2312};
use rosetta_bridge_kit::settings::{ImpsSettings, PipeSettings};
use rosetta_proto::{
    account::v1::LookupUserRequest,
    common::v1::{UserRef, user_ref},
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};
use tokio_util::{codec::Framed, sync::CancellationToken};

/// Generous: the machine running the tests is slow and busy.
const PATIENCE: Duration = Duration::from_secs(30);

/// MD5 hex of "123456", as the pipe client sends its password.
const MD5_123456: &str = "e10adc3949ba59abbe56e057f20f883e";

/// Both bridges in front of one node; they stop when dropped.
struct Bridges {
    pipe: std::net::SocketAddr,
    imps: std::net::SocketAddr,
    _closing: tokio_util::sync::DropGuard,
}

async fn bridges(server: &TestServer) -> Bridges {
    let closing = CancellationToken::new();
    let pipe = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let imps = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addrs = (
        pipe.local_addr().expect("addr"),
        imps.local_addr().expect("addr"),
    );
    tokio::spawn(rosetta_bridge_pipe::serve(
        pipe,
        server.backend(),
        PipeSettings::default(),
        closing.clone().cancelled_owned(),
    ));
    tokio::spawn(rosetta_bridge_imps::serve(
        imps,
        server.backend(),
        ImpsSettings::default(),
        closing.clone().cancelled_owned(),
    ));
    Bridges {
        pipe: addrs.0,
        imps: addrs.1,
        _closing: closing.drop_guard(),
    }
}

/// A pipe client: one command per write; each read is one reply or push (the bridge paces
/// its writes, as the protocol has no framing).
struct Pipe(TcpStream);

impl Pipe {
    async fn send(&mut self, line: &str) {
        self.0.write_all(line.as_bytes()).await.expect("pipe write");
    }

    async fn recv(&mut self) -> String {
        let mut buf = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(PATIENCE, self.0.read(&mut buf))
            .await
            .expect("a pipe message in time")
            .expect("pipe read");
        assert!(n > 0, "pipe bridge closed the connection");
        String::from_utf8(buf[..n].to_vec()).expect("UTF-8")
    }
}

/// An IMPS client: `'O''K'` + length-framed binary frames.
struct Imps(Framed<TcpStream, FrameCodec>);

impl Imps {
    async fn send(&mut self, message: ClientMessage) {
        self.0.send(message.encode()).await.expect("IMPS write");
    }

    /// The next frame with command `want`, skipping others (presence pushes and the like).
    async fn recv(&mut self, want: u8) -> Frame {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("an IMPS frame in time")
                .expect("IMPS bridge closed the connection")
                .expect("a well-formed frame");
            if frame.cmd == want {
                return frame;
            }
        }
    }
}

/// Reads a server frame's fields: GB2312 strings with an i64 length, big-endian integers.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }

    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }

    fn string(&mut self) -> String {
        let len = i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"));
        decode_gb2312(self.take(usize::try_from(len).expect("length"))).expect("GB2312")
    }
}

async fn imps_pipe_chat(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridges = bridges(&server).await;

    // Penny registers and logs in on pipe; the bridge answers with her uid.
    let mut penny = Pipe(TcpStream::connect(bridges.pipe).await.expect("connect"));
    penny
        .send(&format!("register|penny|{MD5_123456}|Penny|1|hi|1|cat"))
        .await;
    assert_eq!(penny.recv().await, "register_succ|注册成功！");
    let observer = server.user("observer", "pw").await;
    let uid_of = |name: &str| {
        let request = authed(
            LookupUserRequest {
                user: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Username(name.into())),
                }),
            },
            &observer.access_token,
        );
        async {
            let mut account = server.account().await;
            account
                .lookup_user(request)
                .await
                .expect("lookup")
                .into_inner()
                .id
        }
    };
    let penny_uid = format!("{:05}", uid_of("penny").await);
    penny.send(&format!("login|penny|{MD5_123456}")).await;
    let login = penny.recv().await;
    let token = login
        .strip_prefix(&format!("login_succ|登录成功!|{penny_uid}|"))
        .and_then(|rest| rest.split('|').next())
        .unwrap_or_else(|| panic!("pipe login: {login:?}"))
        .to_owned();

    // Ivan registers and logs in on IMPS.
    let mut ivan = Imps(Framed::new(
        TcpStream::connect(bridges.imps).await.expect("connect"),
        FrameCodec,
    ));
    ivan.send(ClientMessage::Register {
        user: "ivan".into(),
        password: "pw".into(),
        gender: 1,
        email: "ivan@example.cn".into(),
    })
    .await;
    ivan.recv(cmd::S_REGISTER).await;
    ivan.send(ClientMessage::Login {
        user: "ivan".into(),
        password: "pw".into(),
    })
    .await;
    ivan.recv(cmd::S_LOGIN_RSP).await;
    let ivan_uid = format!("{:05}", uid_of("ivan").await);

    // Ivan asks Penny (by user name); Penny sees the request by uid and accepts it.
    ivan.send(ClientMessage::AddFriend {
        user: "ivan".into(),
        friend: "penny".into(),
    })
    .await;
    let request = penny.recv().await;
    assert!(
        request.starts_with(&format!("friend_request|{ivan_uid}|")),
        "{request:?}"
    );
    penny
        .send(&format!(
            "hand_friend_request|{penny_uid}|{ivan_uid}|0|{token}"
        ))
        .await;
    assert_eq!(
        penny.recv().await,
        "hand_friend_request_succ|成功同意请求！"
    );
    let answer = ivan.recv(cmd::S_ADDFRIEND_RSP).await;
    let mut fields = Fields(&answer.body);
    assert_eq!((fields.string(), fields.i32()), ("penny".to_owned(), 1));

    // IMPS → pipe, with Chinese text (GB2312 on one side, UTF-8 on the other).
    ivan.send(ClientMessage::SendMessage {
        user: "ivan".into(),
        friend: "penny".into(),
        text: "你好 penny".into(),
    })
    .await;
    let pushed = penny.recv().await;
    let parts: Vec<&str> = pushed.split('|').collect();
    assert_eq!(parts.len(), 5, "{pushed:?}");
    assert_eq!(
        (parts[0], parts[1], parts[2]),
        ("message", "0", ivan_uid.as_str())
    );
    assert_eq!(parts[4], "你好 penny");

    // pipe → IMPS.
    penny
        .send(&format!(
            "send_message|0|{penny_uid}|{ivan_uid}|20261122080000|hi_ivan|{token}"
        ))
        .await;
    assert_eq!(penny.recv().await, "send_message_succ|发送成功！");
    let message = ivan.recv(cmd::S_SEND_MSG).await;
    let mut fields = Fields(&message.body);
    assert_eq!(fields.string(), "penny");
    assert_eq!(fields.string(), "hi_ivan");
}

both_backends!(imps_and_pipe, super::imps_pipe_chat);
