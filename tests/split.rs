//! The split deployment proven without a container engine: every rosetta role of
//! docker-compose.yml runs as its own process on loopback, with the command and environment
//! the compose file gives it, on PostgreSQL + NATS (127.0.0.1:5432 and :4222, or
//! ROSETTA_TEST_POSTGRES_URL / ROSETTA_TEST_NATS_URL; the test fails without them).
//!
//! Reading the compose file (rather than repeating it) keeps the two from drifting: compose
//! host names become loopback ports, `0.0.0.0:PORT` listeners get ephemeral ports, secrets
//! and data directories become files in a temporary directory, and every variable naming an
//! infrastructure service (PostgreSQL, NATS, the trace collector) must be one this test knows
//! how to stand in for, or it fails. Roles start in the order `depends_on` gives, each wave
//! once the previous one is healthy, as compose does.

mod clients;
#[path = "split/status.rs"]
mod status;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{Arc, Mutex},
    time::Duration,
};

use clients::{Fields, Imps, Pipe};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::{Span, span::SpanKind},
};
use rosetta_bridge_imps::codec::{ClientMessage, cmd};
use rosetta_proto::{
    account::v1::{
        LoginRequest, PasswordScheme, RegisterRequest,
        account_service_client::AccountServiceClient, login_request::Identifier,
    },
    common::v1::{UserRef, user_ref},
    messaging::v1::{
        Event, MessageKind, SendMessageRequest, SubscribeRequest, SubscribeResponse, event::Kind,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
        subscribe_response::Item,
    },
    social::v1::{
        RespondFriendRequestRequest, SendFriendRequestRequest,
        respond_friend_request_request::Request as Which,
        social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{self as support, PgDatabase, authed};
use serde_norway::Value;
use tokio::net::TcpStream;
use tonic::{Streaming, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tracing::Instrument as _;

const COMPOSE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml");
/// The image every rosetta role of the compose file runs.
const ROSETTA_IMAGE: &str = "rosetta:latest";
/// The name this test process exports its own spans under.
const TEST_SERVICE: &str = "rosetta-split-test";

// --- the compose file ---------------------------------------------------------------------

/// One rosetta service of docker-compose.yml.
#[derive(Debug)]
struct Role {
    service: String,
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    depends_on: BTreeSet<String>,
    replicas: usize,
}

/// The compose file's rosetta roles and the names of its other (infrastructure) services.
struct Compose {
    roles: Vec<Role>,
    infrastructure: BTreeSet<String>,
    secrets: BTreeSet<String>,
}

fn read_compose() -> Compose {
    let text = std::fs::read_to_string(COMPOSE_FILE).expect("docker-compose.yml is readable");
    let mut doc: Value = serde_norway::from_str(&text).expect("docker-compose.yml is YAML");
    // Each pass resolves one level of `<<:` merge keys (a merged mapping may merge another).
    for _ in 0..8 {
        let before = doc.clone();
        doc.apply_merge().expect("merge keys resolve");
        if doc == before {
            break;
        }
    }
    let services = doc["services"].as_mapping().expect("services mapping");
    let mut roles = Vec::new();
    let mut infrastructure = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().expect("service names are strings").to_owned();
        assert!(
            service.get("healthcheck").is_some(),
            "compose service {name} has a healthcheck"
        );
        if service.get("image").and_then(Value::as_str) != Some(ROSETTA_IMAGE) {
            infrastructure.insert(name);
            continue;
        }
        let command = strings(&service["command"]);
        assert!(!command.is_empty(), "{name} names its role in `command`");
        let environment = service
            .get("environment")
            .and_then(Value::as_mapping)
            .map(|env| {
                env.iter()
                    .map(|(k, v)| (scalar(k), scalar(v)))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default();
        let depends_on = match service.get("depends_on") {
            Some(Value::Mapping(deps)) => deps.keys().map(scalar).collect(),
            Some(deps) => strings(deps).into_iter().collect(),
            None => BTreeSet::new(),
        };
        let replicas = service
            .get("deploy")
            .and_then(|d| d.get("replicas"))
            .and_then(Value::as_u64)
            .map_or(1, |n| usize::try_from(n).expect("replica count"));
        roles.push(Role {
            service: name,
            command,
            environment,
            depends_on,
            replicas,
        });
    }
    let secrets = doc["secrets"]
        .as_mapping()
        .map(|s| s.keys().map(scalar).collect())
        .unwrap_or_default();
    Compose {
        roles,
        infrastructure,
        secrets,
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| items.iter().map(scalar).collect())
        .unwrap_or_default()
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar in docker-compose.yml, got {other:?}"),
    }
}

// --- the processes ------------------------------------------------------------------------

/// How the test (like the compose healthcheck) knows a process is ready.
#[derive(Debug, Clone)]
enum Health {
    /// `grpc.health.v1` reports SERVING.
    Grpc(SocketAddr),
    /// Every legacy listener accepts connections.
    Tcp(Vec<SocketAddr>),
}

/// One process to run: a compose service, or one replica of it.
#[derive(Debug, Clone)]
struct Spec {
    name: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    /// Working and data directory (the image's /var/lib/rosetta).
    dir: PathBuf,
    health: Health,
}

impl Spec {
    fn log(&self) -> PathBuf {
        self.dir.join("rosetta.log")
    }

    fn spawn(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("log file");
        Command::new(env!("CARGO_BIN_EXE_rosetta"))
            .args(&self.args)
            // Exactly the compose environment (plus the test's few additions), not the
            // developer's ROSETTA_* variables.
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.dir)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn rosetta")
    }

    fn grpc(&self) -> SocketAddr {
        match &self.health {
            Health::Grpc(addr) => *addr,
            Health::Tcp(_) => panic!("{} serves no gRPC", self.name),
        }
    }

    fn listeners(&self) -> &[SocketAddr] {
        match &self.health {
            Health::Tcp(addrs) => addrs,
            Health::Grpc(_) => panic!("{} is not a bridge", self.name),
        }
    }

    async fn wait_healthy(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if self.healthy().await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} never became healthy",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn healthy(&self) -> bool {
        match &self.health {
            Health::Grpc(addr) => {
                let Ok(channel) = Channel::from_shared(format!("http://{addr}"))
                    .expect("uri")
                    .connect()
                    .await
                else {
                    return false;
                };
                HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                    .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
            }
            Health::Tcp(addrs) => {
                for addr in addrs {
                    if TcpStream::connect(addr).await.is_err() {
                        return false;
                    }
                }
                true
            }
        }
    }
}

/// The running deployment; kills every process when dropped.
struct Cluster {
    specs: BTreeMap<String, Spec>,
    children: BTreeMap<String, Child>,
    _dir: tempfile::TempDir,
    _pg: PgDatabase,
}

impl Cluster {
    /// Starts every role of the compose file, replicas included, in dependency order.
    async fn start(otlp_endpoint: &str) -> Self {
        let compose = read_compose();
        let pg = PgDatabase::create().await;
        let nats = std::env::var("ROSETTA_TEST_NATS_URL")
            .unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        assert_nats_reachable(&nats).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = rosetta_auth::KeyFiles::in_dir(&dir.path().join("secrets"));
        rosetta_auth::KeyPair::load_or_generate(&keys).expect("token keys");
        let bridge_key = dir.path().join("secrets").join("bridge.key");
        rosetta_auth::BridgeKey::load_or_generate(&bridge_key).expect("bridge key");
        // The stand-ins for the compose file's infrastructure, by variable.
        let infrastructure_values = BTreeMap::from([
            ("ROSETTA_DATABASE_URL", pg.url.clone()),
            ("ROSETTA_NATS_URL", nats),
            ("ROSETTA_OTLP_ENDPOINT", otlp_endpoint.to_owned()),
        ]);
        let secret_files = BTreeMap::from([
            ("jwt_private_key", keys.private.clone()),
            ("jwt_public_key", keys.public.clone()),
            ("bridge_key", bridge_key),
        ]);
        for secret in &compose.secrets {
            assert!(
                secret_files.contains_key(secret.as_str()),
                "the test has a stand-in for the compose secret {secret}"
            );
        }
        // This deployment's own NATS subjects: tests share the NATS server.
        let subject = format!("rosetta.split.{}", uuid::Uuid::new_v4().simple());

        // Instances and their listeners: compose `0.0.0.0:PORT` → a free loopback port.
        let mut instances = Vec::new();
        for role in &compose.roles {
            for replica in 0..role.replicas {
                let name = if role.replicas > 1 {
                    format!("{}.{}", role.service, replica + 1)
                } else {
                    role.service.clone()
                };
                let ports: BTreeMap<u16, u16> = role
                    .environment
                    .values()
                    .chain(&role.command)
                    .filter_map(|v| v.strip_prefix("0.0.0.0:"))
                    .map(|port| (port.parse().expect("listen port"), free_port()))
                    .collect();
                instances.push((role, name, ports));
            }
        }
        // Where a compose `http://service:PORT` reaches: the n-th process naming a
        // replicated service gets replica n (as DNS round robin would spread them).
        let mut lookups: BTreeMap<String, usize> = BTreeMap::new();
        let mut resolve =
            |service: &str, port: u16| -> Option<u16> {
                let replicas: Vec<_> = instances
                    .iter()
                    .filter(|(role, ..)| role.service == service)
                    .collect();
                if replicas.is_empty() {
                    return None;
                }
                let n = lookups.entry(service.to_owned()).or_default();
                let (.., ports) = replicas[*n % replicas.len()];
                *n += 1;
                Some(*ports.get(&port).unwrap_or_else(|| {
                    panic!("compose service {service} listens on no port {port}")
                }))
            };
        let mut specs = BTreeMap::new();
        for (role, name, ports) in &instances {
            let dir = dir.path().join(name);
            std::fs::create_dir_all(&dir).expect("instance dir");
            // A compose value (of variable `key`, or a command argument) as seen on loopback.
            let mut local = |key: Option<&str>, value: &str| -> String {
                if let Some(infra) = compose.infrastructure.iter().find(|infra| {
                    value.contains(&format!("@{infra}:")) || value.contains(&format!("//{infra}:"))
                }) {
                    key.and_then(|key| infrastructure_values.get(key))
                        .unwrap_or_else(|| {
                            panic!(
                                "{}: {value} names {infra}; the test has no stand-in",
                                role.service
                            )
                        })
                        .clone()
                } else if let Some(secret) = value.strip_prefix("/run/secrets/") {
                    secret_files
                        .get(secret)
                        .unwrap_or_else(|| panic!("unknown secret {secret}"))
                        .display()
                        .to_string()
                } else if let Some(rest) = value.strip_prefix("/var/lib/rosetta") {
                    format!("{}{rest}", dir.display())
                } else if let Some(port) = value.strip_prefix("0.0.0.0:") {
                    format!("127.0.0.1:{}", ports[&port.parse::<u16>().expect("port")])
                } else if let Some(target) = value.strip_prefix("http://")
                    && let Some((service, port)) = target.split_once(':')
                    && let Ok(port) = port.parse::<u16>()
                    && let Some(local) = resolve(service, port)
                {
                    format!("http://127.0.0.1:{local}")
                } else {
                    value.to_owned()
                }
            };
            let args: Vec<String> = role.command.iter().map(|arg| local(None, arg)).collect();
            let mut env: BTreeMap<String, String> = role
                .environment
                .iter()
                .map(|(key, value)| (key.clone(), local(Some(key), value)))
                .collect();
            env.insert("ROSETTA_MESSAGING__BUS_SUBJECT".into(), subject.clone());
            // Status reports twice a second, so the status check need not wait.
            env.insert("ROSETTA_STATUS_INTERVAL_MS".into(), "500".into());
            // Export spans within a fraction of a second, so the test need not wait.
            env.insert("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into());
            let health = match env.get("ROSETTA_GRPC_LISTEN") {
                Some(addr) => Health::Grpc(addr.parse().expect("gRPC listen address")),
                None => Health::Tcp(
                    ports
                        .values()
                        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
                        .collect(),
                ),
            };
            specs.insert(
                name.clone(),
                Spec {
                    name: name.clone(),
                    args,
                    env,
                    dir,
                    health,
                },
            );
        }

        let mut cluster = Self {
            specs,
            children: BTreeMap::new(),
            _dir: dir,
            _pg: pg,
        };
        // Waves: every role whose rosetta dependencies are up, started together.
        let mut started: BTreeSet<&str> = BTreeSet::new();
        while started.len() < compose.roles.len() {
            let wave: Vec<&Role> = compose
                .roles
                .iter()
                .filter(|r| !started.contains(r.service.as_str()))
                .filter(|r| {
                    r.depends_on
                        .iter()
                        .all(|d| compose.infrastructure.contains(d) || started.contains(d.as_str()))
                })
                .collect();
            assert!(!wave.is_empty(), "depends_on has a cycle");
            let names: Vec<String> = instances
                .iter()
                .filter(|(role, ..)| wave.iter().any(|w| w.service == role.service))
                .map(|(.., name, _)| name.clone())
                .collect();
            for name in &names {
                cluster.spawn(name);
            }
            for name in &names {
                cluster.specs[name].wait_healthy().await;
            }
            started.extend(wave.iter().map(|r| r.service.as_str()));
        }
        cluster
    }

    fn spawn(&mut self, name: &str) {
        let child = self.specs[name].spawn();
        self.children.insert(name.to_owned(), child);
    }

    fn spec(&self, name: &str) -> &Spec {
        self.specs
            .get(name)
            .unwrap_or_else(|| panic!("the compose file runs no {name}"))
    }

    async fn channel(&self, name: &str) -> Channel {
        support::connect(
            &format!("http://{}", self.spec(name).grpc()),
            Duration::from_secs(30),
        )
        .await
    }

    /// SIGKILL: no shutdown, no flush.
    fn kill(&mut self, name: &str) {
        let mut child = self.children.remove(name).expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }

    /// Starts `name` again, with the same command, environment, port and data.
    async fn restart(&mut self, name: &str) {
        self.spawn(name);
        self.specs[name].wait_healthy().await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for spec in self.specs.values() {
                let Ok(file) = std::fs::File::open(spec.log()) else {
                    continue;
                };
                let lines: Vec<String> =
                    BufReader::new(file).lines().map_while(Result::ok).collect();
                eprintln!("--- {} (last lines of its log)", spec.name);
                for line in &lines[lines.len().saturating_sub(15)..] {
                    eprintln!("{line}");
                }
            }
        }
    }
}

async fn assert_nats_reachable(url: &str) {
    let addr = url.trim_start_matches("nats://");
    if let Err(err) = TcpStream::connect(addr).await {
        panic!(
            "NATS is not reachable at {url} ({err}); start it or point ROSETTA_TEST_NATS_URL at \
             one: this test does not pass without it"
        );
    }
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

// --- the OTLP receiver --------------------------------------------------------------------

/// A span as exported, with the name of the process (OTLP resource) that exported it.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    span: Span,
}

/// Collects every span the processes export over OTLP/gRPC.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Exported>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("receiver lock");
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(kv.value.as_ref()))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| Exported {
                    service: service.clone(),
                    span,
                }));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves OTLP/gRPC on a loopback port; returns its endpoint.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        format!("http://{addr}")
    }

    /// Waits until `found` accepts the spans received so far.
    async fn wait_for<T>(&self, what: &str, found: impl Fn(&[Exported]) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(result) = found(&self.spans.lock().expect("receiver lock")) {
                return result;
            }
            if tokio::time::Instant::now() > deadline {
                let spans = self.spans.lock().expect("receiver lock");
                let seen: Vec<String> = spans
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {} trace {} span {} parent {}",
                            e.service,
                            e.span.name,
                            hex::encode(&e.span.trace_id),
                            hex::encode(&e.span.span_id),
                            hex::encode(&e.span.parent_span_id)
                        )
                    })
                    .collect();
                panic!("never exported: {what}; received:\n{}", seen.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether `span` is `ancestor` or below it, following parent links within `trace`.
fn descends_from(trace: &[Exported], span: &Exported, ancestor: &Exported) -> bool {
    let mut current = span;
    for _ in 0..trace.len() {
        if current.span.span_id == ancestor.span.span_id {
            return true;
        }
        match trace
            .iter()
            .find(|e| e.span.span_id == current.span.parent_span_id)
        {
            Some(parent) => current = parent,
            None => return false,
        }
    }
    false
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The spans of one trace as JSON (the semantic attributes only), parents before children.
fn trace_json(spans: &[Exported]) -> serde_json::Value {
    serde_json::Value::Array(
        spans
            .iter()
            .map(|e| {
                let attributes: serde_json::Map<String, serde_json::Value> = e
                    .span
                    .attributes
                    .iter()
                    .filter(|kv| kv.key.starts_with("rpc.") || kv.key.starts_with("db."))
                    .map(|kv| (kv.key.clone(), text(kv.value.as_ref()).into()))
                    .collect();
                serde_json::json!({
                    "service.name": e.service,
                    "name": e.span.name,
                    "kind": SpanKind::try_from(e.span.kind).map_or("?", |k| k.as_str_name()),
                    "trace_id": hex::encode(&e.span.trace_id),
                    "span_id": hex::encode(&e.span.span_id),
                    "parent_span_id": hex::encode(&e.span.parent_span_id),
                    "attributes": attributes,
                })
            })
            .collect(),
    )
}

// --- the canonical API --------------------------------------------------------------------

/// A logged-in user.
struct User {
    id: i64,
    token: String,
}

async fn register(account: Channel, name: &str) -> User {
    let mut account = AccountServiceClient::new(account);
    account
        .register(RegisterRequest {
            username: name.into(),
            password: "pw".into(),
            password_scheme: PasswordScheme::Plain.into(),
            nickname: name.into(),
            ..Default::default()
        })
        .await
        .expect("register");
    let login = account
        .login(login_request(name))
        .await
        .expect("login")
        .into_inner();
    User {
        id: login.user.expect("user").id,
        token: login.access_token,
    }
}

fn login_request(name: &str) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(name.into())),
        password: "pw".into(),
        password_scheme: PasswordScheme::Plain.into(),
        client: "split-test".into(),
    }
}

async fn befriend(social: Channel, from: &User, to: &User) {
    let mut social = SocialServiceClient::new(social);
    social
        .send_friend_request(authed(
            SendFriendRequestRequest {
                to: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Id(to.id)),
                }),
                note: String::new(),
            },
            &from.token,
        ))
        .await
        .expect("friend request");
    social
        .respond_friend_request(authed(
            RespondFriendRequestRequest {
                request: Some(Which::FromUserId(from.id)),
                accept: true,
            },
            &to.token,
        ))
        .await
        .expect("accept");
}

fn text_message(to: i64, text: &str, key: &str) -> SendMessageRequest {
    SendMessageRequest {
        to: Some(To::ToUserId(to)),
        kind: MessageKind::Text.into(),
        text: text.into(),
        client_message_id: key.into(),
        ..Default::default()
    }
}

async fn subscribe(
    messaging: Channel,
    who: &User,
    after: Option<u64>,
) -> Streaming<SubscribeResponse> {
    MessagingServiceClient::new(messaging)
        .subscribe(authed(
            SubscribeRequest {
                after_seq: after,
                ..Default::default()
            },
            &who.token,
        ))
        .await
        .expect("subscribe")
        .into_inner()
}

async fn next_item(stream: &mut Streaming<SubscribeResponse>) -> Item {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an item within 10 s")
        .expect("stream healthy")
        .expect("stream open")
        .item
        .expect("item set")
}

/// The next message event, skipping presence, typing and the like.
async fn next_message(stream: &mut Streaming<SubscribeResponse>) -> (Event, String) {
    loop {
        if let Item::Event(event) = next_item(stream).await
            && let Some(Kind::Message(m)) = &event.kind
        {
            let text = m.text.clone();
            return (event, text);
        }
    }
}

async fn caught_up(stream: &mut Streaming<SubscribeResponse>) {
    loop {
        if let Item::CaughtUp(_) = next_item(stream).await {
            return;
        }
    }
}

// --- the scenario ---------------------------------------------------------------------------

/// The whole stack as processes: users registered on the account process and befriended on
/// the social process; messages sent through one messaging replica reach a stream on the
/// other at once; one trace spans this process, account and messaging, down to their SQL;
/// a pipe client talks to a gRPC client through the pipe bridge process, in one trace over
/// bridge, account and messaging; a messaging replica killed mid-burst and restarted loses
/// no acknowledged message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_deployment_end_to_end() {
    let receiver = Receiver::default();
    let otlp = receiver.start().await;
    let mut cluster = Cluster::start(&otlp).await;
    for name in ["account", "social", "messaging.1", "messaging.2", "files"] {
        cluster.spec(name);
    }

    let account = cluster.channel("account").await;
    let (alice, bob) = (
        register(account.clone(), "alice").await,
        register(account.clone(), "bob").await,
    );
    befriend(cluster.channel("social").await, &alice, &bob).await;

    // Across messaging replicas: bob listens on the second, alice sends through the first.
    let (first, second) = (
        cluster.channel("messaging.1").await,
        cluster.channel("messaging.2").await,
    );
    let mut bob_stream = subscribe(second.clone(), &bob, None).await;
    caught_up(&mut bob_stream).await;
    let mut via_first = MessagingServiceClient::new(first.clone());
    for i in 0..5 {
        let sent = via_first
            .send_message(authed(
                text_message(bob.id, &format!("hello {i}"), &format!("hello-{i}")),
                &alice.token,
            ))
            .await
            .expect("send")
            .into_inner();
        assert!(
            sent.recipient_online,
            "bob's stream on the other replica counts"
        );
        let (_, text) = next_message(&mut bob_stream).await;
        assert_eq!(text, format!("hello {i}"), "delivered across replicas");
    }

    trace_spans_three_processes(&cluster, &receiver, &otlp, &alice, &bob).await;
    pipe_leg(&cluster, &receiver, &bob).await;
    let (ivan, ivan_id) = imps_leg(&cluster, &bob).await;
    status::status_leg(&cluster, &alice, "alice").await;
    imps_stream_resumes_after_replica_restart(&mut cluster, ivan, ivan_id, &bob).await;
    killed_replica_loses_no_acknowledged_message(&mut cluster, &alice, &bob).await;
}

/// A span in this process (standing where a bridge's frame span stands, and calling through
/// the bridges' own client) is the parent of the account and messaging processes' call
/// spans, each the parent of its SQL: one trace, three processes.
async fn trace_spans_three_processes(
    cluster: &Cluster,
    receiver: &Receiver,
    otlp: &str,
    alice: &User,
    bob: &User,
) {
    let config = rosetta_node::Config {
        otlp_endpoint: Some(otlp.to_owned()),
        ..rosetta_node::Config::default()
    };
    let telemetry = rosetta_node::telemetry::init(&config, TEST_SERVICE).expect("telemetry");
    let backend = rosetta_bridge_kit::Backend::connect_each(&rosetta_bridge_kit::Endpoints {
        account: format!("http://{}", cluster.spec("account").grpc()),
        social: format!("http://{}", cluster.spec("social").grpc()),
        messaging: format!("http://{}", cluster.spec("messaging.2").grpc()),
        files: format!("http://{}", cluster.spec("files").grpc()),
    })
    .expect("endpoints");
    let frame = tracing::info_span!("legacy frame", otel.kind = "server", frame = "send_message");
    async {
        backend
            .account()
            .login(login_request("alice"))
            .await
            .expect("login through the bridge client");
        backend
            .messaging()
            .send_message(rosetta_bridge_kit::backend::authed(
                text_message(bob.id, "traced", "traced"),
                &alice.token,
            ))
            .await
            .expect("send through the bridge client");
    }
    .instrument(frame)
    .await;
    // Flushes this process's spans.
    drop(telemetry);

    let trace = receiver
        .wait_for("the frame, both calls and their SQL", |spans| {
            let root = spans
                .iter()
                .find(|e| e.service == TEST_SERVICE && e.span.name == "legacy frame")?;
            let in_trace: Vec<Exported> = spans
                .iter()
                .filter(|e| e.span.trace_id == root.span.trace_id)
                .cloned()
                .collect();
            let call = |service: &str, method: &str| {
                in_trace.iter().find(|e| {
                    e.service == service
                        && e.span.name.ends_with(method)
                        && e.span.parent_span_id == root.span.span_id
                })
            };
            let has_sql = |call: &Exported| {
                in_trace.iter().any(|e| {
                    e.service == call.service
                        && e.span.name.starts_with("sql ")
                        && descends_from(&in_trace, e, call)
                })
            };
            let login = call("rosetta-account", "AccountService/Login")?;
            let send = call("rosetta-messaging", "MessagingService/SendMessage")?;
            (has_sql(login) && has_sql(send)).then_some(in_trace)
        })
        .await;
    let services: BTreeSet<&str> = trace.iter().map(|e| e.service.as_str()).collect();
    assert_eq!(
        services,
        BTreeSet::from([TEST_SERVICE, "rosetta-account", "rosetta-messaging"]),
        "one trace, three processes"
    );
    for call in trace.iter().filter(|e| e.span.name.contains("Service/")) {
        assert_eq!(
            call.span.kind,
            SpanKind::Server as i32,
            "{} is a server span",
            call.span.name
        );
        assert_eq!(
            attribute(&call.span.attributes, "rpc.system").map(|v| text(Some(v))),
            Some("grpc".into())
        );
    }
    write_trace("split-trace.json", trace);
}

/// Writes a trace's spans as JSON into the target directory and prints it.
fn write_trace(file: &str, mut trace: Vec<Exported>) {
    trace.sort_by_key(|e| e.span.start_time_unix_nano);
    let json = serde_json::to_string_pretty(&trace_json(&trace)).expect("json");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(file);
    std::fs::write(&path, &json).expect("write the trace");
    println!("one trace across processes ({}):\n{json}", path.display());
}

/// SIGKILL one messaging replica in the middle of a burst of sends through it, restart it:
/// every acknowledged message is there exactly once with its seq, and resending the whole
/// burst with its keys stores nothing twice.
async fn killed_replica_loses_no_acknowledged_message(
    cluster: &mut Cluster,
    alice: &User,
    bob: &User,
) {
    const BURST: usize = 200;
    let first = cluster.channel("messaging.1").await;
    let acked = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let sender = {
        let (mut client, token, to, acked) = (
            MessagingServiceClient::new(first),
            alice.token.clone(),
            bob.id,
            acked.clone(),
        );
        tokio::spawn(async move {
            for i in 0..BURST {
                let key = format!("burst-{i}");
                match client
                    .send_message(authed(text_message(to, &key, &key), &token))
                    .await
                {
                    Ok(reply) => {
                        let seq = reply.into_inner().message.expect("message").seq;
                        acked.lock().expect("acked").push((key, seq));
                    }
                    Err(_) => return,
                }
            }
        })
    };
    while acked.lock().expect("acked").len() < 50 {
        assert!(!sender.is_finished(), "the burst failed before the kill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.kill("messaging.1");
    sender.await.expect("sender task");
    let acked = acked.lock().expect("acked").clone();
    assert!(
        acked.len() >= 50 && acked.len() < BURST,
        "killed mid-burst ({} acknowledged)",
        acked.len()
    );

    cluster.restart("messaging.1").await;
    let mut client = MessagingServiceClient::new(cluster.channel("messaging.1").await);
    for i in 0..BURST {
        let key = format!("burst-{i}");
        client
            .send_message(authed(text_message(bob.id, &key, &key), &alice.token))
            .await
            .expect("resend after the restart");
    }
    // Bob's whole log, read on the replica that never went down.
    let mut stream = subscribe(cluster.channel("messaging.2").await, bob, Some(0)).await;
    let mut stored = BTreeMap::new();
    while let Item::Event(event) = next_item(&mut stream).await {
        if let Some(Kind::Message(m)) = event.kind
            && m.client_message_id.starts_with("burst-")
        {
            assert!(
                stored.insert(m.client_message_id.clone(), m.seq).is_none(),
                "{} stored once",
                m.client_message_id
            );
        }
    }
    assert_eq!(stored.len(), BURST, "every key of the burst stored");
    for (key, seq) in &acked {
        assert_eq!(
            stored.get(key),
            Some(seq),
            "acknowledged {key} kept its seq"
        );
    }
}

// --- legacy legs --------------------------------------------------------------------------

/// The second bridge process: an IMPS user befriends bob (whose stream is on messaging.2)
/// and they chat both ways through the IMPS bridge. Returns the IMPS user, still logged in,
/// and their id.
async fn imps_leg(cluster: &Cluster, bob: &User) -> (Imps, i64) {
    let imps_addr = cluster.spec("bridge-imps").listeners()[0];
    let mut bob_stream = subscribe(cluster.channel("messaging.2").await, bob, None).await;
    caught_up(&mut bob_stream).await;

    let mut ivan = Imps::connect(imps_addr).await;
    ivan.send(ClientMessage::Register {
        user: "ivan".into(),
        password: "pw-ivan".into(),
        gender: 1,
        email: "ivan@example.cn".into(),
    })
    .await;
    ivan.recv(cmd::S_REGISTER).await;
    ivan.send(ClientMessage::Login {
        user: "ivan".into(),
        password: "pw-ivan".into(),
    })
    .await;
    ivan.recv(cmd::S_LOGIN_RSP).await;

    ivan.send(ClientMessage::AddFriend {
        user: "ivan".into(),
        friend: "bob".into(),
    })
    .await;
    let ivan_id = loop {
        if let Item::Event(event) = next_item(&mut bob_stream).await
            && let Some(Kind::FriendRequestReceived(request)) = event.kind
        {
            break request.from.expect("requester").id;
        }
    };
    SocialServiceClient::new(cluster.channel("social").await)
        .respond_friend_request(authed(
            RespondFriendRequestRequest {
                request: Some(Which::FromUserId(ivan_id)),
                accept: true,
            },
            &bob.token,
        ))
        .await
        .expect("bob accepts over gRPC");
    let answer = ivan.recv(cmd::S_ADDFRIEND_RSP).await;
    let mut fields = Fields(&answer.body);
    assert_eq!((fields.string(), fields.i32()), ("bob".to_owned(), 1));

    ivan.send(ClientMessage::SendMessage {
        user: "ivan".into(),
        friend: "bob".into(),
        text: "over IMPS".into(),
    })
    .await;
    let (_, text) = next_message(&mut bob_stream).await;
    assert_eq!(
        text, "over IMPS",
        "IMPS bridge → messaging.1 → NATS → messaging.2"
    );

    MessagingServiceClient::new(cluster.channel("messaging.1").await)
        .send_message(authed(
            text_message(ivan_id, "back over gRPC", "to-ivan-1"),
            &bob.token,
        ))
        .await
        .expect("bob replies");
    let pushed = ivan.recv(cmd::S_SEND_MSG).await;
    let mut fields = Fields(&pushed.body);
    assert_eq!(
        (fields.string(), fields.string()),
        ("bob".to_owned(), "back over gRPC".to_owned())
    );
    (ivan, ivan_id)
}

/// The IMPS bridge's event stream runs through messaging.1. While that replica is down, bob
/// writes to ivan through messaging.2; once it is back, ivan's next heartbeat reopens the
/// stream after the last event it saw, and the message written meanwhile is pushed.
async fn imps_stream_resumes_after_replica_restart(
    cluster: &mut Cluster,
    mut ivan: Imps,
    ivan_id: i64,
    bob: &User,
) {
    cluster.kill("messaging.1");
    MessagingServiceClient::new(cluster.channel("messaging.2").await)
        .send_message(authed(
            text_message(ivan_id, "while the stream was down", "to-ivan-2"),
            &bob.token,
        ))
        .await
        .expect("bob writes through the other replica");
    cluster.restart("messaging.1").await;

    // The bridge's first call after the restart may still find its channel reconnecting:
    // heartbeat until the stream is back, as the client does every few seconds.
    let mut pushed = None;
    for _ in 0..15 {
        ivan.send(ClientMessage::Heartbeat {
            user: "ivan".into(),
            fixes: Vec::new(),
        })
        .await;
        if let Ok(frame) =
            tokio::time::timeout(Duration::from_secs(2), ivan.recv(cmd::S_SEND_MSG)).await
        {
            pushed = Some(frame);
            break;
        }
    }
    let pushed = pushed.expect("the message written during the outage is pushed");
    let mut fields = Fields(&pushed.body);
    assert_eq!(
        (fields.string(), fields.string()),
        ("bob".to_owned(), "while the stream was down".to_owned())
    );
}

/// Cross-protocol through a bridge process: a pipe user (bridge → account, social,
/// messaging.1) befriends and messages a gRPC user whose stream is on messaging.2 and gets
/// the reply pushed back over the pipe connection. The pipe frames' spans parent the calls
/// they cause in the account and messaging processes, and those their SQL: one trace over
/// three processes.
async fn pipe_leg(cluster: &Cluster, receiver: &Receiver, bob: &User) {
    let pipe_addr = cluster.spec("bridge-pipe").listeners()[0];
    let mut bob_stream = subscribe(cluster.channel("messaging.2").await, bob, None).await;
    caught_up(&mut bob_stream).await;

    let (mut carol, carol_uid, token) = Pipe::user(pipe_addr, "carol").await;
    let reply = carol
        .call(&format!("add_friend|{carol_uid}|{}|hi|{token}", bob.id))
        .await;
    assert!(reply.starts_with("add_friend_succ|"), "add_friend: {reply}");
    let carol_id: i64 = carol_uid.parse().expect("numeric uid");
    SocialServiceClient::new(cluster.channel("social").await)
        .respond_friend_request(authed(
            RespondFriendRequestRequest {
                request: Some(Which::FromUserId(carol_id)),
                accept: true,
            },
            &bob.token,
        ))
        .await
        .expect("bob accepts over gRPC");

    let reply = carol
        .call(&format!(
            "send_message|0|{carol_uid}|{}|2026-01-01 00:00:00|over the pipe|{token}",
            bob.id
        ))
        .await;
    assert!(reply.starts_with("send_message_succ|"), "send: {reply}");
    let (_, text) = next_message(&mut bob_stream).await;
    assert_eq!(
        text, "over the pipe",
        "pipe → messaging.1 → NATS → messaging.2"
    );

    MessagingServiceClient::new(cluster.channel("messaging.2").await)
        .send_message(authed(
            text_message(carol_id, "over gRPC", "reply-1"),
            &bob.token,
        ))
        .await
        .expect("bob replies");
    let push = carol.recv().await;
    assert!(
        push.starts_with("message|0|") && push.ends_with("|over gRPC"),
        "pushed to the pipe client: {push}"
    );

    const PIPE: &str = "rosetta-bridge-pipe";
    let trace = receiver
        .wait_for(
            "pipe frames parenting account and messaging calls",
            |spans| {
                // A call made by a pipe frame, with SQL below it.
                let caused = |service: &str, method: &str| {
                    spans.iter().find(|call| {
                        call.service == service
                            && call.span.name.ends_with(method)
                            && spans.iter().any(|frame| {
                                frame.service == PIPE
                                    && frame.span.span_id == call.span.parent_span_id
                            })
                            && spans.iter().any(|sql| {
                                sql.service == service
                                    && sql.span.name.starts_with("sql ")
                                    && descends_from(spans, sql, call)
                            })
                    })
                };
                let register = caused("rosetta-account", "AccountService/Register")?;
                let send = caused("rosetta-messaging", "MessagingService/SendMessage")?;
                (register.span.trace_id == send.span.trace_id).then(|| {
                    let frames: Vec<&Exported> = spans
                        .iter()
                        .filter(|e| {
                            e.service == PIPE
                                && (e.span.span_id == register.span.parent_span_id
                                    || e.span.span_id == send.span.parent_span_id)
                        })
                        .collect();
                    // The two frames and everything below them.
                    spans
                        .iter()
                        .filter(|e| frames.iter().any(|f| descends_from(spans, e, f)))
                        .cloned()
                        .collect::<Vec<_>>()
                })
            },
        )
        .await;
    let services: BTreeSet<&str> = trace.iter().map(|e| e.service.as_str()).collect();
    assert!(
        [
            "rosetta-bridge-pipe",
            "rosetta-account",
            "rosetta-messaging"
        ]
        .iter()
        .all(|s| services.contains(s)),
        "one trace over the bridge, account and messaging processes: {services:?}"
    );
    write_trace("split-pipe-trace.json", trace);
}
