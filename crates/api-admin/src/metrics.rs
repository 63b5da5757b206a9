//! `GET /metrics`: the node's counters in the Prometheus text format.

use hangar_model::ObjectService;

use crate::error::Result;

/// The Prometheus exposition of `service`'s counters and gauges.
pub(crate) async fn render(service: &ObjectService) -> Result<String> {
    let (transactions, commits) = service.db().commit_stats();
    let buckets = service.list_buckets().await?.len();
    let keys = service.list_keys().await?.len();
    let mut out = String::new();
    metric(
        &mut out,
        "hangar_db_transactions_total",
        "counter",
        "Metadata transactions committed.",
        "",
        transactions,
    );
    metric(
        &mut out,
        "hangar_db_commits_total",
        "counter",
        "Metadata engine commits (each groups one or more transactions).",
        "",
        commits,
    );
    metric(
        &mut out,
        "hangar_buckets",
        "gauge",
        "Live buckets.",
        "",
        buckets,
    );
    metric(
        &mut out,
        "hangar_access_keys",
        "gauge",
        "Live access keys.",
        "",
        keys,
    );
    let version = format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    metric(
        &mut out,
        "hangar_build_info",
        "gauge",
        "Build of this node (always 1).",
        &version,
        1,
    );
    Ok(out)
}

/// Appends one metric with its `# HELP` and `# TYPE` lines.
fn metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    labels: &str,
    value: impl std::fmt::Display,
) {
    out.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {value}\n"
    ));
}
