//! Status of a deployment (issue 23) over real gRPC, on SQLite and on PostgreSQL: every role
//! of `all` reports itself, a bridge process reports its connections and logged-in users
//! (one pipe client ⇒ pipe: 1 connection, 1 user), numbers follow the clients, an instance
//! that stops reporting turns stale and leaves the per-protocol sums; only a bridge holding
//! the bridge key may report; the server status is public.

mod clients;

use std::{collections::BTreeSet, time::Duration};

use clients::{PATIENCE, Pipe};
use rosetta_bridge_kit::{settings::PipeSettings, status::ProcessInfo};
use rosetta_proto::{
    Reason,
    admin::v1::{
        BridgeReport, GetServerStatusRequest, GetStatusRequest, GetStatusResponse, Instance,
        ReportStatusRequest, admin_service_client::AdminServiceClient,
        node_service_client::NodeServiceClient,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends, reason};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};

/// How often the test's processes report.
const INTERVAL: Duration = Duration::from_millis(100);

/// GetStatus until `done` holds (a deadline-bounded poll of the reports the processes write).
async fn until(
    admin: &mut AdminServiceClient<Channel>,
    token: &str,
    what: &str,
    done: impl Fn(&GetStatusResponse) -> bool,
) -> GetStatusResponse {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = admin
            .get_status(authed(GetStatusRequest {}, token))
            .await
            .expect("GetStatus")
            .into_inner();
        if done(&status) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not seen in time; last status {status:?}"
        );
        tokio::time::sleep(INTERVAL / 2).await;
    }
}

fn bridge<'a>(status: &'a GetStatusResponse, name: &str) -> Option<&'a Instance> {
    status
        .instances
        .iter()
        .find(|i| i.kind == "bridge" && i.name == name)
}

/// The load of `protocol` as (connections, online users), if listed.
fn load(status: &GetStatusResponse, protocol: &str) -> Option<(i64, i64)> {
    status
        .protocols
        .iter()
        .find(|p| p.protocol == protocol)
        .map(|p| (p.connections, p.online_users))
}

async fn status_of_roles_and_bridges(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.status_interval_ms = u64::try_from(INTERVAL.as_millis()).unwrap();
    })
    .await;
    let opal = server.user("opal", "opal-pw").await;
    server.grant_admin("opal").await;
    let mut admin = AdminServiceClient::new(server.channel().await);

    // A bridge process: the pipe bridge and its reporter on one backend, as `rosetta bridge`
    // runs them.
    let closing = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let pipe_addr = listener.local_addr().expect("addr");
    let bridge_backend = server.backend();
    tokio::spawn(rosetta_bridge_pipe::serve(
        listener,
        bridge_backend.clone(),
        PipeSettings::default(),
        closing.clone().cancelled_owned(),
    ));
    let reporter = CancellationToken::new();
    let process = ProcessInfo {
        id: "bridge-process-1".into(),
        version: "9.9.9-test".into(),
        host: "bridge-host".into(),
        started_at_ms: 1,
    };
    tokio::spawn(rosetta_bridge_kit::status::report(
        bridge_backend,
        process,
        INTERVAL,
        reporter.clone(),
    ));

    // One pipe client logged in.
    let (pia, _, _) = Pipe::user(pipe_addr, "pia").await;
    // Pia's login also holds an event stream in the messaging role, reported apart.
    let status = until(&mut admin, &opal.access_token, "pipe 1/1, a stream", |s| {
        bridge(s, "pipe").is_some_and(|p| (p.connections, p.online_users) == (1, 1))
            && load(s, "grpc").is_some_and(|(streams, users)| streams >= 1 && users >= 1)
    })
    .await;
    let roles: BTreeSet<&str> = status
        .instances
        .iter()
        .filter(|i| i.kind == "role" && !i.stale)
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(
        roles,
        BTreeSet::from(["account", "files", "messaging", "social"]),
        "{status:?}"
    );
    for role in status.instances.iter().filter(|i| i.kind == "role") {
        assert_eq!(role.version, env!("CARGO_PKG_VERSION"), "{role:?}");
        assert!(
            role.uptime_ms >= 0 && role.last_seen_ms <= status.now_ms,
            "{role:?}"
        );
    }
    let pipe = bridge(&status, "pipe").expect("the pipe bridge");
    assert_eq!(
        (
            pipe.process_id.as_str(),
            pipe.version.as_str(),
            pipe.host.as_str()
        ),
        ("bridge-process-1", "9.9.9-test", "bridge-host")
    );
    assert!(!pipe.stale);
    assert_eq!(pipe.uptime_ms, pipe.last_seen_ms - 1);
    assert_eq!(load(&status, "pipe"), Some((1, 1)));
    assert!(!status.maintenance.expect("maintenance state").enabled);

    // The client goes: so do its connection and its user.
    drop(pia);
    until(&mut admin, &opal.access_token, "pipe 0/0", |s| {
        load(s, "pipe") == Some((0, 0))
    })
    .await;

    // The process stops reporting: its instance turns stale and leaves the sums.
    reporter.cancel();
    let status = until(&mut admin, &opal.access_token, "pipe stale", |s| {
        bridge(s, "pipe").is_some_and(|p| p.stale)
    })
    .await;
    assert_eq!(load(&status, "pipe"), None, "{status:?}");

    // Only a bridge may report; anyone may read the server status.
    let mut node = NodeServiceClient::new(server.channel().await);
    let forged = node
        .report_status(ReportStatusRequest {
            process_id: "forged".into(),
            version: "0".into(),
            host: String::new(),
            started_at_ms: 0,
            interval_ms: 1000,
            bridges: vec![BridgeReport {
                name: "pipe".into(),
                connections: 1_000_000,
                online_users: 1_000_000,
            }],
        })
        .await
        .expect_err("a report without the bridge key");
    assert_eq!(forged.code(), Code::PermissionDenied);
    assert_eq!(reason(&forged), Reason::Forbidden);
    let public = node
        .get_server_status(GetServerStatusRequest {})
        .await
        .expect("the server status needs no token")
        .into_inner();
    assert!(!public.maintenance);
    closing.cancel();
    server.stop().await;
}
both_backends!(
    status_of_roles_and_bridges,
    super::status_of_roles_and_bridges
);
