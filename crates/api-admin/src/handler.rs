//! The dispatch of an [`AdminRequest`] to its handler: one function per endpoint,
//! in `keys.rs`, `buckets.rs` and `metrics.rs`.

use hangar_cluster::System;
use hangar_model::ObjectService;

use crate::api::{AdminRequest, AdminResponse, HealthResponse};
use crate::error::Result;
use crate::{buckets, keys, metrics};

/// Runs `request` against `service` and `cluster`.
pub async fn handle(
    service: &ObjectService,
    cluster: &System,
    request: AdminRequest,
) -> Result<AdminResponse> {
    let _ = cluster;
    use AdminRequest as R;
    use AdminResponse as A;
    Ok(match request {
        R::Health => A::Health(HealthResponse {
            status: "healthy".to_string(),
        }),
        R::Metrics => A::Metrics(metrics::render(service)?),
        R::ListKeys => A::KeyList(keys::list_keys(service)?),
        R::CreateKey(r) => A::KeyInfo(keys::create_key(service, r).await?),
        R::ImportKey(r) => A::KeyInfo(keys::import_key(service, r).await?),
        R::GetKeyInfo(r) => A::KeyInfo(keys::get_key_info(service, r)?),
        R::UpdateKey(r) => A::KeyInfo(keys::update_key(service, r).await?),
        R::DeleteKey(r) => A::Empty(keys::delete_key(service, r).await?),
        R::ListBuckets => A::BucketList(buckets::list_buckets(service)?),
        R::CreateBucket(r) => A::BucketInfo(buckets::create_bucket(service, r).await?),
        R::GetBucketInfo(r) => A::BucketInfo(buckets::get_bucket_info(service, r)?),
        R::DeleteBucket(r) => A::Empty(buckets::delete_bucket(service, r).await?),
        R::AllowBucketKey(r) => A::BucketInfo(buckets::set_bucket_key(service, r, true).await?),
        R::DenyBucketKey(r) => A::BucketInfo(buckets::set_bucket_key(service, r, false).await?),
        R::AddBucketAlias(r) => A::BucketInfo(buckets::add_alias(service, r).await?),
        R::RemoveBucketAlias(r) => A::BucketInfo(buckets::remove_alias(service, r).await?),
    })
}
