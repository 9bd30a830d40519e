//! Sustained send throughput and send→push latency for 100 concurrent users, over real gRPC
//! on loopback, on SQLite and on PostgreSQL.
//!
//! 100 users in 50 friend pairs; every user holds a `Subscribe` stream and sends to its
//! partner. Phase 1 runs closed-loop (one send in flight per user, as fast as the server
//! answers) and reports messages/s. Phase 2 sends open-loop at half that rate and reports the
//! latency from just before `SendMessage` until the partner's stream yields the message.
//!
//! The bench serves the service without the token layer (an interceptor names the caller),
//! so it measures messaging, not JWT verification.
//!
//! Run: `cargo bench -p rosetta-messaging --bench throughput [-- sqlite|postgres] [secs]`.
//! PostgreSQL comes from `ROSETTA_TEST_POSTGRES_URL` (default the local server).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rosetta_auth::Caller;
use rosetta_db::{
    entity::{social::friendship, user},
    sea_orm::{
        ActiveValue::Set, ConnectionTrait as _, Database, DatabaseConnection, EntityTrait as _,
    },
};
use rosetta_messaging::{Events, LocalBus, Messaging, MessagingConfig, MessagingGrpc, Presences};
use rosetta_proto::messaging::v1::{
    MessageKind, SendMessageRequest, SubscribeRequest, event::Kind,
    messaging_service_client::MessagingServiceClient,
    messaging_service_server::MessagingServiceServer, send_message_request::To,
    subscribe_response::Item,
};
use tokio::net::TcpListener;
use tonic::{Request, Status, transport::Channel};

const USERS: i64 = 100;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let secs = args.iter().find_map(|a| a.parse::<u64>().ok()).unwrap_or(8);
    let backends: Vec<&str> = match args.iter().find(|a| a.parse::<u64>().is_err()) {
        Some(b) => vec![b.as_str()],
        None => vec!["sqlite", "postgres"],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for backend in backends {
        rt.block_on(run(backend, Duration::from_secs(secs)));
    }
}

async fn run(backend: &str, duration: Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let admin = std::env::var("ROSETTA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pg_name = format!("rosetta_bench_{}", std::process::id());
    let url = match backend {
        "sqlite" => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        ),
        "postgres" => {
            let admin_db = Database::connect(&admin)
                .await
                .expect("PostgreSQL reachable");
            admin_db
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"))
                .await
                .expect("drop old");
            admin_db
                .execute_unprepared(&format!("CREATE DATABASE {pg_name}"))
                .await
                .expect("create");
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            format!("{base}/{pg_name}")
        }
        other => panic!("unknown backend {other}: sqlite or postgres"),
    };
    let db = rosetta_db::connect(&url).await.expect("database");
    let first = seed(&db).await;
    let addr = serve(db.clone()).await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");

    let start = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let recording = Arc::new(AtomicBool::new(false));
    for i in 0..USERS {
        subscribe(
            channel.clone(),
            first + i,
            start,
            latencies.clone(),
            recording.clone(),
        )
        .await;
    }

    // Phase 1: closed loop, as fast as the server answers.
    recording.store(true, Ordering::SeqCst);
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let senders: Vec<_> = (0..USERS)
        .map(|i| {
            let (channel, sent) = (channel.clone(), sent.clone());
            tokio::spawn(async move {
                let mut client = MessagingServiceClient::new(channel);
                let (me, to) = (first + i, first + (i ^ 1));
                let mut n = 0u64;
                while Instant::now() < deadline {
                    send(&mut client, me, to, n, start).await;
                    n += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for s in senders {
        s.await.expect("sender");
    }
    let elapsed = duration.as_secs_f64();
    let rate = sent.load(Ordering::Relaxed) as f64 / elapsed;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (p50, p99) = percentiles(&latencies);
    println!(
        "{backend}: closed loop, {USERS} users: {rate:.0} msgs/s sustained over {elapsed:.0} s; \
         send→push p50 {p50:.2} ms, p99 {p99:.2} ms"
    );

    // Phase 2: open loop at half the sustained rate.
    latencies.lock().expect("lock").clear();
    let half = rate / 2.0;
    let per_user = Duration::from_secs_f64(USERS as f64 / half.max(1.0));
    let deadline = Instant::now() + duration;
    let senders: Vec<_> = (0..USERS)
        .map(|i| {
            let channel = channel.clone();
            tokio::spawn(async move {
                let client = MessagingServiceClient::new(channel);
                let (me, to) = (first + i, first + (i ^ 1));
                // Staggered starts: users send evenly spread over the period, not in bursts.
                let offset = per_user.mul_f64(i as f64 / USERS as f64);
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, per_user);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut n = 1_000_000u64;
                while Instant::now() < deadline {
                    tick.tick().await;
                    let mut client = client.clone();
                    tokio::spawn(async move { send(&mut client, me, to, n, start).await });
                    n += 1;
                }
            })
        })
        .collect();
    for s in senders {
        s.await.expect("sender");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (p50, p99) = percentiles(&latencies);
    let count = latencies.lock().expect("lock").len();
    println!(
        "{backend}: open loop at {half:.0} msgs/s (half): {count} pushes, send→push p50 {p50:.2} ms, p99 {p99:.2} ms"
    );
    recording.store(false, Ordering::SeqCst);
    drop(db);
    if backend == "postgres"
        && let Ok(admin_db) = Database::connect(&admin).await
    {
        let _ = admin_db
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"))
            .await;
    }
}

/// 100 users in friend pairs (100, 101), (102, 103) …; returns the first id.
async fn seed(db: &DatabaseConnection) -> i64 {
    let now = rosetta_db::now_ms();
    let users = (0..USERS).map(|i| user::ActiveModel {
        username: Set(format!("bench{i}")),
        ocid: Set(format!("bench{i:05}")),
        email: Set(None),
        phone: Set(None),
        nickname: Set(format!("b{i}")),
        avatar: Set(String::new()),
        signature: Set(String::new()),
        gender: Set(0),
        vip: Set(false),
        security_question_id: Set(0),
        security_answer_hash: Set(None),
        created_at_ms: Set(now),
        deleted_at_ms: Set(None),
        ..Default::default()
    });
    user::Entity::insert_many(users)
        .exec_without_returning(db)
        .await
        .expect("users");
    let first = user::Entity::find()
        .all(db)
        .await
        .expect("users")
        .iter()
        .map(|u| u.id)
        .min()
        .expect("a user");
    let friendships = (0..USERS).map(|i| friendship::ActiveModel {
        user_id: Set(first + i),
        friend_id: Set(first + (i ^ 1)),
        since_ms: Set(now),
    });
    friendship::Entity::insert_many(friendships)
        .exec_without_returning(db)
        .await
        .expect("friendships");
    first
}

/// Serves the service on loopback; the `x-user` header names the caller.
async fn serve(db: DatabaseConnection) -> std::net::SocketAddr {
    let config = MessagingConfig::default();
    let bus: Arc<dyn rosetta_messaging::Bus> = Arc::new(LocalBus::default());
    let events = Arc::new(Events::new(db.clone(), bus.clone()));
    let presences = Arc::new(Presences::new(
        db.clone(),
        config.presence_timeout,
        events.clone(),
    ));
    // The bench process ends with the server: its tasks are never stopped.
    let tasks = rosetta_kit::tasks::Tasks::new();
    presences.clone().keep(bus.hub().clone(), &tasks);
    let messaging = Messaging::new(db, config, bus, events, presences, &tasks);
    let service = MessagingServiceServer::with_interceptor(
        MessagingGrpc::new(Arc::new(messaging), tasks),
        |mut req: Request<()>| {
            let user_id = req
                .metadata()
                .get("x-user")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| Status::unauthenticated("x-user"))?;
            req.extensions_mut().insert(Caller {
                user_id,
                session_id: String::new(),
            });
            Ok(req)
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    addr
}

fn as_user<T>(message: T, user: i64) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut()
        .insert("x-user", user.to_string().parse().expect("ascii"));
    req
}

/// Sends one message whose text is the send time (µs since `start`).
async fn send(
    client: &mut MessagingServiceClient<Channel>,
    me: i64,
    to: i64,
    n: u64,
    start: Instant,
) {
    let request = SendMessageRequest {
        to: Some(To::ToUserId(to)),
        kind: MessageKind::Text.into(),
        text: start.elapsed().as_micros().to_string(),
        client_message_id: format!("{me}-{n}"),
        ..Default::default()
    };
    if let Err(status) = client.send_message(as_user(request, me)).await {
        eprintln!("send failed: {status}");
    }
}

/// Opens `me`'s stream; records the latency of every message pushed to it.
async fn subscribe(
    channel: Channel,
    me: i64,
    start: Instant,
    latencies: Arc<Mutex<Vec<u64>>>,
    recording: Arc<AtomicBool>,
) {
    let mut client = MessagingServiceClient::new(channel);
    let mut stream = client
        .subscribe(as_user(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            me,
        ))
        .await
        .expect("subscribe")
        .into_inner();
    // Wait for CaughtUp so the stream is live before sending starts.
    while let Ok(Some(item)) = stream.message().await {
        if matches!(item.item, Some(Item::CaughtUp(_))) {
            break;
        }
    }
    tokio::spawn(async move {
        while let Ok(Some(item)) = stream.message().await {
            let Some(Item::Event(event)) = item.item else {
                continue;
            };
            let Some(Kind::Message(m)) = event.kind else {
                continue;
            };
            if m.sender_id == me || !recording.load(Ordering::Relaxed) {
                continue;
            }
            if let Ok(sent_us) = m.text.parse::<u128>() {
                let us = start.elapsed().as_micros().saturating_sub(sent_us);
                latencies
                    .lock()
                    .expect("lock")
                    .push(u64::try_from(us).unwrap_or(u64::MAX));
            }
        }
    });
}

/// p50 and p99 in milliseconds.
fn percentiles(samples: &Mutex<Vec<u64>>) -> (f64, f64) {
    let mut v = samples.lock().expect("lock").clone();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    (at(0.50), at(0.99))
}
