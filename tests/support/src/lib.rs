//! End-to-end test harness: boots a real node on an ephemeral loopback port, on SQLite (a
//! temporary directory) or on a PostgreSQL database created for the test and dropped after.
//!
//! PostgreSQL comes from `ROSETTA_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, the development machines' server). A
//! PostgreSQL test whose server cannot be reached fails with a message saying so: it never
//! passes silently.

mod accepted;
pub mod relay;

pub use accepted::{Accepted, accepted};

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rosetta_account::{HashPool, MemorySender};
use rosetta_node::{Config, Node, Role, node::Plugins};
use rosetta_proto::{
    account::v1::{
        LoginRequest, LoginResponse, PasswordScheme, RegisterRequest,
        account_service_client::AccountServiceClient, login_request::Identifier,
    },
    messaging::v1::{GetPresenceRequest, messaging_service_client::MessagingServiceClient},
    social::v1::PresenceStatus,
};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Request, transport::Channel};

pub use rosetta_db::testing::{DEFAULT_POSTGRES_URL, PgDatabase};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend: `both_backends!(name, body_fn)` defines
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $body($crate::Backend::Postgres).await;
            }
        }
    };
}

/// A running node and what a test needs to talk to it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    /// Verification codes the node "sent".
    pub codes: MemorySender,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a node running every role; `tweak` adjusts the configuration first.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_hash_pool(backend, tweak, None).await
    }

    /// As [`TestServer::start_with`], hashing passwords on `hash_pool` when given (a test that
    /// holds the pool's workers busy).
    pub async fn start_with_hash_pool(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        hash_pool: Option<Arc<HashPool>>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.database_url = pg.as_ref().map(|p| p.url.clone());
        // Tests create many accounts: allow codes to be re-sent at once.
        config.account.code_resend_interval_secs = 0;
        config.account.code_max_per_hour = 1000;
        // Every test client and bridge connection comes from 127.0.0.1: no per-source limits
        // unless a test sets them.
        config.account.source_login_per_minute = 0;
        config.account.source_register_per_minute = 0;
        config.account.source_code_per_minute = 0;
        tweak(&mut config);
        let codes = MemorySender::default();
        let plugins = Plugins {
            code_sender: Arc::new(codes.clone()),
            hash_pool,
        };
        let node = Node::build(&config, Role::All, plugins)
            .await
            .expect("node builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(node.serve(listener, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            config,
            codes,
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: dir,
            _pg: pg,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        connect(&self.endpoint(), Duration::from_secs(2)).await
    }

    /// The services as a bridge reaches them, with the node's bridge credential.
    pub fn backend(&self) -> rosetta_bridge_kit::Backend {
        let backend =
            rosetta_bridge_kit::Backend::connect_lazy(&self.endpoint()).expect("endpoint");
        let key = rosetta_node::node::bridge_key(&self.config, false)
            .expect("bridge key readable")
            .expect("the node generated a bridge key");
        backend.with_bridge_key(&key.to_hex()).expect("hex key")
    }

    pub async fn account(&self) -> AccountServiceClient<Channel> {
        AccountServiceClient::new(self.channel().await)
    }

    /// Gives `name` the admin role as `rosetta admin grant` does: through the library, on the
    /// node's database.
    pub async fn grant_admin(&self, name: &str) {
        grant_admin(&self.config.database_url(), name).await;
    }

    /// Registers `username` with a plain password and logs in.
    pub async fn user(&self, username: &str, password: &str) -> LoginResponse {
        let mut account = self.account().await;
        account
            .register(RegisterRequest {
                username: username.into(),
                password: password.into(),
                password_scheme: PasswordScheme::Plain.into(),
                nickname: username.to_uppercase(),
                ..Default::default()
            })
            .await
            .expect("register");
        self.login(username, password).await
    }

    /// Logs `username` in over gRPC with a plain password.
    pub async fn login(&self, username: &str, password: &str) -> LoginResponse {
        self.account()
            .await
            .login(LoginRequest {
                identifier: Some(Identifier::Username(username.into())),
                password: password.into(),
                password_scheme: PasswordScheme::Plain.into(),
                client: "test".into(),
            })
            .await
            .expect("login")
            .into_inner()
    }

    /// `user`'s presence status as the holder of `viewer_token` sees it (GetPresence).
    pub async fn presence(&self, viewer_token: &str, user: i64) -> PresenceStatus {
        MessagingServiceClient::new(self.channel().await)
            .get_presence(authed(
                GetPresenceRequest {
                    user_ids: vec![user],
                },
                viewer_token,
            ))
            .await
            .expect("presence")
            .into_inner()
            .presences
            .first()
            .map_or(PresenceStatus::Unspecified, |p| p.status())
    }

    /// Reads `user`'s presence as the holder of `viewer_token` sees it until it is `want`,
    /// failing after `within`. Presence is state kept by the node, and a viewer who is not a
    /// friend gets no event when it changes, so it is read again every 20 ms.
    pub async fn await_presence(
        &self,
        viewer_token: &str,
        user: i64,
        want: PresenceStatus,
        within: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let seen = self.presence(viewer_token, user).await;
            if seen == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{user} still {seen:?} after {within:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the node and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("node task").expect("node ran cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A channel to `endpoint`, retried until it accepts or `patience` runs out (a node may still
/// be starting, e.g. a freshly spawned process).
pub async fn connect(endpoint: &str, patience: Duration) -> Channel {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Ok(channel) = Channel::from_shared(endpoint.to_owned())
            .expect("uri")
            .connect()
            .await
        {
            return channel;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("node at {endpoint} never accepted connections");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request carrying `access_token` as its bearer token.
pub fn authed<T>(message: T, access_token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        rosetta_auth::bearer(access_token).expect("ascii token"),
    );
    request
}

/// Occupies one of `pool`'s hashing workers until the returned sender is used or dropped; the
/// future is the job's end. A test holds every worker this way to keep password checks
/// waiting in the queue, that is, inside their gRPC handlers.
pub fn hold_hash_worker(
    pool: &HashPool,
) -> (
    std::sync::mpsc::Sender<()>,
    impl Future<Output = rosetta_kit::ApiResult<()>> + use<>,
) {
    let (open, gate) = std::sync::mpsc::channel::<()>();
    let held = pool
        .submit(move || {
            gate.recv().ok();
            Ok(())
        })
        .expect("the idle pool admits");
    (open, held)
}

/// The reason of a call the services refused; panics (failing the test) on a status without
/// one, such as a transport failure.
pub fn reason(status: &tonic::Status) -> rosetta_proto::Reason {
    rosetta_proto::Reason::of(status).unwrap_or_else(|| panic!("no error reason in {status:?}"))
}

/// What the in-process load benches of the bridges share.
pub mod bench {
    /// `name` from the environment, parsed, or `default`.
    pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// This process's resident set size in KiB (0 where /proc is missing).
    pub fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmRSS:"))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|kib| kib.parse().ok())
            })
            .unwrap_or(0)
    }
}

/// Gives `name` the admin role on the database at `url`, as `rosetta admin grant` does.
pub async fn grant_admin(url: &str, name: &str) {
    let db = rosetta_db::connect(url)
        .await
        .expect("the test reaches the node's database");
    rosetta_account::admin::grant(&db, name)
        .await
        .expect("grant");
}
