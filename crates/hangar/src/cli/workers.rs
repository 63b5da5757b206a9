//! `hangar worker ...` and `hangar repair ...`.

use hangar_api_admin::api::{
    GetWorkerStatusResponse, LaunchRepairOperationRequest, LaunchRepairOperationResponse,
    RepairType,
};
use hangar_api_admin::AdminRequest;

use super::client::AdminClient;
use super::table::render;
use super::AdminTarget;

/// `hangar worker ...`: the node's background workers.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum WorkerCommand {
    /// Lists the workers: state, items done and queued, errors, progress.
    List,
}

/// What `hangar repair` repairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RepairWhat {
    /// Compare every table with its other replicas now (anti-entropy).
    Tables,
    /// Check every referenced block and fetch missing ones from peers.
    Blocks,
    /// Read every block back from the first one and repair damaged ones.
    Scrub,
    /// Release data that no object version or upload uses (left by a node
    /// that died before committing an upload).
    Versions,
    /// Move blocks to the data directory they belong in, after data
    /// directories were added, removed or resized.
    Rebalance,
}

/// Runs `command` against the admin API at `target` and prints the outcome.
pub async fn run_worker(target: AdminTarget, command: WorkerCommand) -> anyhow::Result<()> {
    let client = AdminClient::new(&target)?;
    match command {
        WorkerCommand::List => {
            let status: GetWorkerStatusResponse =
                client.call(&AdminRequest::GetWorkerStatus).await?;
            out!("{}", render_workers(&status));
        }
    }
    Ok(())
}

/// Starts a repair on the node at `target`.
pub async fn run_repair(target: AdminTarget, what: RepairWhat) -> anyhow::Result<()> {
    let client = AdminClient::new(&target)?;
    let repair_type = match what {
        RepairWhat::Tables => RepairType::Tables,
        RepairWhat::Blocks => RepairType::Blocks,
        RepairWhat::Scrub => RepairType::Scrub,
        RepairWhat::Versions => RepairType::Versions,
        RepairWhat::Rebalance => RepairType::Rebalance,
    };
    let r: LaunchRepairOperationResponse = client
        .call(&AdminRequest::LaunchRepairOperation(
            LaunchRepairOperationRequest { repair_type },
        ))
        .await?;
    outln!("Started: {}.", r.started);
    Ok(())
}

/// The workers as a table, then their last errors.
pub(crate) fn render_workers(status: &GetWorkerStatusResponse) -> String {
    let rows: Vec<Vec<String>> = status
        .workers
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                if w.busy { "busy" } else { "idle" }.to_string(),
                w.done.to_string(),
                w.queued.map_or_else(|| "-".to_string(), |q| q.to_string()),
                w.errors.to_string(),
                w.progress.clone(),
            ]
        })
        .collect();
    let mut out = render(
        &["WORKER", "STATE", "DONE", "QUEUED", "ERRORS", "PROGRESS"],
        &rows,
    );
    for w in &status.workers {
        if let (Some(e), Some(ago)) = (&w.last_error, w.last_error_secs_ago) {
            out.push_str(&format!("{}: last error {ago} s ago: {e}\n", w.name));
        }
    }
    out
}
