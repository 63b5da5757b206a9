//! Access keys and their permissions.

use hangar_db::Tree;
use hangar_table::{Entry, TableSchema};
use hangar_util::crdt::{Crdt, Lww, LwwMap};
use hangar_util::encoding::Versioned;
use hangar_util::{Hash, Uuid};
use serde::{Deserialize, Serialize};

use super::global_partition;

/// What a key may do in one bucket.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Permission {
    /// May read objects and list.
    pub read: bool,
    /// May write and delete objects.
    pub write: bool,
    /// May delete the bucket and change its settings.
    pub owner: bool,
}

impl Permission {
    /// Every permission.
    pub const ALL: Permission = Permission {
        read: true,
        write: true,
        owner: true,
    };
    /// Whether any permission is granted.
    pub fn is_any(&self) -> bool {
        self.read || self.write || self.owner
    }
}

/// An S3 access key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessKey {
    /// Access key id (public).
    pub id: String,
    /// Secret key.
    pub secret: String,
    /// Human name.
    pub name: Lww<String>,
    /// Whether the key was deleted.
    pub deleted: Lww<bool>,
    /// Whether the key may create buckets.
    pub allow_create_bucket: Lww<bool>,
    /// Per-bucket permissions.
    pub permissions: LwwMap<Uuid, Permission>,
    /// Bucket names private to this key.
    pub local_aliases: LwwMap<String, Option<Uuid>>,
}

impl AccessKey {
    /// Permission of this key on `bucket`.
    pub fn permission(&self, bucket: &Uuid) -> Permission {
        if *self.deleted.get() {
            return Permission::default();
        }
        self.permissions.get(bucket).copied().unwrap_or_default()
    }
}

impl Crdt for AccessKey {
    fn merge(&mut self, other: &Self) {
        self.name.merge(&other.name);
        self.deleted.merge(&other.deleted);
        self.allow_create_bucket.merge(&other.allow_create_bucket);
        self.permissions.merge(&other.permissions);
        self.local_aliases.merge(&other.local_aliases);
    }
}

impl Versioned for AccessKey {
    const TYPE_NAME: &'static str = "AccessKey";
    const FORMAT_VERSION: u8 = 1;
}

impl Entry for AccessKey {
    fn partition_key(&self) -> Hash {
        global_partition("access_keys")
    }
    fn sort_key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
}

/// Schema of the key table.
#[derive(Debug, Default)]
pub struct AccessKeyTable;

impl TableSchema for AccessKeyTable {
    const TREE: Tree = Tree("access_keys");
    type Entry = AccessKey;
}
