//! Load benchmark of the pipe bridge, in-process on loopback against a SQLite node:
//!
//! 1. idle logged-in connections: RSS (`VmRSS` of this process) before and after N clients
//!    log in and stay connected. The figure includes both ends of each socket and the node's
//!    side of each connection's `Subscribe` stream, since all of it runs in this process.
//! 2. request/reply throughput: the N clients each send `get_user_info` and wait for the
//!    reply, in a loop, for a fixed time.
//!
//! `PIPE_BENCH_CONNECTIONS` (default 1000), `PIPE_BENCH_SECONDS` (default 10),
//! `PIPE_BENCH_GAP_MS` (the bridge's write gap, default 0 so the bridge itself is measured;
//! with the production 100 ms each connection is capped at ten messages a second).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rosetta_bridge_kit::settings::PipeSettings;
use rosetta_testkit::bench::{env_or as env, rss_kib};
use rosetta_testkit::{Backend, TestServer};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};

/// Logins and registrations in flight at once (each costs an argon2 hash on the node).
const SETUP_PARALLEL: usize = 8;
/// Logins made and closed before the memory baseline.
const WARM_UP: usize = 200;

const MD5: &str = "e10adc3949ba59abbe56e057f20f883e";

async fn roundtrip(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(line.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf))
        .await
        .expect("reply in time")
        .expect("read");
    assert!(n > 0, "bridge closed the connection");
    String::from_utf8_lossy(&buf[..n]).into_owned()
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
    let n: usize = env("PIPE_BENCH_CONNECTIONS", 1000);
    let seconds = env("PIPE_BENCH_SECONDS", 10);
    let gap = env("PIPE_BENCH_GAP_MS", 0);
    let server = TestServer::start(Backend::Sqlite).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(rosetta_bridge_pipe::serve(
        listener,
        server.backend(),
        PipeSettings {
            write_gap_ms: gap,
            // Every benchmark connection comes from 127.0.0.1.
            limits: rosetta_bridge_kit::settings::ConnectionLimits {
                max_per_address: usize::MAX,
                ..PipeSettings::default().limits
            },
            ..PipeSettings::default()
        },
        std::future::pending(),
    ));

    let started = Instant::now();
    in_parallel(n, move |i| async move {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let reply = roundtrip(&mut c, &format!("register|bench{i}|{MD5}|b{i}|1|s|1|a")).await;
        assert_eq!(reply, "register_succ|注册成功！");
    })
    .await;
    println!(
        "registered {n} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let login = move |i: usize| async move {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let reply = roundtrip(&mut c, &format!("login|bench{i}|{MD5}")).await;
        let fields: Vec<&str> = reply.split('|').collect();
        assert_eq!(fields.first(), Some(&"login_succ"), "{reply}");
        let (uid, token) = (fields[2].to_owned(), fields[3].to_owned());
        (c, uid, token)
    };
    // Warm-up: logins hash passwords (argon2, 19 MiB each) on blocking threads, and the
    // allocator keeps what they used; let it grow before the baseline, so the figure below
    // is what the held connections cost.
    drop(in_parallel(n.min(WARM_UP), login).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib();
    let started = Instant::now();
    let clients = in_parallel(n, login).await;
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

    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(n);
    let mut latencies_all = Vec::new();
    let started = Instant::now();
    for (mut c, uid, token) in clients {
        let (done, count) = (done.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let line = format!("get_user_info|{uid}|{uid}|{token}");
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                let reply = roundtrip(&mut c, &line).await;
                assert!(reply.starts_with("userinfo|"), "{reply}");
                latencies.push(t.elapsed());
                count.fetch_add(1, Ordering::Relaxed);
            }
            (c, latencies)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    done.store(true, Ordering::Relaxed);
    for task in tasks {
        let (_c, latencies) = task.await.expect("client");
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
        "request/reply: {n} concurrent clients, {total} get_user_info in {elapsed:.1} s = \
         {:.0} replies/s; latency p50 {:.1} ms, p99 {:.1} ms (write gap {gap} ms)",
        total as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
}
