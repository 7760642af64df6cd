//! Job progress and per-stage metrics, read from the scheduler in process: for the REPL's
//! progress line and `EXPLAIN ANALYZE`.

use std::collections::BTreeMap;
use std::sync::Arc;

use ballista_core::serde::protobuf::operator_metric::Metric;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpc;
use ballista_core::serde::protobuf::{GetJobMetricsParams, OperatorMetric};
use ballista_scheduler::api::get_routes;
use serde::Deserialize;
use tower::ServiceExt;

use super::Scheduler;

/// One stage of a job as the scheduler's REST API describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct StageSummary {
    pub stage_id: String,
    pub stage_status: String,
    pub input_rows: usize,
    pub output_rows: usize,
    pub elapsed_compute: Option<String>,
    #[serde(default)]
    pub stage_plan: Option<String>,
    #[serde(default)]
    pub tasks: Vec<Option<TaskSummary>>,
}

/// One task of a stage.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskSummary {
    pub status: String,
    pub exec_duration: u64,
    pub input_rows: usize,
    pub output_rows: usize,
}

#[derive(Deserialize)]
struct StagesResponse {
    stages: Vec<StageSummary>,
}

/// The stages of a job, running or finished; empty if the scheduler no longer knows it.
/// Read through the scheduler's REST routes, in process.
pub async fn job_stages(scheduler: &Scheduler, job_id: &str) -> Vec<StageSummary> {
    let router = get_routes(Arc::new(scheduler.clone()));
    let Ok(request) = axum::http::Request::get(format!("/api/job/{job_id}/stages"))
        .body(axum::body::Body::empty())
    else {
        return vec![];
    };
    let Ok(response) = router.oneshot(request).await;
    if !response.status().is_success() {
        return vec![];
    }
    let Ok(bytes) = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024).await else {
        return vec![];
    };
    serde_json::from_slice::<StagesResponse>(&bytes)
        .map(|r| r.stages)
        .unwrap_or_default()
}

/// Per-operator metrics of a finished job's stages, rendered as indented plan lines:
/// `Stage 2 (4 tasks):` then `  AggregateExec: ..., output_rows=3, elapsed_compute=1.2ms`.
pub async fn job_operator_metrics(
    scheduler: &Scheduler,
    job_id: &str,
) -> BTreeMap<u32, Vec<String>> {
    let request = tonic::Request::new(GetJobMetricsParams {
        job_id: job_id.to_string(),
    });
    let Ok(response) = scheduler.get_job_metrics(request).await else {
        return BTreeMap::new();
    };
    response
        .into_inner()
        .stages
        .into_iter()
        .map(|stage| {
            let lines = stage
                .operators
                .iter()
                .map(|op| {
                    let indent = "  ".repeat(op.depth as usize + 1);
                    format!(
                        "{indent}{}{}",
                        op.operator_desc,
                        render_metrics(&op.metrics)
                    )
                })
                .collect();
            (stage.stage_id, lines)
        })
        .collect()
}

/// The operator's metrics summed over its tasks.
fn render_metrics(metrics: &[OperatorMetric]) -> String {
    let (mut rows, mut nanos, mut spills, mut spilled_bytes) = (None, None, 0, 0);
    // Counters a connector defines (`rows_transferred`), summed by name.
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for metric in metrics.iter().filter_map(|m| m.metric.as_ref()) {
        match metric {
            Metric::OutputRows(n) => *rows.get_or_insert(0) += n,
            Metric::ElapseTime(n) => *nanos.get_or_insert(0) += n,
            Metric::SpillCount(n) => spills += n,
            Metric::SpilledBytes(n) => spilled_bytes += n,
            Metric::Count(count) => *counts.entry(count.name.as_str()).or_default() += count.value,
            _ => {}
        }
    }
    let mut parts = Vec::new();
    if let Some(rows) = rows {
        parts.push(format!("output_rows={rows}"));
    }
    if let Some(nanos) = nanos {
        parts.push(format!("elapsed_compute={:.3}ms", nanos as f64 / 1e6));
    }
    for (name, value) in counts {
        parts.push(format!("{name}={value}"));
    }
    if spills > 0 {
        parts.push(format!(
            "spill_count={spills}, spilled_bytes={spilled_bytes}"
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", metrics=[{}]", parts.join(", "))
    }
}
