//! What a bridge process tells the services about itself: every interval, one
//! `NodeService/ReportStatus` call (with the bridge credential) naming each bridge it runs, its
//! open connections and its logged-in users. The numbers are read from what the bridges keep
//! anyway (each listener's admission count, each bridge's [`LiveLogins`]), registered on the
//! [`Board`] of the process's [`Backend`].

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use rosetta_proto::{
    admin::v1::{BridgeReport, ReportStatusRequest},
    metadata,
};
use tokio_util::sync::CancellationToken;
use tonic::Request;

use crate::{Backend, LiveLogins, admission::Admission};

/// The counts of the bridges sharing one [`Backend`]. Cheap to clone: clones share the board.
#[derive(Clone, Default)]
pub struct Board {
    entries: Arc<Mutex<Vec<(&'static str, Source)>>>,
}

/// Where a count is read; weak, so that a stopped bridge's count is gone with it.
enum Source {
    Listener(Weak<Admission>),
    Logins(Weak<Mutex<std::collections::HashMap<i64, crate::login::Slot>>>),
}

impl Board {
    /// Counts the connections `admission` holds for `bridge`.
    pub(crate) fn listener(&self, bridge: &'static str, admission: &Arc<Admission>) {
        self.add(bridge, Source::Listener(Arc::downgrade(admission)));
    }

    /// Counts the users `logins` holds for `bridge`.
    pub fn logins(&self, bridge: &'static str, logins: &LiveLogins) {
        self.add(bridge, Source::Logins(logins.weak()));
    }

    fn add(&self, bridge: &'static str, source: Source) {
        let mut entries = self.lock();
        // Forget what stopped, so that a long-lived backend's board does not grow.
        entries.retain(|(_, source)| match source {
            Source::Listener(weak) => weak.strong_count() > 0,
            Source::Logins(weak) => weak.strong_count() > 0,
        });
        entries.push((bridge, source));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, Source)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Each bridge's connections and users now, by name.
    pub fn snapshot(&self) -> Vec<BridgeReport> {
        let mut by_bridge: BTreeMap<&'static str, (i64, i64)> = BTreeMap::new();
        for (bridge, source) in self.lock().iter() {
            let sum = by_bridge.entry(bridge).or_default();
            match source {
                Source::Listener(weak) => {
                    if let Some(admission) = weak.upgrade() {
                        sum.0 += i64::try_from(admission.open()).unwrap_or(i64::MAX);
                    }
                }
                Source::Logins(weak) => {
                    if let Some(slots) = weak.upgrade() {
                        let slots = slots.lock().unwrap_or_else(|e| e.into_inner());
                        let users = slots.values().filter(|slot| slot.count > 0).count();
                        sum.1 += i64::try_from(users).unwrap_or(i64::MAX);
                    }
                }
            }
        }
        by_bridge
            .into_iter()
            .map(|(name, (connections, online_users))| BridgeReport {
                name: name.to_owned(),
                connections,
                online_users,
            })
            .collect()
    }
}

/// The process the reports speak for.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// One id per process start (shared with the roles of `rosetta all`).
    pub id: String,
    pub version: String,
    pub host: String,
    pub started_at_ms: i64,
}

/// Reports the bridges on `backend`'s board every `interval` until `stop` is cancelled. A
/// report that fails is logged and the next one tried: the bridges serve on regardless.
pub async fn report(
    backend: Backend,
    process: ProcessInfo,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut client = backend.node();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let bridges = backend.board.snapshot();
        if bridges.is_empty() {
            continue;
        }
        let mut request = Request::new(ReportStatusRequest {
            process_id: process.id.clone(),
            version: process.version.clone(),
            host: process.host.clone(),
            started_at_ms: process.started_at_ms,
            interval_ms: i64::try_from(interval.as_millis()).unwrap_or(i64::MAX),
            bridges,
        });
        if let Some(key) = &backend.bridge_key {
            request
                .metadata_mut()
                .insert(metadata::BRIDGE_KEY, key.clone());
        }
        request.set_timeout(interval.min(crate::CALL_DEADLINE));
        if let Err(status) = client.report_status(request).await {
            tracing::warn!(%status, "status report failed");
        }
    }
}
