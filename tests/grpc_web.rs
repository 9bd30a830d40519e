//! Browsers on the gRPC listener: gRPC-Web calls over HTTP/1.1 (as a browser without TLS
//! makes them, spoken here byte by byte) and over HTTP/2, the `Subscribe` stream live over
//! gRPC-Web without holding a place of the concurrency limit, and the CORS policy: the web
//! client's own origins get the allow headers, any other origin none.

use std::{net::SocketAddr, time::Duration};

use http_body_util::BodyExt as _;
use prost::Message as _;
use rosetta_proto::{
    account::v1::{GetMyProfileRequest, PasswordScheme, RegisterRequest, RegisterResponse, User},
    common::v1::{UserRef, user_ref},
    messaging::v1::{SubscribeRequest, SubscribeResponse, event, subscribe_response::Item},
    social::v1::{SendFriendRequestRequest, social_service_client::SocialServiceClient},
};
use rosetta_testkit::{Backend, TestServer, authed};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tower::Service as _;

/// Generous: the machines running the tests are slow and busy.
const PATIENCE: Duration = Duration::from_secs(30);
/// The origin the web client is served from by default (`web_listen` 127.0.0.1:8080).
const OWN_ORIGIN: &str = "http://localhost:8080";
const OTHER_ORIGIN: &str = "http://elsewhere.example";

/// A message as one gRPC-Web data frame.
fn frame(message: &impl prost::Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// One frame of a gRPC-Web response body.
#[derive(Debug)]
enum Frame {
    Data(Vec<u8>),
    Trailer(String),
}

/// Takes the first whole frame off `body`, if there is one.
fn take_frame(body: &mut Vec<u8>) -> Option<Frame> {
    if body.len() < 5 {
        return None;
    }
    let len = u32::from_be_bytes(body[1..5].try_into().expect("4 bytes")) as usize;
    if body.len() < 5 + len {
        return None;
    }
    let flags = body[0];
    let payload = body[5..5 + len].to_vec();
    body.drain(..5 + len);
    Some(if flags & 0x80 != 0 {
        Frame::Trailer(String::from_utf8(payload).expect("ASCII trailer"))
    } else {
        Frame::Data(payload)
    })
}

/// An HTTP/1.1 exchange on its own connection, read as it arrives.
struct Http1 {
    stream: TcpStream,
    raw: Vec<u8>,
    status: u16,
    headers: Vec<(String, String)>,
    chunked: bool,
    body: Vec<u8>,
}

impl Http1 {
    async fn send(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        stream.write_all(body).await.expect("write");
        let mut exchange = Self {
            stream,
            raw: Vec::new(),
            status: 0,
            headers: Vec::new(),
            chunked: false,
            body: Vec::new(),
        };
        exchange.read_head().await;
        exchange
    }

    /// Reads more bytes; false at the end of the connection.
    async fn fill(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut buf))
            .await
            .expect("the server answers in time")
            .expect("read");
        self.raw.extend_from_slice(&buf[..n]);
        n > 0
    }

    async fn read_head(&mut self) {
        let end = loop {
            if let Some(at) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            assert!(self.fill().await, "connection closed before the head");
        };
        let head = String::from_utf8(self.raw[..end].to_vec()).expect("ASCII head");
        self.raw.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        self.status = status_line[9..12].parse().expect("status code");
        for line in lines {
            let (name, value) = line.split_once(':').expect("header line");
            self.headers
                .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        self.chunked = self
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Moves the next piece of body from the raw bytes; false at the end of the body.
    async fn more_body(&mut self) -> bool {
        if !self.chunked {
            let had = self.raw.len();
            self.body.append(&mut self.raw);
            return had > 0 || self.fill().await;
        }
        loop {
            if let Some(line) = self.raw.windows(2).position(|w| w == b"\r\n") {
                let size = std::str::from_utf8(&self.raw[..line]).expect("chunk size");
                let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
                if self.raw.len() >= line + 2 + size + 2 {
                    self.body
                        .extend_from_slice(&self.raw[line + 2..line + 2 + size]);
                    self.raw.drain(..line + 2 + size + 2);
                    return size > 0;
                }
            }
            if !self.fill().await {
                return false;
            }
        }
    }

    /// The next gRPC-Web frame of the body; `None` at its end.
    async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = take_frame(&mut self.body) {
                return Some(frame);
            }
            if !self.more_body().await {
                return take_frame(&mut self.body);
            }
        }
    }
}

/// A gRPC-Web call over HTTP/1.1 from the web client's origin.
async fn grpc_web(
    addr: SocketAddr,
    path: &str,
    token: &str,
    request: &impl prost::Message,
) -> Http1 {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![
        ("content-type", "application/grpc-web+proto"),
        ("x-grpc-web", "1"),
        ("origin", OWN_ORIGIN),
    ];
    if !token.is_empty() {
        headers.push(("authorization", bearer.as_str()));
    }
    Http1::send(addr, "POST", path, &headers, &frame(request)).await
}

/// Reads a unary answer: one message, then a trailer with status 0.
async fn unary<T: prost::Message + Default>(mut exchange: Http1) -> T {
    assert_eq!(exchange.status, 200);
    assert_eq!(
        exchange.header("access-control-allow-origin"),
        Some(OWN_ORIGIN)
    );
    let Some(Frame::Data(message)) = exchange.next_frame().await else {
        panic!("no message; headers {:?}", exchange.headers);
    };
    let Some(Frame::Trailer(trailer)) = exchange.next_frame().await else {
        panic!("no trailer");
    };
    assert!(trailer.contains("grpc-status:0"), "{trailer:?}");
    T::decode(message.as_slice()).expect("decodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_and_the_event_stream_work_over_grpc_web_on_http1() {
    // One place only: an open Subscribe must not hold it.
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.grpc_max_concurrent_requests = 1;
    })
    .await;
    let register = RegisterRequest {
        username: "wendy".into(),
        password: "pw-wendy".into(),
        password_scheme: PasswordScheme::Plain.into(),
        nickname: "Wendy".into(),
        ..Default::default()
    };
    let path = "/rosetta.account.v1.AccountService/Register";
    let registered: RegisterResponse =
        unary(grpc_web(server.addr, path, "", &register).await).await;
    assert_eq!(registered.user.expect("user").username, "wendy");

    let wendy = server.user("wendy2", "pw").await;
    let other = server.user("otto", "pw").await;
    let path = "/rosetta.messaging.v1.MessagingService/Subscribe";
    let mut stream = grpc_web(
        server.addr,
        path,
        &wendy.access_token,
        &SubscribeRequest::default(),
    )
    .await;
    assert_eq!(stream.status, 200);
    let next_event = async |stream: &mut Http1| -> Item {
        let Some(Frame::Data(data)) = stream.next_frame().await else {
            panic!("the stream ended");
        };
        SubscribeResponse::decode(data.as_slice())
            .expect("decodes")
            .item
            .expect("an item")
    };
    assert!(matches!(next_event(&mut stream).await, Item::CaughtUp(_)));

    // The open stream takes no place: another call goes through meanwhile.
    let path = "/rosetta.account.v1.AccountService/GetMyProfile";
    let me: User = unary(
        grpc_web(
            server.addr,
            path,
            &wendy.access_token,
            &GetMyProfileRequest {},
        )
        .await,
    )
    .await;
    assert_eq!(me.username, "wendy2");

    // Live delivery on the HTTP/1.1 stream.
    let mut social = SocialServiceClient::new(server.channel().await);
    let to = UserRef {
        r#ref: Some(user_ref::Ref::Username("wendy2".into())),
    };
    social
        .send_friend_request(authed(
            SendFriendRequestRequest {
                to: Some(to),
                note: "hi".into(),
            },
            &other.access_token,
        ))
        .await
        .expect("friend request");
    loop {
        if let Item::Event(event) = next_event(&mut stream).await
            && let Some(event::Kind::FriendRequestReceived(request)) = event.kind
        {
            assert_eq!(request.from.expect("from").username, "otto");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_works_over_http2_too() {
    let server = TestServer::start(Backend::Sqlite).await;
    let user = server.user("hilda", "pw").await;
    let mut channel = server.channel().await;
    let request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "{}/rosetta.account.v1.AccountService/GetMyProfile",
            server.endpoint()
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("authorization", format!("Bearer {}", user.access_token))
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from(frame(&GetMyProfileRequest {})),
        )))
        .expect("request");
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .expect("ready");
    let response = tokio::time::timeout(PATIENCE, channel.call(request))
        .await
        .expect("in time")
        .expect("answer");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(
        response.headers()["content-type"],
        "application/grpc-web+proto"
    );
    let mut body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    let Some(Frame::Data(message)) = take_frame(&mut body) else {
        panic!("no message");
    };
    assert_eq!(
        User::decode(message.as_slice()).expect("user").username,
        "hilda"
    );
    assert!(
        matches!(take_frame(&mut body), Some(Frame::Trailer(t)) if t.contains("grpc-status:0"))
    );
}

/// A CORS preflight for a gRPC-Web call from `origin`.
async fn preflight(addr: SocketAddr, origin: &str) -> Http1 {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "content-type,x-grpc-web,authorization",
        ),
    ];
    Http1::send(
        addr,
        "OPTIONS",
        "/rosetta.account.v1.AccountService/Login",
        &headers,
        &[],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_web_clients_origins_may_call() {
    let server = TestServer::start(Backend::Sqlite).await;
    for origin in [OWN_ORIGIN, "http://127.0.0.1:8080"] {
        let allowed = preflight(server.addr, origin).await;
        assert_eq!(allowed.status, 200);
        assert_eq!(allowed.header("access-control-allow-origin"), Some(origin));
        let headers = allowed
            .header("access-control-allow-headers")
            .expect("allowed headers");
        for needed in ["content-type", "x-grpc-web", "authorization"] {
            assert!(headers.contains(needed), "{headers}");
        }
        assert!(
            allowed
                .header("access-control-allow-methods")
                .is_some_and(|m| m.contains("POST"))
        );
    }
    let denied = preflight(server.addr, OTHER_ORIGIN).await;
    assert_eq!(denied.header("access-control-allow-origin"), None);

    // The call itself from another origin is answered (CORS is the browser's to enforce) but
    // without the header that would let a page read it.
    let headers = [
        ("content-type", "application/grpc-web+proto"),
        ("x-grpc-web", "1"),
        ("origin", OTHER_ORIGIN),
    ];
    let body = frame(&GetMyProfileRequest {});
    let path = "/rosetta.account.v1.AccountService/GetMyProfile";
    let call = Http1::send(server.addr, "POST", path, &headers, &body).await;
    assert_eq!(call.header("access-control-allow-origin"), None);
    let exposed = grpc_web(server.addr, path, "", &GetMyProfileRequest {}).await;
    assert!(
        exposed
            .header("access-control-expose-headers")
            .is_some_and(|h| h.contains("grpc-status")),
        "{:?}",
        exposed.headers
    );

    // Configured origins replace the default ones.
    let configured = TestServer::start_with(Backend::Sqlite, |config| {
        config.grpc_web.allowed_origins = vec![OTHER_ORIGIN.into()];
    })
    .await;
    let allowed = preflight(configured.addr, OTHER_ORIGIN).await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some(OTHER_ORIGIN)
    );
    let denied = preflight(configured.addr, OWN_ORIGIN).await;
    assert_eq!(denied.header("access-control-allow-origin"), None);
}
