//! The process's metrics recorder: everything the libraries count through the `metrics`
//! facade, rendered in the Prometheus text format at `/metrics`.

use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Lateness and run times, in seconds: from a millisecond to ten minutes.
const SECONDS_BUCKETS: [f64; 14] =
    [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0];

/// How often histogram samples are folded into their buckets between scrapes (a scrape
/// folds them too); it bounds their memory, not their accuracy.
const UPKEEP: Duration = Duration::from_secs(60);

/// Installs the recorder for the whole process (once) and keeps it tidy.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .context("metric buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    cme_engine::describe_metrics();
    cme_api::describe_metrics();
    cme_webhooks::describe_metrics();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
