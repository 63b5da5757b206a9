//! `GetWorkerStatus`, `GetTableRoots` and `LaunchRepairOperation`.

use hangar_model::workers::names;
use hangar_model::ObjectService;

use crate::api::{
    GetTableRootsResponse, GetWorkerStatusResponse, LaunchRepairOperationRequest,
    LaunchRepairOperationResponse, RepairType, TableRoots, WorkerInfo,
};
use crate::error::Result;

/// `GetWorkerStatus`.
pub(crate) fn get_worker_status(service: &ObjectService) -> GetWorkerStatusResponse {
    let now = service.clock().wall_msec();
    GetWorkerStatusResponse {
        workers: service
            .workers()
            .list()
            .into_iter()
            .map(|w| WorkerInfo {
                name: w.name,
                description: w.description,
                busy: w.busy,
                done: w.done,
                queued: w.queued,
                errors: w.errors,
                last_error_secs_ago: w
                    .last_error
                    .as_ref()
                    .map(|(at, _)| now.saturating_sub(*at) / 1000),
                last_error: w.last_error.map(|(_, e)| e),
                progress: w.progress,
            })
            .collect(),
    }
}

/// `GetTableRoots`.
pub(crate) fn get_table_roots(service: &ObjectService) -> Result<GetTableRootsResponse> {
    let tables = service
        .table_roots()?
        .into_iter()
        .map(|t| TableRoots {
            table: t.table.to_string(),
            partitions: t
                .roots
                .into_iter()
                .map(|(p, root)| (p.0, hex::encode(root)))
                .collect(),
        })
        .collect();
    Ok(GetTableRootsResponse { tables })
}

/// `LaunchRepairOperation`: each repair is safe at any time; long ones run in
/// the background and show in `GetWorkerStatus`.
pub(crate) async fn launch_repair(
    service: &ObjectService,
    request: LaunchRepairOperationRequest,
) -> Result<LaunchRepairOperationResponse> {
    let started = match request.repair_type {
        RepairType::Tables => {
            let s = service.clone();
            tokio::spawn(async move {
                let failed = s.sync_tables().await;
                if failed == 0 {
                    tracing::info!("repair tables: every partition compared with its replicas");
                } else {
                    tracing::warn!(failed, "repair tables: some partition syncs failed");
                }
            });
            "an anti-entropy pass of every table, in the background".to_string()
        }
        RepairType::Blocks => {
            let n = service
                .blocks()
                .queue_all_for_resync()
                .await
                .map_err(hangar_model::Error::from)?;
            service.workers().wake(names::RESYNC);
            format!("{n} referenced blocks queued for a check (see the resync worker)")
        }
        RepairType::Scrub => {
            service
                .blocks()
                .restart_scrub()
                .await
                .map_err(hangar_model::Error::from)?;
            service.workers().wake(names::SCRUB);
            "a scrub pass from the first block (see the scrub worker)".to_string()
        }
        RepairType::Versions => {
            let s = service.clone();
            spawn_pass(
                service,
                "repair-versions",
                "releases data no version uses",
                async move {
                    let r = s.repair_versions().await;
                    s.workers().wake(names::RELEASE);
                    r
                },
                |r| {
                    let progress = format!(
                        "last pass: {} data ids checked, {} released, {} too recent, {} without owner, {} unreadable",
                        r.checked, r.released, r.recent, r.ownerless, r.unreadable
                    );
                    (r.checked, progress)
                },
            );
            "a pass over the data this node holds, releasing what no version uses (see the repair-versions worker)".to_string()
        }
        RepairType::Rebalance => {
            let s = service.clone();
            spawn_pass(
                service,
                "rebalance",
                "moves blocks to their data directory",
                async move {
                    s.blocks()
                        .rebalance()
                        .await
                        .map_err(hangar_model::Error::from)
                },
                |r| {
                    let progress = format!(
                        "last pass: {} blocks checked, {} moved ({} bytes), {} failed",
                        r.checked, r.moved, r.bytes_moved, r.failed
                    );
                    (r.moved, progress)
                },
            );
            "a pass moving every block to the data directory it belongs in (see the rebalance worker)".to_string()
        }
    };
    Ok(LaunchRepairOperationResponse { started })
}

/// Runs one pass of a repair in the background, shown as worker `name`:
/// busy while it runs, then the items `summary` counts and its words.
fn spawn_pass<R: Send + 'static>(
    service: &ObjectService,
    name: &'static str,
    what: &'static str,
    pass: impl std::future::Future<Output = hangar_model::Result<R>> + Send + 'static,
    summary: fn(&R) -> (u64, String),
) {
    let s = service.clone();
    tokio::spawn(async move {
        s.workers().update(name, what, |w| {
            w.busy = true;
            w.progress = "running".into();
        });
        match pass.await {
            Ok(r) => {
                let (done, progress) = summary(&r);
                s.workers().update(name, what, |w| {
                    w.busy = false;
                    w.done += done;
                    w.progress = progress;
                });
            }
            Err(e) => {
                tracing::warn!(worker = name, error = %e, "repair pass failed");
                s.workers().update(name, what, |w| w.busy = false);
                s.workers()
                    .failed(name, what, s.clock().wall_msec(), e.to_string());
            }
        }
    });
}
