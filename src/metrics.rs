//! The process's Prometheus recorder and its scrape endpoint (`metrics_listen`), installed
//! once per process, before the node or the bridges record anything: the recorder is
//! process-global, so it lives here and not in `Node::build` (tests build many nodes in one
//! process).

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use rosetta_node::Config;

/// Latency buckets in seconds, from a cached read to a slow password check.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Sends per writer batch, up to the writer's largest batch (256).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Installs the recorder and serves it on `metrics_listen` (nothing when that is empty).
///
/// A taken port is logged, not fatal: metrics are the operator's view of a process, not
/// its service, and a chat server should not refuse its users over a scrape port. The
/// process then records nothing.
pub fn install(config: &Config) -> anyhow::Result<()> {
    let Some(addr) = config.metrics_addr()? else {
        tracing::info!("metrics_listen is empty: no metrics endpoint");
        return Ok(());
    };
    let installed = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("rosetta_messaging_writer_batch_size".into()),
                BATCH_BUCKETS,
            )
        })
        .and_then(PrometheusBuilder::install);
    match installed {
        Ok(()) => {
            describe();
            tracing::info!(%addr, "metrics listening (GET /metrics)");
        }
        Err(err) => tracing::error!(%addr, %err, "no metrics endpoint"),
    }
    Ok(())
}

/// The `# HELP` lines of what the services and bridges record.
fn describe() {
    rosetta_kit::rpc_metrics::describe();
    rosetta_bridge_kit::counters::describe();
    rosetta_messaging::describe_metrics();
    rosetta_account::describe_metrics();
}
