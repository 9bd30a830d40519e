//! The stream's own guarantees without a network: an overflowing queue loses nothing durable
//! and repeats nothing; a resync re-reads the log; revocation ends the stream.

use std::{sync::Arc, time::Duration};

use rosetta_kit::tasks::Tasks;
use rosetta_proto::messaging::v1::{FriendRemoved, event::Kind, subscribe_response::Item};
use tokio_util::sync::CancellationToken;

use crate::{Bus, Events, LocalBus, Messaging, MessagingConfig, Presences, test_support::user};

/// Longest wait for something the test expects.
const PATIENCE: Duration = Duration::from_secs(10);

struct World {
    _dir: tempfile::TempDir,
    messaging: Arc<Messaging>,
    events: Arc<Events>,
    bus: Arc<dyn Bus>,
    me: i64,
    _tasks: Tasks,
}

/// A SQLite messaging service whose streams queue at most `queue` events.
async fn world(queue: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let db = rosetta_db::connect(&url).await.unwrap();
    let me = user(&db, "alice").await;
    let bus: Arc<dyn Bus> = Arc::new(LocalBus::new(queue));
    let events = Arc::new(Events::new(db.clone(), bus.clone()));
    let config = MessagingConfig::default();
    let presences = Arc::new(Presences::new(
        db.clone(),
        config.presence_timeout,
        events.clone(),
    ));
    let tasks = Tasks::new();
    let messaging = Arc::new(Messaging::new(
        db,
        config,
        bus.clone(),
        events.clone(),
        presences,
        &tasks,
    ));
    World {
        _dir: dir,
        messaging,
        events,
        bus,
        me,
        _tasks: tasks,
    }
}

fn durable(n: i64) -> Kind {
    Kind::FriendRemoved(FriendRemoved {
        user_id: n,
        removed_by: n,
    })
}

use crate::stream::Inbox;

/// Opens a stream with an outbox of `capacity`, and waits for its `CaughtUp`.
async fn open(world: &World, capacity: usize) -> Inbox {
    let (tx, mut rx) = crate::stream::outbox(capacity);
    tokio::spawn(world.messaging.clone().subscribe(
        world.me,
        crate::stream::Resume::default(),
        tx,
        None,
        CancellationToken::new(),
    ));
    match next(&mut rx).await {
        Item::CaughtUp(_) => rx,
        other => panic!("expected CaughtUp first, got {other:?}"),
    }
}

async fn next(rx: &mut Inbox) -> Item {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("an item within the patience")
        .expect("the stream is open")
        .expect("the stream is healthy")
        .item
        .expect("an item")
}

async fn next_seq(rx: &mut Inbox) -> u64 {
    match next(rx).await {
        Item::Event(event) => event.seq,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_stream_gets_every_event_once_in_order() {
    const EVENTS: u64 = 60;
    let world = world(2).await;
    // Nothing is read meanwhile: the stream holds at most one event in its outbox, one in hand
    // and two queued, so the rest overflow its queue.
    let mut rx = open(&world, 1).await;
    for n in 1..=EVENTS {
        world
            .events
            .publish_durable(&[world.me], durable(n as i64))
            .await
            .unwrap();
    }
    for expected in 1..=EVENTS {
        assert_eq!(next_seq(&mut rx).await, expected);
    }
    assert!(rx.try_recv().is_err(), "nothing more, nothing twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_delivers_an_event_whose_wake_up_was_lost() {
    let world = world(16).await;
    let mut rx = open(&world, 16).await;
    // Stored without a wake-up, as when NATS drops one: the stream does not see it by itself.
    let tx = rosetta_db::begin_write(&world.messaging.db).await.unwrap();
    Events::append(&*tx, &[world.me], &durable(1), rosetta_db::now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    world.bus.hub().resync();
    assert_eq!(next_seq(&mut rx).await, 1);
    // And the next woken event follows without a repeat.
    world
        .events
        .publish_durable(&[world.me], durable(2))
        .await
        .unwrap();
    assert_eq!(next_seq(&mut rx).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stream_leaves_the_hub() {
    let world = world(16).await;
    let rx = open(&world, 16).await;
    assert!(world.bus.hub().is_live(world.me));
    drop(rx);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while world.bus.hub().is_live(world.me) {
        assert!(tokio::time::Instant::now() < deadline, "still registered");
        // The stream task notices the closed outbox on its own schedule.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
