//! Bucket management: creation, names, permissions, deletion.

use hangar_db::Tx;
use hangar_util::crdt::Lww;
use hangar_util::{Hash, Uuid};

use super::ObjectService;
use crate::schema::access_key::{AccessKey, Permission};
use crate::schema::bucket::{Bucket, BucketAlias};
use crate::schema::global_partition;
use crate::schema::object::{bucket_partition, Object, VersionState};
use crate::{Error, Result};

/// Most buckets or aliases listed at once.
const LISTED_MAX: usize = 100_000;

/// Whether `name` is a valid S3 bucket name (the rules of new AWS buckets).
pub fn is_valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("xn--")
        && !name.ends_with("-s3alias")
}

/// A bucket with its global names.
#[derive(Clone, Debug)]
pub struct BucketInfo {
    /// The bucket.
    pub bucket: Bucket,
    /// Its global names.
    pub aliases: Vec<String>,
}

/// Object entries read per step of an emptiness check.
const EMPTINESS_BATCH: usize = 256;

impl ObjectService {
    /// Creates bucket `name`, owned by `owner` (all permissions) if given.
    pub async fn create_bucket(&self, name: &str, owner: Option<&AccessKey>) -> Result<Uuid> {
        if !is_valid_bucket_name(name) {
            return Err(Error::InvalidBucketName {
                name: name.to_string(),
            });
        }
        if let Ok(existing) = self.resolve_bucket(name, owner) {
            let owned_by_you = owner.is_some_and(|k| k.permission(&existing).owner);
            return Err(Error::BucketAlreadyExists { owned_by_you });
        }
        let id = Uuid::random();
        let ts = self.inner.clock.now();
        let bucket = Bucket {
            id,
            created_msec: self.inner.clock.wall_msec(),
            deleted: Lww::new(ts, false),
        };
        let alias = BucketAlias {
            name: name.to_string(),
            bucket: Lww::new(ts, Some(id)),
        };
        let owner_id = owner.map(|k| k.id.clone());
        let this = self.clone();
        self.inner
            .db
            .transaction(move |tx| {
                // Checked again inside the transaction: two concurrent creations
                // of one name must not both succeed.
                let pk = global_partition("bucket_aliases");
                if let Some(a) = this.inner.aliases.get_in(tx, &pk, alias.name.as_bytes())? {
                    if a.bucket.get().is_some() {
                        return Err(Error::BucketAlreadyExists {
                            owned_by_you: false,
                        });
                    }
                }
                this.inner.buckets.insert_in(tx, &bucket)?;
                this.inner.aliases.insert_in(tx, &alias)?;
                if let Some(owner_id) = owner_id {
                    let pk = global_partition("access_keys");
                    let mut key = this
                        .inner
                        .keys
                        .get_in(tx, &pk, owner_id.as_bytes())?
                        .ok_or(Error::NoSuchAccessKey { id: owner_id })?;
                    key.permissions.set(ts, id, Permission::ALL);
                    this.inner.keys.insert_in(tx, &key)?;
                }
                Ok(())
            })
            .await?;
        Ok(id)
    }

    /// The bucket named `name` for `key` (its local names first, then global names).
    pub fn resolve_bucket(&self, name: &str, key: Option<&AccessKey>) -> Result<Uuid> {
        let no_such = || Error::NoSuchBucket {
            name: name.to_string(),
        };
        let local = key.and_then(|k| k.local_aliases.get(&name.to_string()).copied());
        let id = match local {
            Some(Some(id)) => id,
            _ => {
                let pk = global_partition("bucket_aliases");
                let alias = self
                    .inner
                    .aliases
                    .get(&pk, name.as_bytes())?
                    .ok_or_else(no_such)?;
                alias.bucket.get().ok_or_else(no_such)?
            }
        };
        match self.get_bucket(&id)? {
            Some(_) => Ok(id),
            None => Err(no_such()),
        }
    }

    /// The bucket `id`, unless missing or deleted.
    pub fn get_bucket(&self, id: &Uuid) -> Result<Option<Bucket>> {
        let b = self
            .inner
            .buckets
            .get(&global_partition("buckets"), id.as_bytes())?;
        Ok(b.filter(|b| !*b.deleted.get()))
    }

    /// Every live bucket with its global names.
    pub fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        let buckets = self
            .inner
            .buckets
            .range(&global_partition("buckets"), b"", LISTED_MAX)?;
        let aliases =
            self.inner
                .aliases
                .range(&global_partition("bucket_aliases"), b"", LISTED_MAX)?;
        Ok(buckets
            .into_iter()
            .filter(|b| !*b.deleted.get())
            .map(|bucket| BucketInfo {
                aliases: aliases
                    .iter()
                    .filter(|a| *a.bucket.get() == Some(bucket.id))
                    .map(|a| a.name.clone())
                    .collect(),
                bucket,
            })
            .collect())
    }

    /// Whether the bucket holds no object and no upload.
    pub fn is_bucket_empty(&self, id: &Uuid) -> Result<bool> {
        self.bucket_empty_with(id, |pk, start| {
            Ok(self.inner.objects.range(pk, start, EMPTINESS_BATCH)?)
        })
    }

    /// Like [`ObjectService::is_bucket_empty`], inside a transaction.
    fn is_bucket_empty_in(&self, tx: &mut Tx<'_>, id: &Uuid) -> Result<bool> {
        self.bucket_empty_with(id, |pk, start| {
            Ok(self
                .inner
                .objects
                .range_in(tx, pk, start, EMPTINESS_BATCH)?)
        })
    }

    fn bucket_empty_with(
        &self,
        id: &Uuid,
        mut range: impl FnMut(&Hash, &[u8]) -> Result<Vec<Object>>,
    ) -> Result<bool> {
        let pk = bucket_partition(id);
        let mut start = Vec::new();
        loop {
            let batch = range(&pk, &start)?;
            if batch.iter().any(|o| {
                o.visible().is_some()
                    || o.versions
                        .iter()
                        .any(|v| matches!(v.state, VersionState::Uploading { .. }))
            }) {
                return Ok(false);
            }
            match batch.last() {
                Some(last) if batch.len() == EMPTINESS_BATCH => {
                    start = last.key.as_bytes().to_vec();
                    start.push(0);
                }
                _ => return Ok(true),
            }
        }
    }

    /// Fails with `NoSuchBucket` unless `id` is a live bucket, as seen by `tx`.
    /// Every write that adds an object to a bucket checks this in the
    /// transaction that adds it, so it cannot race with the bucket's deletion.
    pub(crate) fn check_bucket_live_in(&self, tx: &mut Tx<'_>, id: &Uuid) -> Result<()> {
        let bucket = self
            .inner
            .buckets
            .get_in(tx, &global_partition("buckets"), id.as_bytes())?;
        if bucket.is_some_and(|b| !*b.deleted.get()) {
            Ok(())
        } else {
            Err(Error::NoSuchBucket { name: id.to_hex() })
        }
    }

    /// Deletes an empty bucket and frees its names.
    pub async fn delete_bucket(&self, id: &Uuid) -> Result<()> {
        let mut bucket = self
            .get_bucket(id)?
            .ok_or(Error::NoSuchBucket { name: id.to_hex() })?;
        if !self.is_bucket_empty(id)? {
            return Err(Error::BucketNotEmpty);
        }
        let ts = self.inner.clock.now();
        bucket.deleted.set(ts, true);
        let aliases: Vec<BucketAlias> = self
            .inner
            .aliases
            .range(&global_partition("bucket_aliases"), b"", LISTED_MAX)?
            .into_iter()
            .filter(|a| *a.bucket.get() == Some(*id))
            .collect();
        let keys = self.list_keys()?;
        let this = self.clone();
        let id = *id;
        self.inner
            .db
            .transaction(move |tx| {
                // Checked again where it counts: an object committed since the
                // check above keeps the bucket (and that object's writer checks
                // the bucket in its own transaction).
                if !this.is_bucket_empty_in(tx, &id)? {
                    return Err(Error::BucketNotEmpty);
                }
                this.inner.buckets.insert_in(tx, &bucket)?;
                for mut a in aliases {
                    a.bucket.set(ts, None);
                    this.inner.aliases.insert_in(tx, &a)?;
                }
                for mut k in keys {
                    let names: Vec<String> = k
                        .local_aliases
                        .iter()
                        .filter(|(_, b)| **b == Some(id))
                        .map(|(n, _)| n.clone())
                        .collect();
                    if names.is_empty() && k.permissions.get(&id).is_none() {
                        continue;
                    }
                    for n in names {
                        k.local_aliases.set(ts, n, None);
                    }
                    k.permissions.set(ts, id, Permission::default());
                    this.inner.keys.insert_in(tx, &k)?;
                }
                Ok::<_, Error>(())
            })
            .await
    }

    /// Sets `key`'s permission on `bucket` (fields set to true are granted,
    /// the others left as they are when `grant`; revoked when `!grant`).
    pub async fn set_permission(
        &self,
        key_id: &str,
        bucket: &Uuid,
        change: Permission,
        grant: bool,
    ) -> Result<AccessKey> {
        self.get_bucket(bucket)?.ok_or(Error::NoSuchBucket {
            name: bucket.to_hex(),
        })?;
        let mut key = self.get_key(key_id)?;
        let mut p = key.permission(bucket);
        if grant {
            p.read |= change.read;
            p.write |= change.write;
            p.owner |= change.owner;
        } else {
            p.read &= !change.read;
            p.write &= !change.write;
            p.owner &= !change.owner;
        }
        key.permissions.set(self.inner.clock.now(), *bucket, p);
        self.inner.keys.insert(key.clone()).await?;
        Ok(key)
    }

    /// Points global name `name` at `bucket`.
    pub async fn add_global_alias(&self, bucket: &Uuid, name: &str) -> Result<()> {
        if !is_valid_bucket_name(name) {
            return Err(Error::InvalidBucketName {
                name: name.to_string(),
            });
        }
        self.get_bucket(bucket)?.ok_or(Error::NoSuchBucket {
            name: bucket.to_hex(),
        })?;
        if let Ok(other) = self.resolve_bucket(name, None) {
            let owned_by_you = other == *bucket;
            return Err(Error::BucketAlreadyExists { owned_by_you });
        }
        let alias = BucketAlias {
            name: name.to_string(),
            bucket: Lww::new(self.inner.clock.now(), Some(*bucket)),
        };
        self.inner.aliases.insert(alias).await?;
        Ok(())
    }

    /// Frees global name `name` (a bucket keeps at least one name).
    pub async fn remove_global_alias(&self, bucket: &Uuid, name: &str) -> Result<()> {
        let info = self
            .list_buckets()?
            .into_iter()
            .find(|b| b.bucket.id == *bucket)
            .ok_or(Error::NoSuchBucket {
                name: bucket.to_hex(),
            })?;
        if !info.aliases.iter().any(|a| a == name) {
            return Err(Error::InvalidArgument(format!(
                "{name} is not a name of this bucket"
            )));
        }
        let has_local = self
            .list_keys()?
            .iter()
            .any(|k| k.local_aliases.iter().any(|(_, b)| *b == Some(*bucket)));
        if info.aliases.len() == 1 && !has_local {
            return Err(Error::InvalidArgument(
                "a bucket must keep at least one name".into(),
            ));
        }
        let alias = BucketAlias {
            name: name.to_string(),
            bucket: Lww::new(self.inner.clock.now(), None),
        };
        self.inner.aliases.insert(alias).await?;
        Ok(())
    }

    /// Points `key`'s private name `name` at `bucket` (`None`: removes it).
    pub async fn set_local_alias(
        &self,
        key_id: &str,
        name: &str,
        bucket: Option<Uuid>,
    ) -> Result<()> {
        if !is_valid_bucket_name(name) {
            return Err(Error::InvalidBucketName {
                name: name.to_string(),
            });
        }
        let mut key = self.get_key(key_id)?;
        if let Some(b) = &bucket {
            self.get_bucket(b)?
                .ok_or(Error::NoSuchBucket { name: b.to_hex() })?;
        }
        key.local_aliases
            .set(self.inner.clock.now(), name.to_string(), bucket);
        self.inner.keys.insert(key).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_bucket_name;

    #[test]
    fn bucket_names_follow_aws_rules() {
        for ok in ["abc", "my-bucket.2", "a1b"] {
            assert!(is_valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "-ab",
            "ab-",
            "a..b",
            "192.168.1.1",
            "a_b",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
    }
}
