//! `GetWorkerStatus` and `LaunchRepairOperation`.

use hangar_model::ObjectService;

use crate::api::{
    GetWorkerStatusResponse, LaunchRepairOperationRequest, LaunchRepairOperationResponse,
    RepairType, WorkerInfo,
};
use crate::error::{Error, Result};

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
            format!("{n} referenced blocks queued for a check (see the resync worker)")
        }
        RepairType::Scrub => {
            service
                .blocks()
                .restart_scrub()
                .await
                .map_err(hangar_model::Error::from)?;
            "a scrub pass from the first block (see the scrub worker)".to_string()
        }
        RepairType::Versions => {
            return Err(Error::NotImplemented(
                "repair versions is not implemented: data no version uses is released by the release worker"
                    .to_string(),
            ))
        }
    };
    Ok(LaunchRepairOperationResponse { started })
}
