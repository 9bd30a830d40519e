//! Open streams watch their sessions through one process-wide query per period, not a timer
//! each: idle streams cost the database nothing per stream, and a session ended by another
//! process (written straight into the shared database) still ends its streams within a few
//! periods, long before the session cache would have noticed. On SQLite and PostgreSQL
//! (ROSETTA_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).

mod support;

use std::{sync::Arc, time::Duration};

use rosetta_auth::{SessionGuard, SessionWatch};
use rosetta_db::entity::session;
use rosetta_kit::tasks::Tasks;
use rosetta_messaging::{Bus, Inbox, LocalBus, Messaging, MessagingConfig, Resume, SessionCheck};
use rosetta_proto::{Reason, messaging::v1::subscribe_response::Item};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _,
    sea_query::Expr,
};
use support::{Backend, PATIENCE, store, users};
use tokio::{sync::mpsc::error::TryRecvError, time::Instant};
use tokio_util::sync::CancellationToken;

/// The watch's period (and the streams' former timer): short, so that a test spans many.
const PERIOD: Duration = Duration::from_millis(50);

/// One process: messaging whose session check runs every [`PERIOD`], a session guard trusting
/// a live answer for `ttl`, and the process's session watch.
struct Process {
    db: DatabaseConnection,
    messaging: Arc<Messaging>,
    guard: Arc<SessionGuard>,
    tasks: Tasks,
}

async fn process(url: &str, ttl: Duration) -> Process {
    let db = rosetta_db::connect(url).await.unwrap();
    let tasks = Tasks::new();
    let bus: Arc<dyn Bus> = Arc::new(LocalBus::new(4096));
    let config = MessagingConfig {
        session_check_interval: PERIOD,
        ..Default::default()
    };
    let (messaging, _, _) = support::messaging(&db, bus, config, &tasks);
    let guard = Arc::new(SessionGuard::new(db.clone(), ttl));
    SessionWatch::start(guard.clone(), PERIOD, &tasks);
    Process {
        db,
        messaging,
        guard,
        tasks,
    }
}

/// A live session of `user`, stored as a login stores it; its id.
async fn login(db: &DatabaseConnection, user: i64) -> String {
    let id = format!("session-{user}");
    let now = rosetta_db::now_ms();
    session::Entity::insert(session::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(user),
        refresh_hash: Set(format!("hash-{user}")),
        prev_refresh_hash: Set(None),
        refresh_expires_at_ms: Set(now + 3_600_000),
        created_at_ms: Set(now),
        last_used_at_ms: Set(now),
        revoked_at_ms: Set(None),
        client: Set("test".into()),
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    id
}

/// Opens a stream of `user` on `session` (checked live first, as the auth layer does) and
/// waits for its `CaughtUp`.
async fn open(process: &Process, user: i64, session: &str) -> Inbox {
    assert!(process.guard.is_live(session).await.unwrap());
    let (tx, mut rx) = rosetta_messaging::outbox(64);
    let check = SessionCheck::new(process.guard.clone(), session);
    tokio::spawn(process.messaging.clone().subscribe(
        user,
        Resume::default(),
        tx,
        Some(check),
        CancellationToken::new(),
    ));
    let first = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("CaughtUp within the patience")
        .expect("the stream is open")
        .expect("the stream is healthy");
    assert!(matches!(first.item, Some(Item::CaughtUp(_))), "{first:?}");
    rx
}

/// Waits for the stream's end; the status it ended with.
async fn ended(rx: &mut Inbox, within: Duration) -> tonic::Status {
    tokio::time::timeout(within, async {
        loop {
            match rx.recv().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => return status,
                None => panic!("the stream closed without a status"),
            }
        }
    })
    .await
    .expect("the stream ends in time")
}

/// Many idle streams (two per session) for many periods: the guard looks no session up, and
/// the watch queries once per period for all of them.
async fn idle_streams_cost_no_session_queries(backend: Backend) {
    // More for a measurement: ROSETTA_WATCH_TEST_SESSIONS=2000.
    let sessions = std::env::var("ROSETTA_WATCH_TEST_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    const PERIODS: u64 = 20;
    let store = store(backend).await;
    // A short cache lifetime: a per-stream check would have to ask the database again.
    let process = process(&store.url, PERIOD * 4).await;
    let users = users(&process.db, "idle", sessions).await;
    let mut streams = Vec::new();
    for &user in &users {
        let session = login(&process.db, user).await;
        for _ in 0..2 {
            streams.push(open(&process, user, &session).await);
        }
    }
    let before = process.guard.queries();
    let started = Instant::now();
    let deadline = started + PATIENCE;
    while process.guard.queries().watch_runs < before.watch_runs + PERIODS {
        assert!(Instant::now() < deadline, "the watch stopped running");
        // Polls the watch's own counter; the streams are left alone meanwhile.
        tokio::time::sleep(PERIOD).await;
    }
    let after = process.guard.queries();
    let periods = started.elapsed().as_millis() / PERIOD.as_millis() + 2;
    println!(
        "{backend:?}: {} idle streams over {:?}: {} session lookups, {} watch queries",
        streams.len(),
        started.elapsed(),
        after.lookups - before.lookups,
        after.watch_runs - before.watch_runs
    );
    assert_eq!(
        after.lookups - before.lookups,
        0,
        "{} idle streams looked their sessions up",
        streams.len()
    );
    assert!(
        u128::from(after.watch_runs - before.watch_runs) <= periods,
        "at most one watch query per period: {} in {periods} periods",
        after.watch_runs - before.watch_runs
    );
    for rx in &mut streams {
        assert!(
            matches!(rx.try_recv(), Err(TryRecvError::Empty)),
            "an idle stream stays open and quiet"
        );
    }
    process.tasks.stop("test", Duration::from_secs(5)).await;
}
rosetta_messaging_both_backends!(
    idle_streams_poll_nothing,
    crate::idle_streams_cost_no_session_queries
);

/// Another process revokes one session and lets another expire, writing only the database;
/// this process's cache still believes both live for a minute. Their streams end with
/// SESSION_REVOKED within a few periods; a third session's stream stays open.
async fn ended_elsewhere_ends_the_stream(backend: Backend) {
    let store = store(backend).await;
    let process = process(&store.url, Duration::from_secs(60)).await;
    let users = users(&process.db, "gone", 3).await;
    let mut sessions = Vec::new();
    for &user in &users {
        sessions.push(login(&process.db, user).await);
    }
    let mut revoked = open(&process, users[0], &sessions[0]).await;
    let mut expired = open(&process, users[1], &sessions[1]).await;
    let mut kept = open(&process, users[2], &sessions[2]).await;

    let elsewhere = rosetta_db::connect(&store.url).await.unwrap();
    let now = rosetta_db::now_ms();
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAtMs, Expr::value(now))
        .filter(session::Column::Id.eq(sessions[0].clone()))
        .exec(&elsewhere)
        .await
        .unwrap();
    session::Entity::update_many()
        .col_expr(session::Column::RefreshExpiresAtMs, Expr::value(now - 1))
        .filter(session::Column::Id.eq(sessions[1].clone()))
        .exec(&elsewhere)
        .await
        .unwrap();

    // Far inside the cache's minute: only the watch can have seen it.
    let within = PERIOD * 20 + Duration::from_secs(2);
    for rx in [&mut revoked, &mut expired] {
        let status = ended(rx, within).await;
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status}");
        assert_eq!(Reason::of(&status), Some(Reason::SessionRevoked));
    }
    assert!(
        matches!(kept.try_recv(), Err(TryRecvError::Empty)),
        "a live session's stream stays open"
    );
    assert!(process.guard.is_live(&sessions[2]).await.unwrap());
    process.tasks.stop("test", Duration::from_secs(5)).await;
}
rosetta_messaging_both_backends!(
    ended_elsewhere_ends_streams,
    crate::ended_elsewhere_ends_the_stream
);
