//! Handlers of the bucket, permission and alias endpoints.

use hangar_model::schema::access_key::{AccessKey, Permission};
use hangar_model::ObjectService;
use hangar_util::Uuid;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::api::{
    AliasTarget, BucketAliasRequest, BucketInfoKey, BucketKeyPerm, BucketKeyPermRequest,
    BucketLocalAlias, CreateBucketRequest, DeleteBucketRequest, EmptyResponse,
    GetBucketInfoRequest, GetBucketInfoResponse, ListBucketsItem, ListBucketsResponse,
};
use crate::error::{Error, Result};

impl From<Permission> for BucketKeyPerm {
    fn from(p: Permission) -> Self {
        BucketKeyPerm {
            read: p.read,
            write: p.write,
            owner: p.owner,
        }
    }
}

impl From<BucketKeyPerm> for Permission {
    fn from(p: BucketKeyPerm) -> Self {
        Permission {
            read: p.read,
            write: p.write,
            owner: p.owner,
        }
    }
}

/// `ListBuckets`.
pub(crate) async fn list_buckets(service: &ObjectService) -> Result<ListBucketsResponse> {
    let keys = service.list_keys().await?;
    let buckets = service.list_buckets().await?;
    Ok(ListBucketsResponse(
        buckets
            .into_iter()
            .map(|info| {
                let id = info.bucket.id;
                let local_aliases = keys
                    .iter()
                    .flat_map(|k| {
                        local_aliases_of(k, &id)
                            .into_iter()
                            .map(|alias| BucketLocalAlias {
                                access_key_id: k.id.clone(),
                                alias,
                            })
                    })
                    .collect();
                ListBucketsItem {
                    id: id.to_hex(),
                    created: rfc3339(info.bucket.created_msec),
                    global_aliases: info.aliases,
                    local_aliases,
                }
            })
            .collect(),
    ))
}

/// `CreateBucket`: a bucket no key has rights on yet.
pub(crate) async fn create_bucket(
    service: &ObjectService,
    request: CreateBucketRequest,
) -> Result<GetBucketInfoResponse> {
    let id = service.create_bucket(&request.global_alias, None).await?;
    bucket_info(service, &id).await
}

/// `GetBucketInfo`.
pub(crate) async fn get_bucket_info(
    service: &ObjectService,
    request: GetBucketInfoRequest,
) -> Result<GetBucketInfoResponse> {
    let id = match (request.id, request.global_alias, request.search) {
        (Some(id), None, None) => parse_bucket_id(&id)?,
        (None, Some(alias), None) => service.resolve_bucket(&alias, None).await?,
        (None, None, Some(pattern)) => search_bucket(service, &pattern).await?,
        _ => {
            return Err(Error::bad_request(
                "give exactly one of id, globalAlias and search",
            ))
        }
    };
    bucket_info(service, &id).await
}

/// `DeleteBucket`: only an empty bucket.
pub(crate) async fn delete_bucket(
    service: &ObjectService,
    request: DeleteBucketRequest,
) -> Result<EmptyResponse> {
    let id = parse_bucket_id(&request.id)?;
    service.delete_bucket(&id).await?;
    Ok(EmptyResponse {})
}

/// `AllowBucketKey` (`grant`) and `DenyBucketKey` (`!grant`).
pub(crate) async fn set_bucket_key(
    service: &ObjectService,
    request: BucketKeyPermRequest,
    grant: bool,
) -> Result<GetBucketInfoResponse> {
    let id = parse_bucket_id(&request.bucket_id)?;
    service
        .set_permission(
            &request.access_key_id,
            &id,
            request.permissions.into(),
            grant,
        )
        .await?;
    bucket_info(service, &id).await
}

/// `AddBucketAlias`.
pub(crate) async fn add_alias(
    service: &ObjectService,
    request: BucketAliasRequest,
) -> Result<GetBucketInfoResponse> {
    let id = parse_bucket_id(&request.bucket_id)?;
    match &request.alias {
        AliasTarget::Global { global_alias } => {
            service.add_global_alias(&id, global_alias).await?;
        }
        AliasTarget::Local {
            access_key_id,
            local_alias,
        } => {
            let key = service.get_key(access_key_id).await?;
            if let Some(Some(other)) = key.local_aliases.get(local_alias) {
                if service.get_bucket(other).await?.is_some() {
                    return Err(hangar_model::Error::BucketAlreadyExists {
                        owned_by_you: *other == id,
                    }
                    .into());
                }
            }
            service
                .set_local_alias(access_key_id, local_alias, Some(id))
                .await?;
        }
    }
    bucket_info(service, &id).await
}

/// `RemoveBucketAlias`: a bucket keeps at least one name.
pub(crate) async fn remove_alias(
    service: &ObjectService,
    request: BucketAliasRequest,
) -> Result<GetBucketInfoResponse> {
    let id = parse_bucket_id(&request.bucket_id)?;
    match &request.alias {
        AliasTarget::Global { global_alias } => {
            service.remove_global_alias(&id, global_alias).await?;
        }
        AliasTarget::Local {
            access_key_id,
            local_alias,
        } => {
            let key = service.get_key(access_key_id).await?;
            if key.local_aliases.get(local_alias) != Some(&Some(id)) {
                return Err(Error::bad_request(format!(
                    "{local_alias} is not a name of this bucket for key {access_key_id}"
                )));
            }
            let info = bucket_info(service, &id).await?;
            let local_names: usize = info.keys.iter().map(|k| k.bucket_local_aliases.len()).sum();
            if info.global_aliases.is_empty() && local_names == 1 {
                return Err(Error::bad_request("a bucket must keep at least one name"));
            }
            service
                .set_local_alias(access_key_id, local_alias, None)
                .await?;
        }
    }
    bucket_info(service, &id).await
}

/// The API form of bucket `id`, with the keys that have rights on it or names for it.
async fn bucket_info(service: &ObjectService, id: &Uuid) -> Result<GetBucketInfoResponse> {
    let info = service
        .list_buckets()
        .await?
        .into_iter()
        .find(|b| b.bucket.id == *id)
        .ok_or_else(|| no_such_bucket(id.to_hex()))?;
    let keys = service
        .list_keys()
        .await?
        .into_iter()
        .filter_map(|k| {
            let permission = k.permission(id);
            let bucket_local_aliases = local_aliases_of(&k, id);
            (permission.is_any() || !bucket_local_aliases.is_empty()).then(|| BucketInfoKey {
                name: k.name.get().clone(),
                access_key_id: k.id,
                permissions: permission.into(),
                bucket_local_aliases,
            })
        })
        .collect();
    Ok(GetBucketInfoResponse {
        id: id.to_hex(),
        created: rfc3339(info.bucket.created_msec),
        global_aliases: info.aliases,
        keys,
    })
}

/// The bucket with global name `pattern`, else with id `pattern`, else the one
/// whose id starts with `pattern`; several matches are an error.
async fn search_bucket(service: &ObjectService, pattern: &str) -> Result<Uuid> {
    if pattern.is_empty() {
        return Err(Error::bad_request("search pattern is empty"));
    }
    match service.resolve_bucket(pattern, None).await {
        Ok(id) => return Ok(id),
        Err(hangar_model::Error::NoSuchBucket { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let pattern_lower = pattern.to_ascii_lowercase();
    let found: Vec<Uuid> = service
        .list_buckets()
        .await?
        .into_iter()
        .map(|b| b.bucket.id)
        .filter(|id| id.to_hex().starts_with(&pattern_lower))
        .collect();
    match found.as_slice() {
        [] => Err(no_such_bucket(pattern.to_string())),
        [id] => Ok(*id),
        _ => Err(Error::bad_request(format!(
            "{} buckets match {pattern:?}, give the full id",
            found.len()
        ))),
    }
}

/// The names private to `key` that point at `bucket`.
pub(crate) fn local_aliases_of(key: &AccessKey, bucket: &Uuid) -> Vec<String> {
    key.local_aliases
        .iter()
        .filter(|(_, b)| b.as_ref() == Some(bucket))
        .map(|(name, _)| name.clone())
        .collect()
}

fn parse_bucket_id(id: &str) -> Result<Uuid> {
    Uuid::from_hex(id).ok_or_else(|| {
        Error::bad_request(format!(
            "invalid bucket id {id:?}: expected 32 hex characters"
        ))
    })
}

fn no_such_bucket(name: String) -> Error {
    hangar_model::Error::NoSuchBucket { name }.into()
}

/// `msec` since the epoch in RFC 3339, if representable.
fn rfc3339(msec: u64) -> Option<String> {
    let nanos = i128::from(msec) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()?
        .format(&Rfc3339)
        .ok()
}
