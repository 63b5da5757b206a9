//! The model's tables: one module per schema.

pub mod access_key;
pub mod block_ref;
pub mod block_row;
pub mod bucket;
pub mod object;
pub mod part;

#[cfg(test)]
mod format_fixtures;

use hangar_util::Hash;

/// Partition key of the small tables that list everything of their kind
/// (buckets, aliases, keys): all their entries share one partition key, so a
/// listing is one ordered range read.
pub(crate) fn global_partition(table: &str) -> Hash {
    Hash::of(table.as_bytes())
}
