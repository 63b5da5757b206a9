//! Access key management.

use hangar_util::crdt::{Lww, LwwMap};

use super::ObjectService;
use crate::schema::access_key::AccessKey;
use crate::schema::global_partition;
use crate::{Error, Result};

/// Most keys listed at once.
const KEYS_LISTED_MAX: usize = 100_000;

impl ObjectService {
    /// Creates a key with a generated id and secret.
    pub async fn create_key(&self, name: &str) -> Result<AccessKey> {
        let id = format!("HK{}", hex::encode(hangar_util::rng::random::<[u8; 12]>()));
        let secret = hex::encode(hangar_util::rng::random::<[u8; 32]>());
        self.import_key(&id, &secret, name).await
    }

    /// Creates a key with the given id and secret (for migrations and fixed
    /// test credentials). A deleted key may be imported again with its
    /// former secret only: an id keeps one secret for as long as any replica
    /// remembers it.
    pub async fn import_key(&self, id: &str, secret: &str, name: &str) -> Result<AccessKey> {
        if id.len() < 4 || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::InvalidArgument(
                "access key id must be 4-128 alphanumeric characters".into(),
            ));
        }
        if secret.len() < 16 || secret.len() > 256 {
            return Err(Error::InvalidArgument(
                "secret key must be 16-256 characters".into(),
            ));
        }
        if let Some(existing) = self
            .inner
            .keys
            .read(&global_partition("access_keys"), id.as_bytes())
            .await?
        {
            if !*existing.deleted.get() {
                return Err(Error::InvalidArgument(format!(
                    "access key {id} already exists"
                )));
            }
            if existing.secret != secret {
                return Err(Error::InvalidArgument(format!(
                    "access key {id} was deleted; it can be imported again only with its former secret"
                )));
            }
        }
        let ts = self.inner.clock.now();
        let key = AccessKey {
            id: id.to_string(),
            secret: secret.to_string(),
            name: Lww::new(ts, name.to_string()),
            deleted: Lww::new(ts, false),
            allow_create_bucket: Lww::new(ts, false),
            permissions: LwwMap::default(),
            local_aliases: LwwMap::default(),
        };
        self.inner.keys.insert(key.clone()).await?;
        Ok(key)
    }

    /// The key `id`, unless missing or deleted. Read from this node's copy
    /// when it has a live one (keys are read on every request); a key this
    /// copy lacks or holds as deleted is read again from a quorum before it
    /// is called missing, so a key created or restored through another node
    /// works at once.
    pub async fn get_key(&self, id: &str) -> Result<AccessKey> {
        let pk = global_partition("access_keys");
        match self.inner.keys.read_near(&pk, id.as_bytes()).await? {
            Some(k) if !*k.deleted.get() => Ok(k),
            _ => self.get_key_from_quorum(id).await,
        }
    }

    /// The key `id` as a read quorum of its replicas has it, unless missing
    /// or deleted: to confirm a refusal that [`ObjectService::get_key`]'s
    /// nearby copy would give (a permission granted a moment ago through
    /// another node may not have reached it yet).
    pub async fn get_key_from_quorum(&self, id: &str) -> Result<AccessKey> {
        let pk = global_partition("access_keys");
        match self.inner.keys.read(&pk, id.as_bytes()).await? {
            Some(k) if !*k.deleted.get() => Ok(k),
            _ => Err(Error::NoSuchAccessKey { id: id.to_string() }),
        }
    }

    /// Every key not deleted, by id.
    pub async fn list_keys(&self) -> Result<Vec<AccessKey>> {
        let all = self
            .inner
            .keys
            .read_range(&global_partition("access_keys"), b"", KEYS_LISTED_MAX)
            .await?;
        Ok(all.into_iter().filter(|k| !*k.deleted.get()).collect())
    }

    /// Changes a key's name and/or its right to create buckets.
    pub async fn update_key(
        &self,
        id: &str,
        name: Option<&str>,
        allow_create_bucket: Option<bool>,
    ) -> Result<AccessKey> {
        let mut key = self.get_key(id).await?;
        let ts = self.inner.clock.now();
        if let Some(n) = name {
            key.name.set(ts, n.to_string());
        }
        if let Some(a) = allow_create_bucket {
            key.allow_create_bucket.set(ts, a);
        }
        self.inner.keys.insert(key.clone()).await?;
        Ok(key)
    }

    /// Deletes a key: it can no longer sign requests.
    pub async fn delete_key(&self, id: &str) -> Result<()> {
        let mut key = self.get_key(id).await?;
        key.deleted.set(self.inner.clock.now(), true);
        self.inner.keys.insert(key).await?;
        Ok(())
    }
}
