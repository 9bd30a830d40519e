//! Scenario 4: password logins per second (argon2id on the server) and calls per second that
//! only pass the token check (`GetMyProfile`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rosetta_proto::account::v1::{
    GetMyProfileRequest, account_service_client::AccountServiceClient,
};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::{
    grpc::{self, Endpoints, User},
    live,
    report::{Recorder, Report},
};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Users registered for the storm (logins cycle through them).
    #[arg(long, default_value_t = 16)]
    pub users: usize,
    /// Password logins to perform.
    #[arg(long, default_value_t = 200)]
    pub logins: u64,
    /// Token-authenticated calls to perform.
    #[arg(long, default_value_t = 20_000)]
    pub calls: u64,
    /// Stop each phase after this long.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
}

/// The outcome of one phase: latencies, successes, failures and the first error.
struct Phase {
    latency: Recorder,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    secs: f64,
}

/// Runs `total` calls of `call(worker_client, n)` with `concurrency` workers.
async fn phase<F, Fut>(
    channels: &[Channel],
    opts: &Options,
    total: u64,
    quiet: bool,
    call: F,
) -> anyhow::Result<Phase>
where
    F: Fn(AccountServiceClient<Channel>, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send,
{
    let issued = Arc::new(AtomicU64::new(0));
    let bar = live::line(Some(total), quiet);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut workers = JoinSet::new();
    for w in 0..opts.concurrency.max(1) {
        let client = AccountServiceClient::new(channels[w % channels.len()].clone());
        let (issued, bar, call) = (issued.clone(), bar.clone(), call.clone());
        workers.spawn(async move {
            let mut latency = Recorder::new();
            let (mut ok, mut errors, mut first_error) = (0, 0, None);
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= total || Instant::now() >= deadline {
                    break;
                }
                let began = Instant::now();
                match call(client.clone(), n).await {
                    Ok(()) => {
                        latency.record(began.elapsed());
                        ok += 1;
                    }
                    Err(status) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| status.to_string());
                    }
                }
                bar.inc(1);
            }
            (latency, ok, errors, first_error)
        });
    }
    let mut out = Phase {
        latency: Recorder::new(),
        ok: 0,
        errors: 0,
        first_error: None,
        secs: 0.0,
    };
    while let Some(done) = workers.join_next().await {
        let (latency, ok, errors, first_error) = done?;
        out.latency.merge(&latency);
        out.ok += ok;
        out.errors += errors;
        if out.first_error.is_none() {
            out.first_error = first_error;
        }
    }
    out.secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(out)
}

pub async fn run(endpoints: &Endpoints, opts: &Options, quiet: bool) -> anyhow::Result<Report> {
    let channels = grpc::connect(&endpoints.account, opts.connections).await?;
    let prefix = grpc::run_prefix();
    let users: Arc<Vec<User>> = Arc::new(
        grpc::register_users(
            &channels,
            &prefix,
            opts.users.max(1),
            true,
            opts.concurrency,
        )
        .await?,
    );

    let names = users.clone();
    let logins = phase(&channels, opts, opts.logins, quiet, move |mut client, n| {
        let name = names[(n % names.len() as u64) as usize].name.clone();
        async move {
            client.login(grpc::login_request(&name)).await?;
            Ok(())
        }
    })
    .await?;

    let tokens = users.clone();
    let calls = phase(&channels, opts, opts.calls, quiet, move |mut client, n| {
        let token = tokens[(n % tokens.len() as u64) as usize].token.clone();
        async move {
            let request = grpc::authed(GetMyProfileRequest::default(), &token)
                .map_err(|e| tonic::Status::internal(e.to_string()))?;
            client.get_my_profile(request).await?;
            Ok(())
        }
    })
    .await?;

    let mut report = Report::new("login-storm", &endpoints.account);
    report.param("users", users.len());
    report.param("concurrency", opts.concurrency);
    report.param("connections", opts.connections);
    report.counter("password logins", logins.ok as f64, "");
    report.counter(
        "login rate",
        logins.ok as f64 / logins.secs.max(1e-9),
        "login/s",
    );
    report.counter("login errors", logins.errors as f64, "");
    report.counter("token calls", calls.ok as f64, "");
    report.counter(
        "token call rate",
        calls.ok as f64 / calls.secs.max(1e-9),
        "call/s",
    );
    report.counter("token call errors", calls.errors as f64, "");
    report.latency("password login", &logins.latency);
    report.latency("token call", &calls.latency);
    for (what, phase) in [("logins", &logins), ("token calls", &calls)] {
        if phase.errors > 0 {
            report.fail(format!(
                "{} {what} failed; first: {}",
                phase.errors,
                phase.first_error.clone().unwrap_or_default()
            ));
        }
    }
    Ok(report)
}
