//! Load figures for the DPC bridge, in-process against a SQLite test node on loopback:
//!
//! 1. idle chat sockets: `DPC_BENCH_CONNS` (default 1,000) chat connections opened after a
//!    login and held; VmRSS of this process before and after gives memory per connection. The
//!    figure includes both ends of each socket (the client side lives in this process too).
//! 2. broadcast: `DPC_BENCH_LINES` (default 200) chat lines from `DPC_BENCH_SENDERS` (default
//!    4) sending sockets, each line delivered to every one of the held sockets; lines/s and
//!    pushes/s until every socket has every line.
//! 3. request/reply: `DPC_BENCH_CLIENTS` (default 50) concurrent clients each doing 20 logins
//!    on a new auth connection per request, as the client does.
//!
//! Run with `cargo bench -p rosetta-bridge-dpc`.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use rosetta_bridge_dpc::{Listeners, serve};
use rosetta_bridge_kit::settings::DpcSettings;
use rosetta_testkit::bench::{env_or as env, rss_kib};
use rosetta_testkit::{Backend, TestServer};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

const PATIENCE: Duration = Duration::from_secs(120);

fn frame(json: &str) -> Vec<u8> {
    let mut out = format!("{:<15}", json.len()).into_bytes();
    out.extend_from_slice(json.as_bytes());
    out
}

async fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 15];
    stream.read_exact(&mut header).await.expect("header");
    let len: usize = std::str::from_utf8(&header)
        .expect("ascii")
        .trim_end()
        .parse()
        .expect("length");
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.expect("body");
    body
}

async fn login(auth: SocketAddr, name: &str, password: &str) {
    let mut stream = TcpStream::connect(auth).await.expect("connect");
    stream
        .write_all(&frame(&format!(
            r#"{{"op": 0, "args": {{"user_name": "{name}", "user_pwd": "{password}"}}}}"#
        )))
        .await
        .expect("write");
    assert_eq!(read_frame(&mut stream).await, br#"{"op": 0, "test": 0}"#);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let conns = env("DPC_BENCH_CONNS", 1000);
    let lines = env("DPC_BENCH_LINES", 200);
    let senders = env("DPC_BENCH_SENDERS", 4).max(1);
    let clients = env("DPC_BENCH_CLIENTS", 50);

    let server = TestServer::start(Backend::Sqlite).await;
    let bind = || TcpListener::bind("127.0.0.1:0");
    let listeners = Listeners {
        auth: bind().await.expect("bind"),
        chat: bind().await.expect("bind"),
        file: bind().await.expect("bind"),
    };
    let settings = DpcSettings {
        enabled: true,
        auth_listen: listeners.auth.local_addr().expect("addr"),
        chat_listen: listeners.chat.local_addr().expect("addr"),
        file_listen: listeners.file.local_addr().expect("addr"),
        // Every benchmark connection comes from 127.0.0.1.
        limits: rosetta_bridge_kit::settings::ConnectionLimits {
            max_per_address: usize::MAX,
            ..DpcSettings::default().limits
        },
    };
    let (auth, chat) = (settings.auth_listen, settings.chat_listen);
    tokio::spawn(serve(
        listeners,
        server.backend(),
        settings,
        std::future::pending(),
    ));
    for name in ["reader", "sender"] {
        server.user(name, "bench-pw").await;
    }
    login(auth, "reader", "bench-pw").await;
    login(auth, "sender", "bench-pw").await;

    // 1. Idle chat sockets.
    let before = rss_kib();
    let started = Instant::now();
    let mut held = Vec::with_capacity(conns);
    for _ in 0..conns {
        held.push(TcpStream::connect(chat).await.expect("connect chat"));
    }
    // Every socket is served once it receives a line: send one and wait for all to have it.
    let mut sender_sockets = Vec::new();
    for _ in 0..senders {
        sender_sockets.push(TcpStream::connect(chat).await.expect("connect chat"));
    }
    let line = |i: usize| {
        frame(&format!(
            r#"{{"op": 0, "args": {{"name": "sender", "password": "bench-pw"}}, "news": "line {i}\n"}}"#
        ))
    };
    sender_sockets[0].write_all(&line(0)).await.expect("send");
    for stream in &mut held {
        tokio::time::timeout(PATIENCE, read_frame(stream))
            .await
            .expect("warm-up line");
    }
    let opened = started.elapsed();
    let after = rss_kib();
    let per_conn = (after.saturating_sub(before)) as f64 / conns as f64;
    println!(
        "idle: {conns} chat sockets open and served in {:.2} s; VmRSS {before} KiB -> {after} KiB = {per_conn:.1} KiB per connection (both socket ends in this process)",
        opened.as_secs_f64()
    );

    // 2. Broadcast throughput.
    let started = Instant::now();
    let readers: Vec<_> = held
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                for _ in 0..lines {
                    tokio::time::timeout(PATIENCE, read_frame(&mut stream))
                        .await
                        .expect("line in time");
                }
                stream
            })
        })
        .collect();
    let writers: Vec<_> = sender_sockets
        .into_iter()
        .enumerate()
        .map(|(s, mut stream)| {
            tokio::spawn(async move {
                for i in (s..lines).step_by(senders) {
                    stream.write_all(&line(i + 1)).await.expect("send");
                }
                stream
            })
        })
        .collect();
    let mut kept = Vec::new();
    for writer in writers {
        kept.push(writer.await.expect("writer"));
    }
    for reader in readers {
        kept.push(reader.await.expect("reader"));
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "broadcast: {lines} lines from {senders} sockets to {conns} sockets in {took:.2} s = {:.0} lines/s, {:.0} pushes/s",
        lines as f64 / took,
        (lines * conns) as f64 / took
    );
    drop(kept);

    // 3. Request/reply on the auth server, one connection per request.
    let per_client = 20;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..per_client {
                    login(auth, "reader", "bench-pw").await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "request/reply: {} logins by {clients} concurrent clients in {took:.2} s = {:.0} replies/s",
        clients * per_client,
        (clients * per_client) as f64 / took
    );
}
