//! Prometheus metrics as an operator scrapes them: the real `rosetta all` binary with its
//! metrics endpoint on a loopback port, some gRPC traffic (register, a refused login, a login,
//! a group message to a subscribed user) and a pipe-bridge login over a socket; then
//! `GET /metrics` shows the per-RPC series, the messaging and the bridge series, non-zero.

mod clients;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use clients::{PATIENCE, Pipe, process::Rosetta};
use rosetta_proto::{
    account::v1::{
        LoginRequest, PasswordScheme, RegisterRequest,
        account_service_client::AccountServiceClient, login_request::Identifier,
    },
    messaging::v1::{
        MessageKind, SendMessageRequest, SubscribeRequest,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
        subscribe_response::Item,
    },
    social::v1::{CreateGroupRequest, social_service_client::SocialServiceClient},
};
use rosetta_testkit::authed;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

/// A free loopback address (bound, read, released): the exporter binds its own listener.
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// `GET /metrics` over a plain socket: the body of the answer.
async fn scrape(addr: SocketAddr) -> String {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: rosetta\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("a scrape answered in time")
        .expect("scrape");
    let answer = String::from_utf8(answer).expect("UTF-8 exposition");
    assert!(answer.starts_with("HTTP/1.1 200"), "scrape: {answer}");
    answer
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn value(exposition: &str, name: &str, labels: &[&str]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        let matches = (rest.is_empty() || rest.starts_with('{'))
            && labels.iter().all(|label| rest.contains(label));
        matches.then(|| value.parse().ok()).flatten()
    })
}

/// What the test expects to see non-zero, by name and labels.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "rosetta_grpc_requests_total",
        &[r#"method="Register""#, r#"code="OK""#],
    ),
    (
        "rosetta_grpc_requests_total",
        &[r#"method="Login""#, r#"code="UNAUTHENTICATED""#],
    ),
    (
        "rosetta_grpc_requests_total",
        &[
            r#"service="rosetta.messaging.v1.MessagingService""#,
            r#"method="SendMessage""#,
            r#"code="OK""#,
        ],
    ),
    (
        "rosetta_grpc_requests_total",
        &[r#"method="Subscribe""#, r#"code="OK""#],
    ),
    (
        "rosetta_grpc_request_duration_seconds_count",
        &[r#"method="SendMessage""#],
    ),
    // Buckets, not a summary: the exporter was given them.
    (
        "rosetta_grpc_request_duration_seconds_bucket",
        &[r#"method="Login""#, r#"le="30""#],
    ),
    ("rosetta_grpc_streams_open", &[r#"method="Subscribe""#]),
    ("rosetta_messages_sent_total", &[]),
    ("rosetta_messages_delivered_total", &[]),
    ("rosetta_messaging_event_streams_open", &[]),
    ("rosetta_messaging_users_online", &[]),
    ("rosetta_messaging_writer_batch_size_count", &[]),
    ("rosetta_bridge_connections_total", &[r#"bridge="pipe""#]),
    (
        "rosetta_bridge_frames_in_total",
        &[r#"bridge="pipe""#, r#"command="login""#],
    ),
    (
        "rosetta_bridge_frames_out_total",
        &[r#"bridge="pipe""#, r#"command="login_succ""#],
    ),
];

/// The expected series that are missing or zero in `exposition`.
fn missing(exposition: &str) -> Vec<String> {
    EXPECTED
        .iter()
        .filter(|(name, labels)| value(exposition, name, labels).is_none_or(|v| v <= 0.0))
        .map(|(name, labels)| format!("{name}{labels:?}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_rpc_messaging_and_bridge_series_after_traffic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (grpc, pipe, metrics) = (free_addr(), free_addr(), free_addr());
    let mut env = vec![
        ("ROSETTA_GRPC_LISTEN", grpc.to_string()),
        ("ROSETTA_METRICS_LISTEN", metrics.to_string()),
        ("ROSETTA_BRIDGES__PIPE__LISTEN", pipe.to_string()),
        ("ROSETTA_WEB_LISTEN", String::new()),
    ];
    // Every bridge but pipe off, and no web client, so that the test binds no fixed port.
    for off in [
        "ROSETTA_BRIDGES__DPC__ENABLED",
        "ROSETTA_BRIDGES__IMPS__ENABLED",
        "ROSETTA_BRIDGES__OURCHAT__ENABLED",
        "ROSETTA_BRIDGES__CLOUDCHAT__ENABLED",
    ] {
        env.push((off, "false".into()));
    }
    let rosetta = Rosetta::spawn(&["all"], dir.path(), &env);
    // The metrics endpoint is bound before the node starts, so it is up once gRPC is.
    let channel = rosetta_testkit::connect(&format!("http://{grpc}"), PATIENCE).await;
    let before = scrape(metrics).await;
    assert!(
        value(&before, "rosetta_messages_sent_total", &[]).is_none_or(|v| v == 0.0),
        "no message sent yet:\n{before}"
    );

    let mut account = AccountServiceClient::new(channel.clone());
    account
        .register(RegisterRequest {
            username: "mira".into(),
            password: "pw-mira".into(),
            password_scheme: PasswordScheme::Plain.into(),
            nickname: "Mira".into(),
            ..Default::default()
        })
        .await
        .expect("register");
    let login = |password: &str| LoginRequest {
        identifier: Some(Identifier::Username("mira".into())),
        password: password.into(),
        password_scheme: PasswordScheme::Plain.into(),
        client: "metrics-test".into(),
    };
    let refused = account
        .login(login("wrong"))
        .await
        .expect_err("a wrong password");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let token = account
        .login(login("pw-mira"))
        .await
        .expect("login")
        .into_inner()
        .access_token;

    let group = SocialServiceClient::new(channel.clone())
        .create_group(authed(
            CreateGroupRequest {
                name: "metrics".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("create group")
        .into_inner();
    let mut messaging = MessagingServiceClient::new(channel);
    let mut stream = messaging
        .subscribe(authed(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("subscribe")
        .into_inner();
    messaging
        .send_message(authed(
            SendMessageRequest {
                to: Some(To::ToGroupId(group.id)),
                kind: MessageKind::Text.into(),
                text: "measured".into(),
                client_message_id: "metrics-1".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("send");
    // Mira's own stream carries her message.
    tokio::time::timeout(PATIENCE, async {
        while let Some(item) = stream.message().await.expect("stream").and_then(|r| r.item) {
            if let Item::Event(event) = item
                && event.kind.is_some()
            {
                return;
            }
        }
        panic!("the stream ended");
    })
    .await
    .expect("the message on the stream in time");

    let (_pipe, _uid, _token) = Pipe::user(pipe, "piper").await;

    // The counters are updated as the calls are answered; a stream's delivery is counted
    // just after it is queued for the client, so the scrape is repeated until the series
    // show or the patience runs out.
    let deadline = Instant::now() + PATIENCE;
    let exposition = loop {
        let exposition = scrape(metrics).await;
        if missing(&exposition).is_empty() || Instant::now() > deadline {
            break exposition;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let missing = missing(&exposition);
    assert!(
        missing.is_empty(),
        "missing or zero: {missing:?}\nscraped:\n{exposition}\nlog:\n{}",
        rosetta.log()
    );
    assert!(
        exposition.contains("# TYPE rosetta_grpc_request_duration_seconds histogram"),
        "{exposition}"
    );
    drop(stream);
}

#[test]
fn value_reads_a_sample_by_name_and_labels() {
    let text = "a_total{x=\"1\",y=\"2\"} 3\na_total_more 9\nb 0\n";
    assert_eq!(value(text, "a_total", &[r#"y="2""#]), Some(3.0));
    assert_eq!(value(text, "a_total", &[r#"y="3""#]), None);
    assert_eq!(value(text, "b", &[]), Some(0.0));
    assert_eq!(value(text, "a", &[]), None);
}
