//! Load benchmark of the IMPS bridge, in-process on loopback against a SQLite node:
//!
//! 1. idle logged-in connections: RSS (`VmRSS` of this process) before and after N clients
//!    log in and stay connected. The figure includes both ends of each socket and the node's
//!    side of each connection's `Subscribe` stream, since all of it runs in this process.
//! 2. messages between IMPS clients: the N clients form N/2 pairs of friends; in each pair a
//!    text goes back and forth (C_SEND_MSG in, S_SEND_MSG pushed to the other) for a fixed
//!    time, every pair at once.
//!
//! `IMPS_BENCH_CONNECTIONS` (default 500: every account costs argon2 hashes on the node) and
//! `IMPS_BENCH_SECONDS` (default 10).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::BytesMut;
use rosetta_bridge_imps::codec::{ClientMessage, FrameCodec, cmd};
use rosetta_bridge_kit::settings::ImpsSettings;
use rosetta_testkit::bench::{env_or as env, rss_kib};
use rosetta_testkit::{Backend, TestServer};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::codec::Encoder as _;

/// Logins and registrations in flight at once (each costs argon2 hashes on the node).
const SETUP_PARALLEL: usize = 8;
/// Logins made and closed before the memory baseline.
const WARM_UP: usize = 100;
const PATIENCE: Duration = Duration::from_secs(60);

async fn send(stream: &mut TcpStream, message: ClientMessage) {
    let mut wire = BytesMut::new();
    FrameCodec
        .encode(message.encode(), &mut wire)
        .expect("encode");
    stream.write_all(&wire).await.expect("write");
}

/// The next frame's command byte and body.
async fn recv(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    tokio::time::timeout(PATIENCE, async {
        let mut header = [0u8; 7];
        stream.read_exact(&mut header).await.expect("header");
        let len = i32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        let mut body = vec![0u8; len as usize - 1];
        stream.read_exact(&mut body).await.expect("body");
        (header[6], body)
    })
    .await
    .expect("a frame in time")
}

/// The next frame with command `want`, skipping presence pushes and the like.
async fn recv_cmd(stream: &mut TcpStream, want: u8) -> Vec<u8> {
    loop {
        let (cmd, body) = recv(stream).await;
        if cmd == want {
            return body;
        }
    }
}

fn name(i: usize) -> String {
    format!("bench{i}")
}

/// Runs `f(i)` for each i in 0..n, at most SETUP_PARALLEL at a time.
async fn in_parallel<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(SETUP_PARALLEL));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let fut = f(i);
        tasks.push(tokio::spawn(async move {
            let out = fut.await;
            drop(permit);
            out
        }));
    }
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.expect("task"));
    }
    out
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    // Pairs need an even number.
    let n = env::<usize>("IMPS_BENCH_CONNECTIONS", 500).max(2) & !1;
    let seconds = env("IMPS_BENCH_SECONDS", 10);
    let server = TestServer::start(Backend::Sqlite).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(rosetta_bridge_imps::serve(
        listener,
        server.backend(),
        ImpsSettings {
            // Every benchmark connection comes from 127.0.0.1.
            limits: rosetta_bridge_kit::settings::ConnectionLimits {
                max_per_address: usize::MAX,
                ..ImpsSettings::default().limits
            },
            ..ImpsSettings::default()
        },
        std::future::pending(),
    ));

    let started = Instant::now();
    in_parallel(n, move |i| async move {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        send(
            &mut c,
            ClientMessage::Register {
                user: name(i),
                password: "123".into(),
                gender: 1,
                email: String::new(),
            },
        )
        .await;
        assert_eq!(recv(&mut c).await.0, cmd::S_REGISTER);
    })
    .await;
    println!(
        "registered {n} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let login = move |i: usize| async move {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        send(
            &mut c,
            ClientMessage::Login {
                user: name(i),
                password: "123".into(),
            },
        )
        .await;
        assert_eq!(recv(&mut c).await.0, cmd::S_LOGIN_RSP);
        c
    };
    // Warm-up: logins hash passwords (argon2, 19 MiB each) on blocking threads and the
    // allocator keeps what they used; let it grow before the baseline, so the figure below is
    // what the held connections cost.
    drop(in_parallel(n.min(WARM_UP), login).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib();
    let started = Instant::now();
    let mut clients = in_parallel(n, login).await;
    let login_secs = started.elapsed().as_secs_f64();
    // Let the connections settle (streams established, buffers released).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    println!(
        "idle: {n} logged-in connections held (logins took {login_secs:.1} s); \
         RSS {before} KiB -> {after} KiB, {:.1} KiB per connection \
         (client and server side, including the node's Subscribe stream)",
        (after.saturating_sub(before)) as f64 / n as f64
    );

    // Pairs of friends: 2k asks 2k+1, who accepts.
    let mut pairs = Vec::with_capacity(n / 2);
    while let (Some(b), Some(a)) = (clients.pop(), clients.pop()) {
        pairs.push((a, b, pairs.len()));
    }
    let permits = Arc::new(Semaphore::new(SETUP_PARALLEL));
    let mut tasks = Vec::new();
    for (mut a, mut b, k) in pairs {
        let permits = permits.clone();
        // Popped from the end: pair k holds clients n-2k-2 and n-2k-1.
        let (an, bn) = (name(n - 2 * k - 2), name(n - 2 * k - 1));
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore");
            send(
                &mut a,
                ClientMessage::AddFriend {
                    user: an.clone(),
                    friend: bn.clone(),
                },
            )
            .await;
            recv_cmd(&mut b, cmd::S_ADDFRIEND_REQ).await;
            send(
                &mut b,
                ClientMessage::AnswerFriend {
                    user: bn.clone(),
                    friend: an.clone(),
                    accept: true,
                },
            )
            .await;
            recv_cmd(&mut a, cmd::S_ADDFRIEND_RSP).await;
            (a, b, an, bn)
        }));
    }
    let mut pairs = Vec::with_capacity(tasks.len());
    for task in tasks {
        pairs.push(task.await.expect("befriend"));
    }

    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(pairs.len());
    let started = Instant::now();
    for (mut a, mut b, an, bn) in pairs {
        let (done, count) = (done.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let to_b = ClientMessage::SendMessage {
                user: an.clone(),
                friend: bn.clone(),
                text: "你好, ping".into(),
            };
            let to_a = ClientMessage::SendMessage {
                user: bn,
                friend: an,
                text: "你好, pong".into(),
            };
            while !done.load(Ordering::Relaxed) {
                for forward in [true, false] {
                    let (from, to, message) = if forward {
                        (&mut a, &mut b, &to_b)
                    } else {
                        (&mut b, &mut a, &to_a)
                    };
                    let t = Instant::now();
                    send(from, message.clone()).await;
                    recv_cmd(to, cmd::S_SEND_MSG).await;
                    latencies.push(t.elapsed());
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            (a, b, latencies)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    done.store(true, Ordering::Relaxed);
    let mut latencies_all = Vec::new();
    for task in tasks {
        let (_a, _b, latencies) = task.await.expect("pair");
        latencies_all.extend(latencies);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_all.sort();
    let pct = |p: f64| {
        latencies_all
            .get(
                ((latencies_all.len() as f64 * p) as usize)
                    .min(latencies_all.len().saturating_sub(1)),
            )
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let total = count.load(Ordering::Relaxed);
    println!(
        "messages: {} pairs of IMPS clients, {total} C_SEND_MSG -> S_SEND_MSG deliveries in \
         {elapsed:.1} s = {:.0} messages/s; latency p50 {:.1} ms, p99 {:.1} ms",
        n / 2,
        total as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
}
