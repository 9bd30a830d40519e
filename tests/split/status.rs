//! Status in the split deployment: every role process writes its own heartbeat to the shared
//! database and each bridge process reports over gRPC with the bridge key, so one GetStatus
//! lists them all (both messaging replicas apart), with the IMPS user counted on the IMPS
//! bridge process.

use std::collections::BTreeMap;

use rosetta_proto::admin::v1::{
    GetStatusRequest, GetStatusResponse, admin_service_client::AdminServiceClient,
};
use rosetta_testkit::authed;

use super::{Cluster, User, clients::PATIENCE};

/// Waits (bounded) until GetStatus lists every role and bridge process of the compose file.
pub async fn status_leg(cluster: &Cluster, admin_user: &User, admin_name: &str) {
    rosetta_testkit::grant_admin(&cluster._pg.url, admin_name).await;
    let mut admin = AdminServiceClient::new(cluster.channel("account").await);
    let want = BTreeMap::from([
        (("bridge", "cloudchat"), 1),
        (("bridge", "dpc"), 1),
        (("bridge", "imps"), 1),
        (("bridge", "ourchat"), 1),
        (("bridge", "pipe"), 1),
        (("role", "account"), 1),
        (("role", "files"), 1),
        (("role", "messaging"), 2),
        (("role", "social"), 1),
    ]);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let status: GetStatusResponse = loop {
        let status = admin
            .get_status(authed(GetStatusRequest {}, &admin_user.token))
            .await
            .expect("GetStatus")
            .into_inner();
        let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for live in status.instances.iter().filter(|i| !i.stale) {
            *seen
                .entry((live.kind.as_str(), live.name.as_str()))
                .or_default() += 1;
        }
        let imps_user = status
            .protocols
            .iter()
            .any(|p| p.protocol == "imps" && p.connections >= 1 && p.online_users >= 1);
        if seen == want && imps_user {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "every process of the split deployment reports; seen {seen:?} in {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // One id per process: five role processes and five bridge processes.
    let processes: std::collections::BTreeSet<&str> = status
        .instances
        .iter()
        .map(|i| i.process_id.as_str())
        .collect();
    assert_eq!(processes.len(), 10, "{status:?}");
}
