//! Reference counts of blocks, kept in the metadata engine.
//!
//! `block_rc`: hash -> count (u64 LE). `block_gc`: (deadline_msec BE, hash) -> ()
//! lists blocks whose count reached zero, to be deleted after the deadline.

use hangar_db::{Tree, Tx};
use hangar_util::Hash;

pub(crate) const RC: Tree = Tree("block_rc");
pub(crate) const GC_QUEUE: Tree = Tree("block_gc");

pub(crate) fn count(tx: &mut Tx<'_>, hash: &Hash) -> hangar_db::Result<u64> {
    Ok(tx
        .get(RC, hash.as_bytes())?
        .and_then(|v| v.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0))
}

pub(crate) fn set(tx: &mut Tx<'_>, hash: &Hash, n: u64) -> hangar_db::Result<()> {
    if n == 0 {
        tx.remove(RC, hash.as_bytes())
    } else {
        tx.insert(RC, hash.as_bytes(), &n.to_le_bytes())
    }
}

pub(crate) fn gc_key(deadline_msec: u64, hash: &Hash) -> Vec<u8> {
    let mut k = deadline_msec.to_be_bytes().to_vec();
    k.extend_from_slice(hash.as_bytes());
    k
}

pub(crate) fn parse_gc_key(k: &[u8]) -> Option<Hash> {
    Some(Hash(k.get(8..40)?.try_into().ok()?))
}
