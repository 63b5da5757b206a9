//! ListObjects (v1 and v2): ordered range reads with prefix and delimiter.

use hangar_util::Uuid;

use super::ObjectService;
use crate::schema::object::{bucket_partition, ObjectMeta};
use crate::Result;

/// Most entries read from the table per batch.
const BATCH: usize = 1000;
/// Fewest entries read per batch, so that runs of hidden entries (delete
/// markers) or of keys under one common prefix are crossed in few reads.
const BATCH_MIN: usize = 32;
/// Most keys returned by one listing, as in S3.
pub const MAX_KEYS_MAX: usize = 1000;

/// A listing request.
#[derive(Clone, Debug, Default)]
pub struct ListParams {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys sharing a prefix up to this delimiter (`None` or empty: no grouping).
    pub delimiter: Option<String>,
    /// Only keys (and common prefixes) after this one.
    pub start_after: Option<String>,
    /// Most entries (keys plus common prefixes) returned.
    pub max_keys: usize,
}

/// One listed object.
#[derive(Clone, Debug)]
pub struct ListedObject {
    /// Key.
    pub key: String,
    /// Last-modified timestamp (msec).
    pub timestamp: u64,
    /// Metadata.
    pub meta: ObjectMeta,
}

/// A listing.
#[derive(Clone, Debug, Default)]
pub struct ListResult {
    /// Objects in key order.
    pub objects: Vec<ListedObject>,
    /// Common prefixes in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// The last key or common prefix returned, to continue from.
    pub last: Option<String>,
}

/// The smallest byte string greater than every string starting with `prefix`.
pub(crate) fn after_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut v = prefix.to_vec();
    while let Some(last) = v.last_mut() {
        if *last == 0xff {
            v.pop();
        } else {
            *last += 1;
            return Some(v);
        }
    }
    None
}

impl ObjectService {
    /// Lists the visible objects of a bucket.
    pub async fn list_objects(&self, bucket_id: &Uuid, params: &ListParams) -> Result<ListResult> {
        let pk = bucket_partition(bucket_id);
        let max_keys = params.max_keys.min(MAX_KEYS_MAX);
        let delimiter = params.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut cursor = params.prefix.as_bytes().to_vec();
        if let Some(sa) = &params.start_after {
            if sa.as_bytes() >= cursor.as_slice() {
                cursor = sa.as_bytes().to_vec();
                cursor.push(0);
            }
        }
        let mut out = ListResult::default();
        if max_keys == 0 {
            // Nothing asked, nothing to continue from: not truncated.
            return Ok(out);
        }
        // No entry past the prefix is read.
        let end = after_prefix(params.prefix.as_bytes());
        let mut count = 0usize;
        'scan: loop {
            // One entry beyond what is still wanted tells whether the listing is
            // truncated; hidden entries and common prefixes may need more batches.
            let want = (max_keys - count).saturating_add(1).clamp(BATCH_MIN, BATCH);
            let batch = self
                .inner
                .objects
                .read_range_until(&pk, &cursor, end.as_deref(), want)
                .await?;
            let mut jump = None;
            for object in &batch {
                if !object.key.starts_with(&params.prefix) {
                    break 'scan;
                }
                let Some((version, data)) = object.visible() else {
                    continue;
                };
                let common = delimiter.and_then(|d| {
                    let rest = &object.key[params.prefix.len()..];
                    rest.find(d)
                        .map(|i| object.key[..params.prefix.len() + i + d.len()].to_string())
                });
                if count == max_keys {
                    out.is_truncated = true;
                    break 'scan;
                }
                let Some(cp) = common else {
                    out.last = Some(object.key.clone());
                    out.objects.push(ListedObject {
                        key: object.key.clone(),
                        timestamp: version.timestamp,
                        meta: data.meta().expect("visible versions have metadata").clone(),
                    });
                    count += 1;
                    continue;
                };
                // A continuation that stopped at this common prefix resumes after it.
                if params
                    .start_after
                    .as_deref()
                    .is_none_or(|sa| cp.as_str() > sa)
                {
                    out.last = Some(cp.clone());
                    out.common_prefixes.push(cp.clone());
                    count += 1;
                }
                // Skip every other key under this common prefix.
                match after_prefix(cp.as_bytes()) {
                    Some(c) => jump = Some(c),
                    None => break 'scan,
                }
                break;
            }
            cursor = match (jump, batch.last()) {
                (Some(j), _) => j,
                (None, Some(last)) if batch.len() == want => {
                    let mut c = last.key.as_bytes().to_vec();
                    c.push(0);
                    c
                }
                (None, _) => break,
            };
        }
        Ok(out)
    }
}
