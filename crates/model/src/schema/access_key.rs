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
        // One id has one secret: `import_key` refuses an id that exists,
        // deleted or not, with another secret. Two imports of a new id with
        // different secrets through two nodes at once can still meet here;
        // every replica then keeps the same one, the greater.
        if other.secret > self.secret {
            self.secret.clone_from(&other.secret);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use hangar_util::crdt::{check_merge_laws, merged};
    use proptest::prelude::*;

    /// Permissions on one of a few buckets, granted and revoked at timestamps
    /// from a small range, so that grants of different permissions often tie.
    fn permissions() -> impl Strategy<Value = LwwMap<Uuid, Permission>> {
        proptest::collection::vec((0u64..3, 0u8..3, any::<(bool, bool, bool)>()), 0..5).prop_map(
            |ops| {
                let mut m = LwwMap::default();
                for (ts, bucket, (read, write, owner)) in ops {
                    m.set(ts, Uuid([bucket; 16]), Permission { read, write, owner });
                }
                m
            },
        )
    }

    /// A few local names, each pointing at one of a few buckets or freed.
    fn local_aliases() -> impl Strategy<Value = LwwMap<String, Option<Uuid>>> {
        proptest::collection::vec((0u64..3, 0u8..2, proptest::option::of(0u8..3)), 0..5).prop_map(
            |ops| {
                let mut m = LwwMap::default();
                for (ts, name, bucket) in ops {
                    m.set(ts, format!("name{name}"), bucket.map(|b| Uuid([b; 16])));
                }
                m
            },
        )
    }

    /// Copies of one key as replicas hold them after concurrent changes:
    /// renamed, deleted or undeleted, allowed or not to create buckets, its
    /// permissions and local names changed, all at timestamps from a small
    /// range, so that different values often tie; the secret one of two, as
    /// when one id is imported through two nodes at once.
    fn key() -> impl Strategy<Value = AccessKey> {
        (
            prop_oneof![
                Just("secret-one".to_string()),
                Just("secret-two".to_string())
            ],
            (0u64..3, 0u8..2),
            (0u64..3, any::<bool>()),
            (0u64..3, any::<bool>()),
            permissions(),
            local_aliases(),
        )
            .prop_map(
                |(secret, (tn, name), (td, deleted), (tc, create), permissions, local_aliases)| {
                    AccessKey {
                        id: "HKtest".into(),
                        secret,
                        name: Lww::new(tn, format!("key{name}")),
                        deleted: Lww::new(td, deleted),
                        allow_create_bucket: Lww::new(tc, create),
                        permissions,
                        local_aliases,
                    }
                },
            )
    }

    /// Found by the merge laws: two copies of a key with different secrets
    /// (one id imported twice) kept, on each replica, the secret it held
    /// first, so replicas never converged.
    #[test]
    fn copies_with_different_secrets_converge() {
        let old = AccessKey {
            id: "HKtest".into(),
            secret: "secret-one".into(),
            name: Lww::new(1, "key".into()),
            deleted: Lww::new(2, true),
            allow_create_bucket: Lww::new(1, false),
            permissions: LwwMap::default(),
            local_aliases: LwwMap::default(),
        };
        let reimported = AccessKey {
            secret: "secret-two".into(),
            name: Lww::new(3, "key".into()),
            deleted: Lww::new(3, false),
            allow_create_bucket: Lww::new(3, false),
            ..old.clone()
        };
        assert_eq!(merged(&old, &reimported), merged(&reimported, &old));
    }

    proptest! {
        #[test]
        fn access_key_merge_is_commutative_associative_idempotent(a in key(), b in key(), c in key()) {
            check_merge_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
        }
    }
}
