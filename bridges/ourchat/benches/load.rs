//! Load benchmark: a test node (SQLite) and the OurChat bridge in-process on loopback.
//!
//! 1. Idle logged-in connections: `OURCHAT_BENCH_CONNS` (default 1,000) WebSocket clients log in
//!    and stay; VmRSS before and after gives memory per connection. The figure includes both
//!    ends (client sockets and WebSocket state live in this process too) and the services'
//!    per-session state (a session and an open `Subscribe` stream per login).
//! 2. Request/reply: `OURCHAT_BENCH_CLIENTS` (default 50) of them send `{"code": 12}` in a
//!    loop for `OURCHAT_BENCH_SECS` (default 5) seconds.
//! 3. Messages: `OURCHAT_BENCH_PAIRS` (default 20) two-member sessions; each sender sends
//!    `OURCHAT_BENCH_MESSAGES` (default 50) text messages, timed until every push arrived.
//!
//! Run with `cargo bench -p rosetta-bridge-ourchat`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt as _, StreamExt as _, stream};
use rosetta_bridge_kit::settings::OurChatSettings;
use rosetta_testkit::bench::{env_or as env, rss_kib};
use rosetta_testkit::{Backend, TestServer};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::{WebSocketStream, client_async, tungstenite::Message};

type Ws = WebSocketStream<TcpStream>;

const PATIENCE: Duration = Duration::from_secs(60);
/// Accounts the idle connections log in as (several sessions each).
const ACCOUNTS: usize = 10;
/// Logins in flight at once (each costs an argon2id check).
const LOGIN_CONCURRENCY: usize = 16;

fn hash(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

async fn connect(addr: SocketAddr) -> Ws {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    client_async(format!("ws://{addr}/"), tcp)
        .await
        .expect("handshake")
        .0
}

async fn recv(ws: &mut Ws) -> Value {
    let text = tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => return text.to_string(),
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("reply in time");
    serde_json::from_str(&text).expect("JSON reply")
}

async fn call(ws: &mut Ws, text: String) -> Value {
    ws.send(Message::text(text)).await.expect("send");
    recv(ws).await
}

async fn register(ws: &mut Ws, email: &str) -> String {
    let reply = call(
        ws,
        format!(
            r#"{{"code": 4, "email": "{email}", "password": "{}"}}"#,
            hash("pw")
        ),
    )
    .await;
    reply["ocid"].as_str().expect("registered").to_owned()
}

/// Logs in; `time` (the document's form) asks for pushes.
async fn login(addr: SocketAddr, email: &str, pushes: bool) -> Ws {
    let mut ws = connect(addr).await;
    let time = if pushes { r#""time": 1, "# } else { "" };
    let reply = call(
        &mut ws,
        format!(
            r#"{{"code": 6, {time}"login_type": 0, "account": "{email}", "password": "{}"}}"#,
            hash("pw")
        ),
    )
    .await;
    assert_eq!(reply["status"], 0, "login {reply}");
    ws
}

/// Logs in one connection per index, as the idle accounts in turn.
async fn login_many(addr: SocketAddr, range: std::ops::Range<usize>) -> Vec<Ws> {
    stream::iter(range)
        .map(|i| async move { login(addr, &format!("idle{}@bench.test", i % ACCOUNTS), false).await })
        .buffer_unordered(LOGIN_CONCURRENCY)
        .collect()
        .await
}

fn main() {
    // Each login's argon2id check allocates 19 MiB on a blocking thread; with glibc's dynamic
    // mmap threshold those blocks stay in the heap arenas and swamp the per-connection figure.
    // A fixed threshold returns them to the system on free; glibc reads it at start, hence
    // the re-exec.
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .args(std::env::args_os().skip(1))
            .env("MALLOC_MMAP_THRESHOLD_", "131072")
            .status()
            .expect("re-exec");
        std::process::exit(status.code().unwrap_or(1));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let conns = env("OURCHAT_BENCH_CONNS", 1000);
    let clients = env("OURCHAT_BENCH_CLIENTS", 50).min(conns);
    let secs: u64 = env("OURCHAT_BENCH_SECS", 5);
    let pairs = env("OURCHAT_BENCH_PAIRS", 20);
    let messages = env("OURCHAT_BENCH_MESSAGES", 50);

    let server = TestServer::start(Backend::Sqlite).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rosetta_bridge_ourchat::serve(
        listener,
        server.backend(),
        OurChatSettings {
            // Every benchmark connection comes from 127.0.0.1.
            limits: rosetta_bridge_kit::settings::ConnectionLimits {
                max_per_address: usize::MAX,
                ..OurChatSettings::default().limits
            },
            ..OurChatSettings::default()
        },
        async {
            let _ = stopped.await;
        },
    ));

    let mut setup = connect(addr).await;
    for i in 0..ACCOUNTS {
        register(&mut setup, &format!("idle{i}@bench.test")).await;
    }
    let mut pair_ocids = Vec::new();
    for i in 0..2 * pairs {
        pair_ocids.push(register(&mut setup, &format!("pair{i}@bench.test")).await);
    }
    // Warm-up connections, logged in as concurrently as the measured ones, so thread stacks
    // and pools are in the baseline.
    let mut idle = login_many(addr, 0..4 * LOGIN_CONCURRENCY).await;

    // 1. Idle logged-in connections.
    let before = rss_kib();
    let started = Instant::now();
    idle.extend(login_many(addr, 0..conns).await);
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib();
    let per_conn = (after.saturating_sub(before)) as f64 / conns as f64;
    println!(
        "idle: {conns} logged-in connections held (after {} warm-up ones) (logins took {:.1} s, {:.0}/s); VmRSS {before} KiB -> {after} KiB, {per_conn:.1} KiB per connection (both ends, plus the services' session and Subscribe stream)",
        4 * LOGIN_CONCURRENCY,
        opened.as_secs_f64(),
        conns as f64 / opened.as_secs_f64()
    );

    // 2. Request/reply on `clients` of the idle connections.
    let replies = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = idle
        .drain(..clients)
        .map(|mut ws| {
            let replies = Arc::clone(&replies);
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let reply = call(&mut ws, r#"{"code": 12}"#.to_owned()).await;
                    assert_eq!(reply["code"], 12);
                    replies.fetch_add(1, Ordering::Relaxed);
                }
                ws
            })
        })
        .collect();
    for worker in workers {
        idle.push(worker.await.expect("worker"));
    }
    let replies = replies.load(Ordering::Relaxed);
    println!(
        "request/reply: {clients} concurrent clients, {replies} server-status round trips in {secs} s = {:.0} replies/s",
        replies as f64 / secs as f64
    );

    // 3. Text messages through sessions, sender → service → receiver's push.
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for p in 0..pairs {
        let mut sender = login(addr, &format!("pair{}@bench.test", 2 * p), true).await;
        let mut receiver = login(addr, &format!("pair{}@bench.test", 2 * p + 1), true).await;
        let created = call(
            &mut sender,
            format!(
                r#"{{"code": 8, "members": ["{}", "{}"]}}"#,
                pair_ocids[2 * p],
                pair_ocids[2 * p + 1]
            ),
        )
        .await;
        let session = created["session_id"].as_i64().expect("session created");
        // The receiver is told it was added (9).
        assert_eq!(recv(&mut receiver).await["code"], 9);
        senders.push((sender, session, pair_ocids[2 * p].clone()));
        receivers.push(receiver);
    }
    let started = Instant::now();
    let sending: Vec<_> = senders
        .into_iter()
        .map(|(mut ws, session, ocid)| {
            tokio::spawn(async move {
                for n in 0..messages {
                    let frame = format!(
                        r#"{{"code": 0, "sender": {{"ocid": "{ocid}", "session_id": {session}}}, "msg": "message {n}"}}"#
                    );
                    ws.send(Message::text(frame)).await.expect("send");
                }
                ws
            })
        })
        .collect();
    let receiving: Vec<_> = receivers
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                for _ in 0..messages {
                    assert_eq!(recv(&mut ws).await["code"], 0);
                }
                ws
            })
        })
        .collect();
    for task in receiving {
        task.await.expect("receiver");
    }
    let elapsed = started.elapsed();
    for task in sending {
        task.await.expect("sender");
    }
    let total = pairs * messages;
    println!(
        "messages: {pairs} sender/receiver pairs, {total} text messages delivered as pushes in {:.2} s = {:.0} messages/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    drop(idle);
}
