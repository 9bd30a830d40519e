//! Push latency to idle users during a soak: a gRPC sender befriends K of the held pipe users
//! and sends each a paced private message; the soak's own pipe sockets time the arrival.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _, stream};
use rosetta_proto::account::v1::{
    LoginRequest, account_service_client::AccountServiceClient, login_request::Identifier,
};
use rosetta_proto::messaging::v1::{
    MessageKind, SendMessageRequest, messaging_service_client::MessagingServiceClient,
    send_message_request,
};

use crate::{
    grpc::{self, Endpoints, Services, User},
    pipe,
    report::{Recorder, Report},
};

/// What a probe message's text starts with; the number after it is the probe's index.
const TAG: &str = "soak-push-";
/// How long the last pushes may take to arrive before they count as lost.
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(10);
/// Deadline of each set-up call.
const CALL_DEADLINE: Duration = Duration::from_secs(30);
/// Calls of the set-up (logins, friendships) in flight at once.
const SETUP_CONCURRENCY: usize = 8;

/// Send times of the probes, and the arrivals the pipe connections saw.
#[derive(Default)]
pub struct Probe {
    sent: Mutex<HashMap<u64, Instant>>,
    latency: Mutex<Option<Recorder>>,
    delivered: AtomicU64,
}

impl Probe {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            latency: Mutex::new(Some(Recorder::new())),
            ..Self::default()
        })
    }

    /// The push handler every soak pipe connection gets (pushes that are no probe are ignored).
    pub fn on_push(self: &Arc<Self>) -> Arc<dyn Fn(pipe::Push) + Send + Sync> {
        let probe = self.clone();
        Arc::new(move |push: pipe::Push| probe.arrived(&push.data))
    }

    fn arrived(&self, data: &str) {
        let at = Instant::now();
        let Some(index) = probe_index(data) else {
            return;
        };
        let sent = lock(&self.sent).remove(&index);
        if let Some(sent) = sent {
            if let Some(rec) = lock(&self.latency).as_mut() {
                rec.record(at.duration_since(sent));
            }
            self.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The probe number in a pushed text (`soak-push-17`), if it is one.
fn probe_index(data: &str) -> Option<u64> {
    let rest = data.trim().strip_prefix(TAG)?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// Logs user `target` in over gRPC (by id) and makes it a friend of `sender` (private
/// messages go to friends only).
async fn befriend(services: &Services, sender: &User, target: i64) -> anyhow::Result<()> {
    let mut account = AccountServiceClient::new(services.account[0].clone());
    let request = LoginRequest {
        identifier: Some(Identifier::UserId(target)),
        ..grpc::login_request("")
    };
    let token = tokio::time::timeout(CALL_DEADLINE, account.login(request))
        .await
        .with_context(|| format!("login of user {target} timed out"))?
        .with_context(|| format!("login user {target}"))?
        .into_inner()
        .access_token;
    let user = User {
        id: target,
        name: format!("user {target}"),
        ocid: String::new(),
        token,
    };
    tokio::time::timeout(
        CALL_DEADLINE,
        grpc::befriend(&services.social[0], sender, &user),
    )
    .await
    .with_context(|| format!("befriending user {target} timed out"))?
}

/// Befriends `targets` with a fresh sender, then sends one probe to each, `rate` per second,
/// and adds the send→arrival distribution to `report`.
pub async fn run(
    endpoints: &Endpoints,
    probe: &Arc<Probe>,
    targets: &[i64],
    rate: f64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let services = Services::connect(endpoints, 1).await?;
    let prefix = format!("{}p", grpc::run_prefix());
    let sender = tokio::time::timeout(
        CALL_DEADLINE,
        grpc::register_users(&services.account, &prefix, 1, true, 1),
    )
    .await
    .context("registering the push sender timed out")??
    .remove(0);
    stream::iter(targets)
        .map(|&t| befriend(&services, &sender, t))
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<()>()
        .await?;

    let mut client = MessagingServiceClient::new(services.messaging[0].clone());
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed = 0u64;
    let mut first_error = None;
    for (index, target) in targets.iter().enumerate() {
        pace.tick().await;
        let request = SendMessageRequest {
            to: Some(send_message_request::To::ToUserId(*target)),
            kind: MessageKind::Text as i32,
            text: format!("{TAG}{index}"),
            client_message_id: format!("{prefix}-{index}"),
            ..Default::default()
        };
        lock(&probe.sent).insert(index as u64, Instant::now());
        let sent = tokio::time::timeout(
            CALL_DEADLINE,
            client.send_message(grpc::authed(request, &sender.token)?),
        )
        .await;
        if let Err(err) = sent
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            lock(&probe.sent).remove(&(index as u64));
            failed += 1;
            first_error.get_or_insert(err);
        }
    }
    let expected = targets.len() as u64 - failed;
    let deadline = Instant::now() + ARRIVAL_DEADLINE;
    while probe.delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = probe.delivered.load(Ordering::Relaxed);
    report.param("pushes", targets.len());
    report.param("push_rate_per_s", rate);
    report.counter("pushes delivered", delivered as f64, "");
    if let Some(rec) = lock(&probe.latency).take() {
        report.latency("push to an idle user", &rec);
    }
    if let Some(err) = first_error {
        report.fail(format!("{failed} probe sends failed; first: {err}"));
    }
    if delivered < expected {
        report.fail(format!(
            "{} pushes not delivered within {} s",
            expected - delivered,
            ARRIVAL_DEADLINE.as_secs()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_probe_numbers() {
        assert_eq!(probe_index("soak-push-17"), Some(17));
        assert_eq!(probe_index("soak-push-3\r\n"), Some(3));
        assert_eq!(probe_index("hello"), None);
        assert_eq!(probe_index("soak-push-"), None);
    }

    #[test]
    fn an_arrival_is_timed_once() {
        let probe = Probe::new();
        lock(&probe.sent).insert(4, Instant::now());
        probe.arrived("soak-push-4");
        probe.arrived("soak-push-4");
        probe.arrived("soak-push-5");
        assert_eq!(probe.delivered.load(Ordering::Relaxed), 1);
        assert_eq!(lock(&probe.latency).as_ref().map(Recorder::len), Some(1));
    }
}
