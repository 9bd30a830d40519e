//! Graceful shutdown as an operator sees it: `rosetta all` given SIGTERM lets its bridges sign
//! their users out against its still-running services before it stops them; a bridge process
//! whose services are gone or hang still exits within its bound; a node that stops ends its
//! open event streams instead of waiting for them forever.

mod clients;

use std::{
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant},
};

use clients::{PATIENCE, Pipe, process::Rosetta};
use rosetta_db::entity::{legacy_token, messaging::presence, session};
use rosetta_proto::messaging::v1::{
    SubscribeRequest, messaging_service_client::MessagingServiceClient, subscribe_response::Item,
};
use rosetta_testkit::{Backend, TestServer, authed};
use sea_orm::{ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _};

/// `presences.status` values (`PresenceStatus`).
const ONLINE: i16 = 1;
const OFFLINE: i16 = 2;

/// The bridges' shutdown bound the processes under test run with
/// (`shutdown.sessions_ms`): short, so that a bridge stuck on a hung service shows.
const SESSIONS_BOUND: Duration = Duration::from_secs(3);
/// What a process may take beyond its bounds to start up its exit and be reaped.
const SLACK: Duration = Duration::from_secs(5);

/// `rosetta ARGS…` with the sessions' drain bound the tests measure against.
fn spawn(args: &[&str], dir: &Path, env: &[(&str, String)]) -> Rosetta {
    let bound = (
        "ROSETTA_SHUTDOWN__SESSIONS_MS",
        SESSIONS_BOUND.as_millis().to_string(),
    );
    let env: Vec<(&str, String)> = std::iter::once(bound).chain(env.iter().cloned()).collect();
    Rosetta::spawn(args, dir, &env)
}

/// A free loopback address (bound, read, released).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// Polls until `addr` accepts connections.
async fn accepting(addr: SocketAddr, process: &Rosetta) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "{addr} never accepted; log:\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every bridge but pipe off, no web client and no metrics, so that the test binds no fixed
/// port.
fn pipe_only(pipe: SocketAddr) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("ROSETTA_BRIDGES__PIPE__LISTEN", pipe.to_string()),
        ("ROSETTA_WEB_LISTEN", String::new()),
        ("ROSETTA_METRICS_LISTEN", String::new()),
    ];
    for off in [
        "ROSETTA_BRIDGES__DPC__ENABLED",
        "ROSETTA_BRIDGES__IMPS__ENABLED",
        "ROSETTA_BRIDGES__OURCHAT__ENABLED",
        "ROSETTA_BRIDGES__CLOUDCHAT__ENABLED",
    ] {
        env.push((off, "false".into()));
    }
    env
}

async fn open_db(dir: &Path) -> DatabaseConnection {
    let url = format!("sqlite://{}?mode=ro", dir.join("rosetta.db").display());
    sea_orm::Database::connect(&url).await.expect("open SQLite")
}

/// The session behind `user`'s pipe token, once the user shows online.
async fn online_session(db: &DatabaseConnection, user: i64) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let token = legacy_token::Entity::find()
            .filter(legacy_token::Column::UserId.eq(user))
            .one(db)
            .await
            .expect("read legacy tokens");
        let shown = presence::Entity::find_by_id(user)
            .one(db)
            .await
            .expect("read presence");
        if let (Some(token), Some(presence)) = (token, shown)
            && presence.status == ONLINE
        {
            return token.session_id;
        }
        assert!(
            Instant::now() < deadline,
            "the pipe user never showed online"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM to `rosetta all` with a pipe user logged in: the process exits cleanly, and in its
/// database the user's session is revoked (the pipe token deleted with it) and the user
/// signed out. The bridge's close-time SetPresence and Logout reach the services because those
/// stop only after the bridges have ended their sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_revokes_sessions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (grpc, pipe) = (free_addr(), free_addr());
    let mut env = pipe_only(pipe);
    env.push(("ROSETTA_GRPC_LISTEN", grpc.to_string()));
    let mut all = spawn(&["all"], dir.path(), &env);
    accepting(pipe, &all).await;

    let (mut client, uid, _token) = Pipe::user(pipe, "stella").await;
    let user: i64 = uid.parse().expect("numeric uid");
    let db = open_db(dir.path()).await;
    let session_id = online_session(&db, user).await;

    let took = all.terminate(SESSIONS_BOUND + SLACK).await;
    let log = all.log();
    eprintln!("rosetta all exited {took:?} after SIGTERM");
    client.closed().await;

    let session = session::Entity::find_by_id(session_id.clone())
        .one(&db)
        .await
        .expect("read sessions")
        .expect("the session row stays");
    assert!(
        session.revoked_at_ms.is_some(),
        "the pipe login's session {session_id} is revoked; log:\n{log}"
    );
    let tokens = legacy_token::Entity::find()
        .filter(legacy_token::Column::UserId.eq(user))
        .all(&db)
        .await
        .expect("read legacy tokens");
    assert!(tokens.is_empty(), "the pipe token went with its session");
    let shown = presence::Entity::find_by_id(user)
        .one(&db)
        .await
        .expect("read presence")
        .expect("a presence row");
    assert_eq!(shown.status, OFFLINE, "signed out; log:\n{log}");
}

/// The scenario of the report: a logged-in pipe user on a bridge process whose services have
/// stopped (the node is gone: every call is refused). SIGTERM ends the process promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_exits_after_sigterm_with_its_services_stopped() {
    let services = TestServer::start(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let pipe = free_addr();
    // The node's data dir holds the bridge key the bridge presents.
    let key = services.config.data_dir.join("bridge.key");
    let mut bridge = spawn(
        &["bridge", "pipe", "--grpc", &services.endpoint()],
        dir.path(),
        &[
            ("ROSETTA_BRIDGES__PIPE__LISTEN", pipe.to_string()),
            ("ROSETTA_BRIDGE_KEY_FILE", key.display().to_string()),
        ],
    );
    accepting(pipe, &bridge).await;
    let (_client, _uid, _token) = Pipe::user(pipe, "orla").await;
    // The node stops with the bridge's event stream for orla open: the node ends the stream
    // rather than wait for it until its drain bound.
    tokio::time::timeout(PATIENCE, services.stop())
        .await
        .expect("the node stops with a bridge's stream open");

    let took = bridge.terminate(SESSIONS_BOUND + SLACK).await;
    eprintln!("bridge with its services stopped exited {took:?} after SIGTERM");
}

/// A bridge whose services hang (they accept connections and never answer) with a client in
/// the middle of logging in, and another connected: SIGTERM ends the process within its
/// bound, whatever the stuck call does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_exits_within_its_bound_when_its_services_hang() {
    // Accepts connections and never answers on them, as a hung server.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hung_addr = hung.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("temp dir");
    let pipe = free_addr();
    let mut bridge = spawn(
        &["bridge", "pipe", "--grpc", &format!("http://{hung_addr}")],
        dir.path(),
        &[("ROSETTA_BRIDGES__PIPE__LISTEN", pipe.to_string())],
    );
    accepting(pipe, &bridge).await;
    let mut logging_in = Pipe::connect(pipe).await;
    logging_in.send("login|nobody|pw-nobody").await;
    let _idle = Pipe::connect(pipe).await;
    // The login is under way once the bridge's call reached the hung server.
    let (_held, _) = tokio::time::timeout(PATIENCE, hung.accept())
        .await
        .expect("the bridge calls the services in time")
        .expect("accept");

    let took = bridge.terminate(SESSIONS_BOUND + SLACK).await;
    eprintln!("bridge with hung services exited {took:?} after SIGTERM");
}

/// A node told to stop ends its open event streams with UNAVAILABLE (the client resumes
/// elsewhere) and then returns; an open stream no longer holds the drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_node_ends_open_event_streams() {
    let server = TestServer::start(Backend::Sqlite).await;
    let login = server.user("ines", "pw-ines").await;
    let mut stream = MessagingServiceClient::new(server.channel().await)
        .subscribe(authed(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            &login.access_token,
        ))
        .await
        .expect("subscribe")
        .into_inner();
    let first = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("caught up in time")
        .expect("stream healthy")
        .and_then(|r| r.item);
    assert!(matches!(first, Some(Item::CaughtUp(_))), "{first:?}");

    let started = Instant::now();
    let stopping = tokio::spawn(server.stop());
    let ended = loop {
        match tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("the stream ends in time")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without saying why"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("the node stops in time")
        .expect("no panic");
    eprintln!(
        "node with an open stream stopped in {:?}",
        started.elapsed()
    );
}
