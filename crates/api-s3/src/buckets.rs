//! Bucket operations.

use hangar_model::schema::access_key::AccessKey;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use crate::error::to_s3;
use crate::headers::timestamp;
use crate::{Need, S3Frontend};

impl S3Frontend {
    pub(crate) async fn handle_list_buckets(
        &self,
        req: &S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let key = self.key_of(req).await?;
        let mut buckets = Vec::new();
        for info in self.model.list_buckets().await.map_err(to_s3)? {
            if !key.permission(&info.bucket.id).is_any() {
                continue;
            }
            let local = key
                .local_aliases
                .iter()
                .filter(|(_, b)| **b == Some(info.bucket.id))
                .map(|(n, _)| n.clone());
            for name in info.aliases.iter().cloned().chain(local) {
                buckets.push(Bucket {
                    name: Some(name),
                    creation_date: Some(timestamp(info.bucket.created_msec)),
                    bucket_region: Some(self.settings.region.clone()),
                });
            }
        }
        if let Some(prefix) = &req.input.prefix {
            buckets.retain(|b| {
                b.name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(prefix.as_str()))
            });
        }
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        buckets.dedup_by(|a, b| a.name == b.name);
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner(&key)),
            prefix: req.input.prefix.clone(),
            continuation_token: None,
        }))
    }

    pub(crate) async fn handle_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let key = self.key_of(&req).await?;
        let input = req.input;
        if input.object_lock_enabled_for_bucket == Some(true) {
            return Err(s3_error!(NotImplemented, "Object lock is not supported"));
        }
        if let (Some(pinned), Some(c)) = (
            self.settings.pinned_region.as_deref(),
            input
                .create_bucket_configuration
                .as_ref()
                .and_then(|c| c.location_constraint.as_ref()),
        ) {
            if c.as_str() != pinned {
                return Err(s3_error!(
                    InvalidLocationConstraint,
                    "The specified location constraint is not valid"
                ));
            }
        }
        if let Ok(id) = self.model.resolve_bucket(&input.bucket, Some(&key)).await {
            return Err(if self.allows(&key, &id, Need::Owner).await? {
                s3_error!(BucketAlreadyOwnedByYou, "Your previous request to create the named bucket succeeded and you already own it.")
            } else {
                s3_error!(
                    BucketAlreadyExists,
                    "The requested bucket name is not available."
                )
            });
        }
        // This node's copy of the key may not have the right yet if it was
        // given a moment ago: a refusal is confirmed from a quorum.
        if !*key.allow_create_bucket.get()
            && !*self
                .model
                .get_key_from_quorum(&key.id)
                .await
                .map_err(crate::access::key_error)?
                .allow_create_bucket
                .get()
        {
            return Err(s3_error!(
                AccessDenied,
                "This key is not allowed to create buckets"
            ));
        }
        self.model
            .create_bucket(&input.bucket, Some(&key))
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", input.bucket)),
        }))
    }

    pub(crate) async fn handle_head_bucket(
        &self,
        req: &S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let key = self.key_of(req).await?;
        let id = self
            .model
            .resolve_bucket(&req.input.bucket, Some(&key))
            .await
            .map_err(to_s3)?;
        if !self.allows(&key, &id, Need::Any).await? {
            return Err(s3_error!(AccessDenied));
        }
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.settings.region.clone()),
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let key = self.key_of(&req).await?;
        let id = self
            .bucket_for(&req.input.bucket, &key, Need::Owner)
            .await?;
        self.model.delete_bucket(&id).await.map_err(to_s3)?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub(crate) async fn handle_get_bucket_location(
        &self,
        req: &S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let key = self.key_of(req).await?;
        self.bucket_for(&req.input.bucket, &key, Need::Read).await?;
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: Some(BucketLocationConstraint::from(self.settings.region.clone())),
        }))
    }
}

pub(crate) fn owner(key: &AccessKey) -> Owner {
    Owner {
        display_name: Some(key.name.get().clone()),
        id: Some(key.id.clone()),
    }
}
