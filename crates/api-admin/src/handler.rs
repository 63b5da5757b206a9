//! The dispatch of an [`AdminRequest`] to its handler: one function per endpoint,
//! in `keys.rs`, `buckets.rs`, `metrics.rs`, `cluster.rs`, `layout.rs` and
//! `workers.rs`.

use hangar_cluster::System;
use hangar_model::ObjectService;

use crate::api::{AdminRequest, AdminResponse, HealthResponse};
use crate::error::Result;
use crate::{buckets, cluster as nodes, keys, layout, metrics, workers};

/// Runs `request` against `service` and `cluster`.
pub async fn handle(
    service: &ObjectService,
    cluster: &System,
    request: AdminRequest,
) -> Result<AdminResponse> {
    use AdminRequest as R;
    use AdminResponse as A;
    Ok(match request {
        R::Health => A::Health(HealthResponse {
            status: "healthy".to_string(),
        }),
        R::Metrics => A::Metrics(metrics::render(service).await?),
        R::ListKeys => A::KeyList(keys::list_keys(service).await?),
        R::CreateKey(r) => A::KeyInfo(keys::create_key(service, r).await?),
        R::ImportKey(r) => A::KeyInfo(keys::import_key(service, r).await?),
        R::GetKeyInfo(r) => A::KeyInfo(keys::get_key_info(service, r).await?),
        R::UpdateKey(r) => A::KeyInfo(keys::update_key(service, r).await?),
        R::DeleteKey(r) => A::Empty(keys::delete_key(service, r).await?),
        R::ListBuckets => A::BucketList(buckets::list_buckets(service).await?),
        R::CreateBucket(r) => A::BucketInfo(buckets::create_bucket(service, r).await?),
        R::GetBucketInfo(r) => A::BucketInfo(buckets::get_bucket_info(service, r).await?),
        R::DeleteBucket(r) => A::Empty(buckets::delete_bucket(service, r).await?),
        R::AllowBucketKey(r) => A::BucketInfo(buckets::set_bucket_key(service, r, true).await?),
        R::DenyBucketKey(r) => A::BucketInfo(buckets::set_bucket_key(service, r, false).await?),
        R::AddBucketAlias(r) => A::BucketInfo(buckets::add_alias(service, r).await?),
        R::RemoveBucketAlias(r) => A::BucketInfo(buckets::remove_alias(service, r).await?),
        R::GetNodeInfo(r) => A::NodeInfo(nodes::get_node_info(cluster, r)?),
        R::GetClusterStatus => A::ClusterStatus(nodes::get_cluster_status(cluster)),
        R::GetClusterHealth => A::ClusterHealth(nodes::get_cluster_health(cluster)),
        R::ConnectClusterNodes(r) => {
            A::ConnectNodes(nodes::connect_cluster_nodes(cluster, r).await?)
        }
        R::GetClusterLayout => A::ClusterLayout(layout::get_cluster_layout(cluster)),
        R::UpdateClusterLayout(r) => A::ClusterLayout(layout::update_cluster_layout(cluster, r)?),
        R::PreviewClusterLayoutChanges => {
            A::LayoutPreview(layout::preview_cluster_layout_changes(cluster)?)
        }
        R::ApplyClusterLayout(r) => A::LayoutApplied(layout::apply_cluster_layout(cluster, r)?),
        R::RevertClusterLayout => A::ClusterLayout(layout::revert_cluster_layout(cluster)?),
        R::GetClusterLayoutHistory => A::LayoutHistory(layout::get_cluster_layout_history(cluster)),
        R::ClusterLayoutSkipDeadNodes(r) => {
            A::SkippedDeadNodes(layout::skip_dead_nodes(cluster, r)?)
        }
        R::GetWorkerStatus => A::Workers(workers::get_worker_status(service)),
        R::GetTableRoots => A::TableRoots(workers::get_table_roots(service)?),
        R::LaunchRepairOperation(r) => A::Repair(workers::launch_repair(service, r).await?),
    })
}
