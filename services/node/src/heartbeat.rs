//! Every process tells the deployment it is alive: the roles a node runs write their status
//! rows themselves (a node has the database), every interval, and remove them when the
//! process stops cleanly; a crashed process's rows stay and are listed as stale. Bridges
//! report through `NodeService/ReportStatus` instead (see `rosetta_bridge_kit::status`).

use std::{sync::Arc, time::Duration};

use rosetta_account::admin::status::{self, Kind, Process, Report};
use rosetta_db::{now_ms, sea_orm::DatabaseConnection};
use rosetta_kit::tasks::Tasks;
use rosetta_messaging::Hub;

use crate::Role;

/// The version of the running binary.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// This process as its reports name it: a fresh id per start.
pub fn process(interval: Duration) -> Process {
    Process {
        id: uuid::Uuid::new_v4().to_string(),
        version: VERSION.to_owned(),
        host: host_name(),
        started_at_ms: now_ms(),
        interval_ms: i64::try_from(interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1),
    }
}

/// The machine's (or container's) name, as the kernel has it; empty where it cannot be read.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().chars().take(255).collect())
        .unwrap_or_default()
}

/// The role names a node of `role` runs.
fn roles(role: Role) -> &'static [&'static str] {
    match role {
        Role::All => &["account", "social", "messaging", "files"],
        Role::Account => &["account"],
        Role::Social => &["social"],
        Role::Messaging => &["messaging"],
        Role::Files => &["files"],
    }
}

/// Writes this node's rows every interval until `tasks` stops, then removes them. `hub`: the
/// messaging role's event streams, counted in its row.
pub fn start(
    db: DatabaseConnection,
    role: Role,
    process: Process,
    hub: Option<Arc<Hub>>,
    tasks: &Tasks,
) {
    let stopping = tasks.stopping().clone();
    let every = Duration::from_millis(process.interval_ms.unsigned_abs());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stopping.cancelled() => break,
            }
            let reports: Vec<Report> = roles(role)
                .iter()
                .map(|&name| {
                    let (connections, online_users) = match (&hub, name) {
                        (Some(hub), "messaging") => hub.counts(),
                        _ => (0, 0),
                    };
                    Report {
                        kind: Kind::Role,
                        name: name.to_owned(),
                        connections: i64::try_from(connections).unwrap_or(i64::MAX),
                        online_users: i64::try_from(online_users).unwrap_or(i64::MAX),
                    }
                })
                .collect();
            // A database that does not answer must not stop the heartbeat for good.
            let written = tokio::time::timeout(every, status::record(&db, &process, &reports));
            match written.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(%err, "could not write the status heartbeat"),
                Err(_) => tracing::warn!("status heartbeat timed out"),
            }
        }
        if let Err(err) = status::forget(&db, &process.id).await {
            tracing::warn!(%err, "could not remove this process's status rows");
        }
    });
}
