//! Bodies of the worker and repair endpoints.

use serde::{Deserialize, Serialize};

/// One background worker, as `GetWorkerStatus` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInfo {
    /// Short name (`resync`, `scrub`, `layout-sync`, `release`).
    pub name: String,
    /// What it does.
    pub description: String,
    /// Whether it had work at its last step.
    pub busy: bool,
    /// Items handled since the node started.
    pub done: u64,
    /// Items waiting, for workers with a queue.
    pub queued: Option<u64>,
    /// Failures since the node started.
    pub errors: u64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Seconds since the last failure.
    pub last_error_secs_ago: Option<u64>,
    /// Progress in words.
    pub progress: String,
}

/// `GET /v2/GetWorkerStatus`: this node's background workers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetWorkerStatusResponse {
    /// The workers, by name.
    pub workers: Vec<WorkerInfo>,
}

/// What a repair does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RepairType {
    /// An anti-entropy pass of every table with the other replicas, now.
    Tables,
    /// Every referenced block checked, and fetched from a peer if missing.
    Blocks,
    /// A scrub pass (every block read back and checked) from the start, now.
    Scrub,
    /// Data that no object version or upload uses any more, released.
    Versions,
    /// Blocks moved to the data directory they belong in (after data
    /// directories were added, removed or resized).
    Rebalance,
}

/// `POST /v2/LaunchRepairOperation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LaunchRepairOperationRequest {
    /// The repair.
    pub repair_type: RepairType,
}

/// What a launched repair is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchRepairOperationResponse {
    /// In words.
    pub started: String,
}

/// One table's summary roots on a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRoots {
    /// The table (`objects`, `block_rows`...).
    pub table: String,
    /// Partition number to the hex root of this node's copy of it, for every
    /// partition the node holds in a live layout version.
    pub partitions: std::collections::BTreeMap<u16, String>,
}

/// `GET /v2/GetTableRoots`: the Merkle summary roots of the table partitions
/// this node holds. Two holders of a partition with equal roots hold the
/// same entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTableRootsResponse {
    /// Every table.
    pub tables: Vec<TableRoots>,
}
