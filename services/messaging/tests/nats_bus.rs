//! The NATS bus against a real NATS server (ROSETTA_TEST_NATS_URL, default
//! nats://127.0.0.1:4222; the tests fail without one): a process receives only the events of
//! users with a stream in it, stops receiving a user's events after their last stream closes,
//! and after its connection comes back tells every stream to re-read its log (wake-ups sent
//! meanwhile are lost by core NATS).

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rosetta_kit::tasks::Tasks;
use rosetta_messaging::{Bus, NatsBus, Subscription, Wake};
use rosetta_proto::messaging::v1::Event;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    task::AbortHandle,
};

/// Longest wait for something the test expects.
const PATIENCE: Duration = Duration::from_secs(10);
const QUEUE: usize = 64;
const ALICE: i64 = 1;
const BOB: i64 = 2;

fn nats_url() -> String {
    std::env::var("ROSETTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A subject prefix of this test's own: tests share the NATS server.
fn prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("rosetta.test.bus{}x{nanos}", std::process::id())
}

async fn bus(url: &str, prefix: &str, tasks: &Tasks) -> NatsBus {
    NatsBus::connect(url, prefix, QUEUE, tasks)
        .await
        .unwrap_or_else(|err| {
            panic!("NATS at {url}: {err} (start it or set ROSETTA_TEST_NATS_URL)")
        })
}

fn event(seq: u64) -> Event {
    Event {
        seq,
        ..Default::default()
    }
}

/// The next event's seq, skipping re-read requests (the first connection's resync may come
/// at any time).
async fn next_seq(sub: &mut Subscription) -> u64 {
    loop {
        match tokio::time::timeout(PATIENCE, sub.recv())
            .await
            .expect("a wake-up within the patience")
        {
            Wake::Event(event) => return event.seq,
            Wake::Reread => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_receives_only_its_own_users_events() {
    let (url, prefix, tasks) = (nats_url(), prefix(), Tasks::new());
    let here = bus(&url, &prefix, &tasks).await;
    let elsewhere = bus(&url, &prefix, &tasks).await;
    let mut alice = here.subscribe(ALICE).await.expect("subscribed");

    // Ten events for each of fifty users without a stream here, then alice's three, all from
    // one connection: NATS keeps their order, so alice's come last.
    let mut deliveries: Vec<(i64, Event)> = (1000..1050)
        .flat_map(|user| (1..=10).map(move |n| (user, event(n))))
        .collect();
    deliveries.extend((1..=3).map(|n| (ALICE, event(n))));
    elsewhere.publish(deliveries).await;
    for n in 1..=3 {
        assert_eq!(next_seq(&mut alice).await, n);
    }
    assert_eq!(here.received(), 3, "only alice's events reach this process");
    assert_eq!(
        elsewhere.received(),
        0,
        "a process without streams receives nothing"
    );
    tasks.stop("bus", PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_stream_closing_stops_the_users_events() {
    let (url, prefix, tasks) = (nats_url(), prefix(), Tasks::new());
    let here = bus(&url, &prefix, &tasks).await;
    let elsewhere = bus(&url, &prefix, &tasks).await;
    let (first, second) = (
        here.subscribe(ALICE).await.expect("subscribed"),
        here.subscribe(ALICE).await.expect("subscribed"),
    );
    drop(first);
    assert!(here.hub().is_live(ALICE), "one stream of alice is open");
    drop(second);
    assert!(!here.hub().is_live(ALICE));

    // The unsubscription leaves asynchronously: alice's event followed by bob's marker, until
    // the marker arrives alone.
    let mut bob = here.subscribe(BOB).await.expect("subscribed");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    for marker in 1.. {
        let before = here.received();
        elsewhere
            .publish(vec![(ALICE, event(marker)), (BOB, event(marker))])
            .await;
        assert_eq!(next_seq(&mut bob).await, marker);
        if here.received() - before == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice's subject still received"
        );
    }
    tasks.stop("bus", PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnection_asks_every_stream_to_reread() {
    let (url, prefix, tasks) = (nats_url(), prefix(), Tasks::new());
    let target = url
        .trim_start_matches("nats://")
        .parse::<SocketAddr>()
        .expect("ROSETTA_TEST_NATS_URL is nats://<ip>:<port>");
    let relay = Relay::start(target).await;
    let here = bus(&format!("nats://{}", relay.addr), &prefix, &tasks).await;
    let elsewhere = bus(&url, &prefix, &tasks).await;
    // The first connection's resync is done before alice's stream exists: any re-read she
    // is asked for comes from the reconnection.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while here.resyncs() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no first resync");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut alice = here.subscribe(ALICE).await.expect("subscribed");
    elsewhere.publish(vec![(ALICE, event(1))]).await;
    assert_eq!(
        next_seq(&mut alice).await,
        1,
        "the relayed connection works"
    );
    while alice.try_recv().is_some() {}

    // NATS delivers alice's next wake-up into a connection that loses it.
    relay.mute(true);
    elsewhere.publish(vec![(ALICE, event(2))]).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while relay.discarded() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing reached the relay"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    relay.mute(false);
    relay.cut();

    let woken = tokio::time::timeout(PATIENCE, alice.recv())
        .await
        .expect("woken after the reconnection");
    assert_eq!(here.resyncs(), 2, "one resync for the reconnection");
    assert!(
        matches!(woken, Wake::Reread),
        "a re-read, not {woken:?}: the wake-up itself is lost"
    );
    // And wake-ups flow again on the new connection.
    elsewhere.publish(vec![(ALICE, event(3))]).await;
    assert_eq!(next_seq(&mut alice).await, 3);
    tasks.stop("bus", PATIENCE).await;
}

/// A TCP relay in front of NATS that can drop what the server sends (a wake-up lost on the
/// way) and cut its connections (the network failing).
struct Relay {
    addr: SocketAddr,
    muted: Arc<AtomicBool>,
    discarded: Arc<AtomicU64>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let relay = Self {
            addr,
            muted: Arc::default(),
            discarded: Arc::default(),
            open: Arc::default(),
        };
        let (muted, discarded, open) = (
            relay.muted.clone(),
            relay.discarded.clone(),
            relay.open.clone(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
                });
                let (muted, discarded) = (muted.clone(), discarded.clone());
                let down = tokio::spawn(async move {
                    let mut buf = vec![0; 16 * 1024];
                    while let Ok(n @ 1..) = server_rx.read(&mut buf).await {
                        if muted.load(Ordering::SeqCst) {
                            discarded.fetch_add(n as u64, Ordering::SeqCst);
                        } else if client_tx.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut open = open.lock().unwrap();
                open.push(up.abort_handle());
                open.push(down.abort_handle());
            }
        });
        relay
    }

    fn mute(&self, on: bool) {
        self.muted.store(on, Ordering::SeqCst);
    }

    fn discarded(&self) -> u64 {
        self.discarded.load(Ordering::SeqCst)
    }

    /// Drops every relayed connection.
    fn cut(&self) {
        for conn in self.open.lock().unwrap().drain(..) {
            conn.abort();
        }
    }
}

/// A broadcast (an announcement) from a process without streams reaches every stream of
/// every user in every process on the bus, and nothing on another prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_every_process() {
    let (url, prefix, tasks) = (nats_url(), prefix(), Tasks::new());
    let here = bus(&url, &prefix, &tasks).await;
    let elsewhere = bus(&url, &prefix, &tasks).await;
    let sender = bus(&url, &prefix, &tasks).await;
    let other_deployment = bus(&url, &format!("{prefix}.other"), &tasks).await;
    let mut alice = here.subscribe(ALICE).await.expect("subscribed");
    let mut alice_too = here.subscribe(ALICE).await.expect("subscribed");
    let mut bob = elsewhere.subscribe(BOB).await.expect("subscribed");
    let mut stranger = other_deployment.subscribe(ALICE).await.expect("subscribed");

    sender.broadcast(event(0)).await;
    sender.publish(vec![(ALICE, event(1))]).await;
    // Two subjects: the order between them is not kept (nor needed).
    for stream in [&mut alice, &mut alice_too] {
        let mut got = [next_seq(stream).await, next_seq(stream).await];
        got.sort_unstable();
        assert_eq!(got, [0, 1], "the broadcast and alice's own event");
    }
    assert_eq!(next_seq(&mut bob).await, 0, "the broadcast");
    // The server handed the broadcast to every subscriber before these: the other prefix's
    // stream's next wake-up is its own event, not the broadcast.
    other_deployment.publish(vec![(ALICE, event(7))]).await;
    assert_eq!(
        next_seq(&mut stranger).await,
        7,
        "another prefix's broadcast does not arrive"
    );
    tasks.stop("test", PATIENCE).await;
}
