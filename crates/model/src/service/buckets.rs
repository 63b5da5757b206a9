//! Bucket management: creation, names, permissions, deletion.

use hangar_table::WriteBatch;
use hangar_util::crdt::Lww;
use hangar_util::Uuid;

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
        // Creations of one name through this node are checked and written
        // one at a time.
        let _name = self.inner.locks.name(b"", name.as_bytes()).await;
        if let Ok(existing) = self.resolve_bucket_quorum(name, owner).await {
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
        let mut batch = WriteBatch::new(&self.inner.replicator);
        batch.add(&self.inner.buckets, &bucket)?;
        batch.add(&self.inner.aliases, &alias)?;
        if let Some(owner) = owner {
            let mut key = self.get_key(&owner.id).await?;
            key.permissions.set(ts, id, Permission::ALL);
            batch.add(&self.inner.keys, &key)?;
        }
        batch.commit().await?;
        Ok(id)
    }

    /// Like [`ObjectService::resolve_bucket`], but global names are read from
    /// a quorum: for checks before a name is taken.
    async fn resolve_bucket_quorum(&self, name: &str, key: Option<&AccessKey>) -> Result<Uuid> {
        if let Some(Some(id)) = key.and_then(|k| k.local_aliases.get(&name.to_string()).copied()) {
            return Ok(id);
        }
        let pk = global_partition("bucket_aliases");
        let alias = self.inner.aliases.read(&pk, name.as_bytes()).await?;
        match alias.and_then(|a| *a.bucket.get()) {
            Some(id) => Ok(id),
            None => Err(Error::NoSuchBucket {
                name: name.to_string(),
            }),
        }
    }

    /// The bucket named `name` for `key` (its local names first, then global
    /// names). Names and buckets are read from this node's copy when it has
    /// them; a name or bucket it lacks is read again from a quorum before the
    /// bucket is called missing, so a bucket created through another node (or
    /// a moment ago through this one) is found at once.
    pub async fn resolve_bucket(&self, name: &str, key: Option<&AccessKey>) -> Result<Uuid> {
        match self.resolve_bucket_near(name, key).await? {
            Some(id) => Ok(id),
            None => {
                let id = self.resolve_bucket_quorum(name, key).await?;
                match self.read_bucket(&id).await? {
                    Some(_) => Ok(id),
                    None => Err(Error::NoSuchBucket {
                        name: name.to_string(),
                    }),
                }
            }
        }
    }

    /// The bucket named `name` as this node's copies of the tables have it.
    async fn resolve_bucket_near(
        &self,
        name: &str,
        key: Option<&AccessKey>,
    ) -> Result<Option<Uuid>> {
        let local = key.and_then(|k| k.local_aliases.get(&name.to_string()).copied());
        let id = match local {
            Some(Some(id)) => id,
            _ => {
                let pk = global_partition("bucket_aliases");
                let alias = self.inner.aliases.read_near(&pk, name.as_bytes()).await?;
                match alias.and_then(|a| *a.bucket.get()) {
                    Some(id) => id,
                    None => return Ok(None),
                }
            }
        };
        let pk = global_partition("buckets");
        let bucket = self.inner.buckets.read_near(&pk, id.as_bytes()).await?;
        Ok(bucket.filter(|b| !*b.deleted.get()).map(|_| id))
    }

    /// The bucket `id`, unless missing or deleted.
    pub async fn get_bucket(&self, id: &Uuid) -> Result<Option<Bucket>> {
        let pk = global_partition("buckets");
        match self.inner.buckets.read_near(&pk, id.as_bytes()).await? {
            Some(b) if !*b.deleted.get() => Ok(Some(b)),
            _ => self.read_bucket(id).await,
        }
    }

    /// The bucket `id` as a read quorum has it, unless missing or deleted.
    async fn read_bucket(&self, id: &Uuid) -> Result<Option<Bucket>> {
        let pk = global_partition("buckets");
        let b = self.inner.buckets.read(&pk, id.as_bytes()).await?;
        Ok(b.filter(|b| !*b.deleted.get()))
    }

    /// Every live bucket with its global names.
    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        let buckets = self
            .inner
            .buckets
            .read_range(&global_partition("buckets"), b"", LISTED_MAX)
            .await?;
        let aliases = self.global_aliases().await?;
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

    /// Every global name.
    async fn global_aliases(&self) -> Result<Vec<BucketAlias>> {
        Ok(self
            .inner
            .aliases
            .read_range(&global_partition("bucket_aliases"), b"", LISTED_MAX)
            .await?)
    }

    /// Whether the bucket holds no object and no upload (read from a quorum).
    pub async fn is_bucket_empty(&self, id: &Uuid) -> Result<bool> {
        let mut found = false;
        self.scan_bucket(id, |o| {
            found |= o.visible().is_some()
                || o.versions
                    .iter()
                    .any(|v| matches!(v.state, VersionState::Uploading { .. }));
            !found
        })
        .await?;
        Ok(!found)
    }

    /// Whether the bucket holds an object, or a single-request upload still in
    /// flight (read from a quorum). Multipart uploads do not count: deleting the
    /// bucket aborts them.
    async fn holds_objects(&self, id: &Uuid) -> Result<bool> {
        let mut found = false;
        self.scan_bucket(id, |o| {
            found |= o.visible().is_some()
                || o.versions.iter().any(|v| {
                    matches!(
                        v.state,
                        VersionState::Uploading {
                            multipart: false,
                            ..
                        }
                    )
                });
            !found
        })
        .await?;
        Ok(found)
    }

    /// Calls `visit` on each object row of the bucket, in key order, a batch
    /// at a time, until it returns false.
    async fn scan_bucket(&self, id: &Uuid, mut visit: impl FnMut(&Object) -> bool) -> Result<()> {
        let mut cursor = Some(Vec::new());
        while let Some(batch) = self.next_bucket_rows(id, &mut cursor).await? {
            if !batch.iter().all(&mut visit) {
                break;
            }
        }
        Ok(())
    }

    /// The next batch of the bucket's object rows from `cursor` (read from a
    /// quorum), moving it past them; `None` once the bucket is read to its end.
    async fn next_bucket_rows(
        &self,
        id: &Uuid,
        cursor: &mut Option<Vec<u8>>,
    ) -> Result<Option<Vec<Object>>> {
        let Some(start) = cursor.take() else {
            return Ok(None);
        };
        let batch = self
            .inner
            .objects
            .read_range(&bucket_partition(id), &start, EMPTINESS_BATCH)
            .await?;
        if let Some(last) = batch.last().filter(|_| batch.len() == EMPTINESS_BATCH) {
            let mut next = last.key.as_bytes().to_vec();
            next.push(0);
            *cursor = Some(next);
        }
        Ok(Some(batch))
    }

    /// Aborts every multipart upload in progress in the bucket, a batch of
    /// rows at a time; their parts are released like those of any abort.
    async fn abort_bucket_uploads(&self, id: &Uuid) -> Result<()> {
        let mut cursor = Some(Vec::new());
        while let Some(batch) = self.next_bucket_rows(id, &mut cursor).await? {
            for o in &batch {
                for v in &o.versions {
                    if matches!(
                        v.state,
                        VersionState::Uploading {
                            multipart: true,
                            ..
                        }
                    ) {
                        match self.abort_multipart_upload(*id, &o.key, v.uuid).await {
                            // Completed or aborted meanwhile through another node.
                            Ok(()) | Err(Error::NoSuchUpload) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Fails with `NoSuchBucket` unless `id` is a live bucket. Writes that add
    /// to a bucket check this while holding the bucket's write lock, which its
    /// deletion through this node takes exclusively.
    pub(crate) async fn check_bucket_live(&self, id: &Uuid) -> Result<()> {
        match self.get_bucket(id).await? {
            Some(_) => Ok(()),
            None => Err(Error::NoSuchBucket { name: id.to_hex() }),
        }
    }

    /// Deletes a bucket that holds no object, and frees its names. Multipart
    /// uploads still in progress are aborted with it, as S3 does; an object,
    /// or a single-request upload in flight, keeps it (`BucketNotEmpty`).
    pub async fn delete_bucket(&self, id: &Uuid) -> Result<()> {
        // Writes into the bucket through this node wait, so that none lands
        // between the emptiness check and the deletion.
        let _deleting = self.inner.locks.bucket_delete(&bucket_partition(id)).await;
        let mut bucket = self
            .get_bucket(id)
            .await?
            .ok_or(Error::NoSuchBucket { name: id.to_hex() })?;
        if self.holds_objects(id).await? {
            return Err(Error::BucketNotEmpty);
        }
        self.abort_bucket_uploads(id).await?;
        let ts = self.inner.clock.now();
        bucket.deleted.set(ts, true);
        let mut batch = WriteBatch::new(&self.inner.replicator);
        batch.add(&self.inner.buckets, &bucket)?;
        for mut a in self.global_aliases().await? {
            if *a.bucket.get() == Some(*id) {
                a.bucket.set(ts, None);
                batch.add(&self.inner.aliases, &a)?;
            }
        }
        for mut k in self.list_keys().await? {
            let names: Vec<String> = k
                .local_aliases
                .iter()
                .filter(|(_, b)| **b == Some(*id))
                .map(|(n, _)| n.clone())
                .collect();
            if names.is_empty() && k.permissions.get(id).is_none() {
                continue;
            }
            for n in names {
                k.local_aliases.set(ts, n, None);
            }
            k.permissions.set(ts, *id, Permission::default());
            batch.add(&self.inner.keys, &k)?;
        }
        batch.commit().await?;
        Ok(())
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
        self.get_bucket(bucket).await?.ok_or(Error::NoSuchBucket {
            name: bucket.to_hex(),
        })?;
        let mut key = self.get_key(key_id).await?;
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
        self.get_bucket(bucket).await?.ok_or(Error::NoSuchBucket {
            name: bucket.to_hex(),
        })?;
        let _name = self.inner.locks.name(b"", name.as_bytes()).await;
        if let Ok(other) = self.resolve_bucket_quorum(name, None).await {
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
            .list_buckets()
            .await?
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
            .list_keys()
            .await?
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
        let mut key = self.get_key(key_id).await?;
        if let Some(b) = &bucket {
            self.get_bucket(b)
                .await?
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
