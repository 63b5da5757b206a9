//! Handlers of the access key endpoints.

use hangar_model::schema::access_key::AccessKey;
use hangar_model::ObjectService;

use crate::api::{
    CreateKeyRequest, DeleteKeyRequest, EmptyResponse, GetKeyInfoRequest, GetKeyInfoResponse,
    ImportKeyRequest, KeyInfoBucket, KeyPerm, ListKeysItem, ListKeysResponse, UpdateKeyRequest,
};
use crate::buckets::local_aliases_of;
use crate::error::{Error, Result};

/// `ListKeys`.
pub(crate) async fn list_keys(service: &ObjectService) -> Result<ListKeysResponse> {
    let keys = service.list_keys().await?;
    Ok(ListKeysResponse(
        keys.into_iter()
            .map(|k| ListKeysItem {
                name: k.name.get().clone(),
                id: k.id,
            })
            .collect(),
    ))
}

/// `CreateKey`: answers with the secret.
pub(crate) async fn create_key(
    service: &ObjectService,
    request: CreateKeyRequest,
) -> Result<GetKeyInfoResponse> {
    let key = service
        .create_key(request.name.as_deref().unwrap_or_default())
        .await?;
    key_info(service, &key, true).await
}

/// `ImportKey`: answers with the secret.
pub(crate) async fn import_key(
    service: &ObjectService,
    request: ImportKeyRequest,
) -> Result<GetKeyInfoResponse> {
    match service.get_key(&request.access_key_id).await {
        Ok(_) => {
            return Err(Error::KeyAlreadyExists {
                id: request.access_key_id,
            })
        }
        Err(hangar_model::Error::NoSuchAccessKey { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let key = service
        .import_key(
            &request.access_key_id,
            &request.secret_access_key,
            request.name.as_deref().unwrap_or_default(),
        )
        .await?;
    key_info(service, &key, true).await
}

/// `GetKeyInfo`.
pub(crate) async fn get_key_info(
    service: &ObjectService,
    request: GetKeyInfoRequest,
) -> Result<GetKeyInfoResponse> {
    let key = match (request.id, request.search) {
        (Some(id), _) => service.get_key(&id).await?,
        (None, Some(pattern)) => search_key(service, &pattern).await?,
        (None, None) => return Err(Error::bad_request("give exactly one of id and search")),
    };
    key_info(service, &key, request.show_secret_key).await
}

/// `UpdateKey`: `deny` wins over `allow` when both name a right.
pub(crate) async fn update_key(
    service: &ObjectService,
    request: UpdateKeyRequest,
) -> Result<GetKeyInfoResponse> {
    let body = request.body;
    let mut create_bucket = None;
    if body.allow.is_some_and(|p| p.create_bucket) {
        create_bucket = Some(true);
    }
    if body.deny.is_some_and(|p| p.create_bucket) {
        create_bucket = Some(false);
    }
    let key = service
        .update_key(&request.id, body.name.as_deref(), create_bucket)
        .await?;
    key_info(service, &key, false).await
}

/// `DeleteKey`.
pub(crate) async fn delete_key(
    service: &ObjectService,
    request: DeleteKeyRequest,
) -> Result<EmptyResponse> {
    service.delete_key(&request.id).await?;
    Ok(EmptyResponse {})
}

/// The key whose id is `pattern`, else whose name is `pattern`, else whose id
/// starts with `pattern`; several matches are an error.
async fn search_key(service: &ObjectService, pattern: &str) -> Result<AccessKey> {
    if pattern.is_empty() {
        return Err(Error::bad_request("search pattern is empty"));
    }
    let keys = service.list_keys().await?;
    if let Some(key) = keys.iter().find(|k| k.id == pattern) {
        return Ok(key.clone());
    }
    let by_name: Vec<&AccessKey> = keys.iter().filter(|k| k.name.get() == pattern).collect();
    let found = if by_name.is_empty() {
        keys.iter().filter(|k| k.id.starts_with(pattern)).collect()
    } else {
        by_name
    };
    match found.as_slice() {
        [] => Err(hangar_model::Error::NoSuchAccessKey {
            id: pattern.to_string(),
        }
        .into()),
        [key] => Ok((*key).clone()),
        _ => Err(Error::bad_request(format!(
            "{} access keys match {pattern:?}, give the full id",
            found.len()
        ))),
    }
}

/// The API form of `key`, with the buckets it has rights on or names for.
async fn key_info(
    service: &ObjectService,
    key: &AccessKey,
    show_secret: bool,
) -> Result<GetKeyInfoResponse> {
    let mut buckets = Vec::new();
    for info in service.list_buckets().await? {
        let id = info.bucket.id;
        let permission = key.permission(&id);
        let local_aliases = local_aliases_of(key, &id);
        if permission.is_any() || !local_aliases.is_empty() {
            buckets.push(KeyInfoBucket {
                id: id.to_hex(),
                global_aliases: info.aliases,
                local_aliases,
                permissions: permission.into(),
            });
        }
    }
    Ok(GetKeyInfoResponse {
        name: key.name.get().clone(),
        access_key_id: key.id.clone(),
        secret_access_key: show_secret.then(|| key.secret.clone()),
        permissions: KeyPerm {
            create_bucket: *key.allow_create_bucket.get(),
        },
        buckets,
    })
}
