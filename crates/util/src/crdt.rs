//! Conflict-free replicated data types.
//!
//! Laws every [`Crdt`] obeys (checked by property tests below):
//! - commutative: `a ⊔ b = b ⊔ a`
//! - associative: `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`
//! - idempotent: `a ⊔ a = a`

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A value that replicas can merge in any order and any number of times.
pub trait Crdt {
    /// Merges `other` into `self` (least upper bound).
    fn merge(&mut self, other: &Self);
}

/// `a` merged with `b`, as a new value.
pub fn merged<T: Crdt + Clone>(a: &T, b: &T) -> T {
    let mut x = a.clone();
    x.merge(b);
    x
}

/// Checks the laws every merge obeys on `a`, `b` and `c` (commutative,
/// associative, idempotent), so that replicas converge whatever the order in
/// which copies reach them. `Err` names the law broken and the two results
/// that differ. For the property tests of stored types.
pub fn check_merge_laws<T>(a: &T, b: &T, c: &T) -> Result<(), String>
where
    T: Crdt + Clone + PartialEq + std::fmt::Debug,
{
    let differ = |law: &str, x: T, y: T| {
        if x == y {
            Ok(())
        } else {
            Err(format!("not {law}: {x:?} != {y:?}"))
        }
    };
    differ("commutative", merged(a, b), merged(b, a))?;
    differ(
        "associative",
        merged(&merged(a, b), c),
        merged(a, &merged(b, c)),
    )?;
    differ("idempotent", merged(a, a), a.clone())
}

/// A boolean that, once true, stays true (tombstones, "deleted" flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag(pub bool);

impl Crdt for Flag {
    fn merge(&mut self, other: &Self) {
        self.0 |= other.0;
    }
}

/// A last-writer-wins register. Ties on the timestamp are broken by the greater
/// value, so the merge stays commutative.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lww<T> {
    timestamp: u64,
    value: T,
}

impl<T> Lww<T> {
    /// A register holding `value` written at `timestamp`.
    pub fn new(timestamp: u64, value: T) -> Self {
        Lww { timestamp, value }
    }
    /// The current value.
    pub fn get(&self) -> &T {
        &self.value
    }
    /// The timestamp of the current value.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }
    /// Replaces the value if `timestamp` is newer.
    pub fn set(&mut self, timestamp: u64, value: T) {
        if timestamp > self.timestamp {
            self.timestamp = timestamp;
            self.value = value;
        }
    }
}

impl<T: Clone + Ord> Crdt for Lww<T> {
    fn merge(&mut self, other: &Self) {
        if (other.timestamp, &other.value) > (self.timestamp, &self.value) {
            self.timestamp = other.timestamp;
            self.value = other.value.clone();
        }
    }
}

/// A map of last-writer-wins registers, merged key by key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwMap<K: Ord, V> {
    entries: BTreeMap<K, Lww<V>>,
}

impl<K: Ord, V> Default for LwwMap<K, V> {
    fn default() -> Self {
        LwwMap {
            entries: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone, V: Clone + Ord> LwwMap<K, V> {
    /// Sets `key` to `value` at `timestamp` (ignored if an entry is newer).
    pub fn set(&mut self, timestamp: u64, key: K, value: V) {
        let mut single = LwwMap::default();
        single.entries.insert(key, Lww::new(timestamp, value));
        self.merge(&single);
    }
    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(Lww::get)
    }
    /// The timestamp of `key`'s current value.
    pub fn timestamp_of(&self, key: &K) -> Option<u64> {
        self.entries.get(key).map(Lww::timestamp)
    }
    /// All entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v.get()))
    }
}

impl<K: Ord + Clone, V: Clone + Ord> Crdt for LwwMap<K, V> {
    fn merge(&mut self, other: &Self) {
        for (k, v) in &other.entries {
            match self.entries.get_mut(k) {
                Some(mine) => mine.merge(v),
                None => {
                    self.entries.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lww() -> impl Strategy<Value = Lww<u8>> {
        (0u64..5, any::<u8>()).prop_map(|(t, v)| Lww::new(t, v))
    }
    fn lww_map() -> impl Strategy<Value = LwwMap<u8, u8>> {
        proptest::collection::vec((0u64..4, 0u8..4, any::<u8>()), 0..6).prop_map(|ops| {
            let mut m = LwwMap::default();
            for (t, k, v) in ops {
                m.set(t, k, v);
            }
            m
        })
    }
    macro_rules! laws {
        ($name:ident, $strategy:expr) => {
            proptest! {
                #[test]
                fn $name(a in $strategy, b in $strategy, c in $strategy) {
                    prop_assert_eq!(merged(&a, &b), merged(&b, &a));
                    prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
                    prop_assert_eq!(merged(&a, &a), a.clone());
                }
            }
        };
    }
    laws!(lww_merge_is_commutative_associative_idempotent, lww());
    laws!(
        lww_map_merge_is_commutative_associative_idempotent,
        lww_map()
    );
    laws!(
        flag_merge_is_commutative_associative_idempotent,
        any::<bool>().prop_map(Flag)
    );
}
