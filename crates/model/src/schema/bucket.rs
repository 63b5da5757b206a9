//! Buckets and their global names (aliases).

use hangar_db::Tree;
use hangar_table::{Entry, TableSchema};
use hangar_util::crdt::{Crdt, Lww};
use hangar_util::encoding::Versioned;
use hangar_util::{Hash, Uuid};
use serde::{Deserialize, Serialize};

use super::global_partition;

/// A bucket. Its name lives in [`BucketAlias`] entries, so a bucket can be renamed
/// or reached under several names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Bucket id.
    pub id: Uuid,
    /// Creation time (msec since the epoch).
    pub created_msec: u64,
    /// Whether the bucket was deleted.
    pub deleted: Lww<bool>,
}

impl Crdt for Bucket {
    fn merge(&mut self, other: &Self) {
        self.created_msec = self.created_msec.min(other.created_msec);
        self.deleted.merge(&other.deleted);
    }
}

impl Versioned for Bucket {
    const TYPE_NAME: &'static str = "Bucket";
    const FORMAT_VERSION: u8 = 1;
}

impl Entry for Bucket {
    fn partition_key(&self) -> Hash {
        global_partition("buckets")
    }
    fn sort_key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
}

/// Schema of the bucket table.
#[derive(Debug, Default)]
pub struct BucketTable;

impl TableSchema for BucketTable {
    const TREE: Tree = Tree("buckets");
    type Entry = Bucket;
}

/// A global bucket name and the bucket it points to (`None`: name free).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketAlias {
    /// The name.
    pub name: String,
    /// The bucket it names.
    pub bucket: Lww<Option<Uuid>>,
}

impl Crdt for BucketAlias {
    fn merge(&mut self, other: &Self) {
        self.bucket.merge(&other.bucket);
    }
}

impl Versioned for BucketAlias {
    const TYPE_NAME: &'static str = "BucketAlias";
    const FORMAT_VERSION: u8 = 1;
}

impl Entry for BucketAlias {
    fn partition_key(&self) -> Hash {
        global_partition("bucket_aliases")
    }
    fn sort_key(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }
}

/// Schema of the global alias table.
#[derive(Debug, Default)]
pub struct BucketAliasTable;

impl TableSchema for BucketAliasTable {
    const TREE: Tree = Tree("bucket_aliases");
    type Entry = BucketAlias;
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangar_util::crdt::check_merge_laws;
    use proptest::prelude::*;

    /// Copies of one bucket as replicas hold them: creation times that differ
    /// (a bucket id is created once, but the merge must not care), and
    /// deletions and undeletions at timestamps from a small range, so that
    /// they often tie with different values.
    fn bucket() -> impl Strategy<Value = Bucket> {
        (0u64..3, 0u64..3, any::<bool>()).prop_map(|(created_msec, ts, deleted)| Bucket {
            id: Uuid([1; 16]),
            created_msec,
            deleted: Lww::new(ts, deleted),
        })
    }

    /// Copies of one global name: pointing at one of a few buckets or freed,
    /// at timestamps from a small range, so that they often tie.
    fn alias() -> impl Strategy<Value = BucketAlias> {
        (0u64..3, proptest::option::of(0u8..3)).prop_map(|(ts, bucket)| BucketAlias {
            name: "photos".into(),
            bucket: Lww::new(ts, bucket.map(|b| Uuid([b; 16]))),
        })
    }

    proptest! {
        #[test]
        fn bucket_merge_is_commutative_associative_idempotent(a in bucket(), b in bucket(), c in bucket()) {
            check_merge_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn bucket_alias_merge_is_commutative_associative_idempotent(a in alias(), b in alias(), c in alias()) {
            check_merge_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
        }
    }
}
