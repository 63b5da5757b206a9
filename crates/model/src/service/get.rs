//! GetObject / HeadObject: find the current version, stream its bytes.

use std::ops::Range;

use bytes::Bytes;
use futures::StreamExt;
use hangar_util::{Hash, Uuid};
use tokio::sync::mpsc;
use tracing::warn;

use super::{BodyStream, ObjectService};
use crate::schema::block_row::{data_partition, BlockRow};
use crate::schema::object::{bucket_partition, ObjectData, ObjectVersion, PartRef};
use crate::{Error, Result};

/// A byte range of an object, end exclusive.
pub type GetRange = Range<u64>;

/// Blocks read ahead of the one being sent.
const READ_AHEAD_BLOCKS: usize = 2;
/// Block rows fetched per metadata read.
const ROWS_PER_BATCH: usize = 64;

impl ObjectService {
    /// The current version of `key` and its data (`NoSuchKey` if none or deleted).
    pub async fn get_object(
        &self,
        bucket_id: &Uuid,
        key: &str,
    ) -> Result<(ObjectVersion, ObjectData)> {
        let object = self
            .inner
            .objects
            .read(&bucket_partition(bucket_id), key.as_bytes())
            .await?
            .ok_or(Error::NoSuchKey)?;
        let (v, d) = object.visible().ok_or(Error::NoSuchKey)?;
        Ok((v.clone(), d.clone()))
    }

    /// The byte range of part `part_number` in `data`, and the number of parts.
    pub fn part_range(data: &ObjectData, part_number: u32) -> Option<(GetRange, usize)> {
        match data {
            ObjectData::DeleteMarker => None,
            ObjectData::Inline { bytes, .. } => {
                (part_number == 1).then_some((0..bytes.len() as u64, 1))
            }
            ObjectData::Parts { parts, .. } => {
                let mut start = 0;
                for p in parts {
                    if p.part_number == part_number {
                        return Some((start..start + p.size, parts.len()));
                    }
                    start += p.size;
                }
                None
            }
        }
    }

    /// Streams bytes `range` of `data`. Every block is checked against its hash;
    /// a block that fails ends the stream with an error.
    pub fn read_data(&self, data: &ObjectData, range: GetRange) -> BodyStream {
        match data {
            ObjectData::DeleteMarker => Box::pin(futures::stream::empty()),
            ObjectData::Inline { bytes, .. } => {
                let len = bytes.len() as u64;
                let (s, e) = (range.start.min(len), range.end.min(len));
                let chunk = Bytes::copy_from_slice(&bytes[s as usize..e as usize]);
                Box::pin(futures::stream::once(async move { Ok(chunk) }))
            }
            ObjectData::Parts { parts, .. } => {
                let (tx, mut rx) = mpsc::channel(READ_AHEAD_BLOCKS);
                let this = self.clone();
                let parts = parts.clone();
                tokio::spawn(async move {
                    if let Err(e) = this.send_parts(&parts, range, &tx).await {
                        warn!(error = %e, "object read failed");
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    }
                });
                Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
            }
        }
    }

    /// The first batch of block rows to read for the bytes of a part from
    /// `rel_start` on: from the block that holds that byte, found without
    /// reading the rows before it. The blocks of one part all have the size
    /// the writer used but the last, so the block holding `rel_start` is
    /// guessed from the configured block size; if the part was written with
    /// another size and the guess misses (the first row found starts after
    /// `rel_start`), the rows are read from the part's start.
    pub(super) async fn first_block_rows(
        &self,
        pk: &Hash,
        rel_start: u64,
    ) -> Result<Vec<BlockRow>> {
        let block_size = self.inner.config.block_size as u64;
        let guess = rel_start / block_size * block_size;
        if guess > 0 {
            let rows = self
                .inner
                .block_rows
                .read_range(pk, &guess.to_be_bytes(), ROWS_PER_BATCH)
                .await?;
            if rows.first().is_some_and(|r| r.offset <= rel_start) {
                return Ok(rows);
            }
        }
        Ok(self
            .inner
            .block_rows
            .read_range(pk, &0u64.to_be_bytes(), ROWS_PER_BATCH)
            .await?)
    }

    async fn send_parts(
        &self,
        parts: &[PartRef],
        range: GetRange,
        tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    ) -> Result<()> {
        let mut part_start = 0u64;
        for part in parts {
            let part_end = part_start + part.size;
            if part_end > range.start && part_start < range.end {
                self.send_part(part, part_start, &range, tx).await?;
            }
            part_start = part_end;
            if part_start >= range.end {
                break;
            }
        }
        Ok(())
    }

    async fn send_part(
        &self,
        part: &PartRef,
        part_start: u64,
        range: &GetRange,
        tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    ) -> Result<()> {
        let pk = data_partition(&part.data_id);
        // The range within the part.
        let rel_start = range.start.saturating_sub(part_start);
        let rel_end = range.end.saturating_sub(part_start).min(part.size);
        let mut rows = self.first_block_rows(&pk, rel_start).await?;
        let mut sent = 0u64;
        while let Some(last) = rows.last() {
            let cursor = last.offset + 1;
            // A short batch is the end of the part; past the range, the rest
            // of it is not wanted.
            let more = rows.len() == ROWS_PER_BATCH && last.offset + u64::from(last.size) < rel_end;
            let wanted: Vec<_> = rows
                .into_iter()
                .filter_map(|row| {
                    let b_start = part_start + row.offset;
                    let b_end = b_start + u64::from(row.size);
                    if b_end <= range.start || b_start >= range.end {
                        return None;
                    }
                    let s = range.start.saturating_sub(b_start) as usize;
                    let e = (range.end.min(b_end) - b_start) as usize;
                    Some((row.hash, s..e))
                })
                .collect();
            let blocks = self.inner.data.clone();
            let mut reads = futures::stream::iter(wanted)
                .map(|(hash, slice)| {
                    let blocks = blocks.clone();
                    async move { blocks.get(hash).await.map(|b| b.slice(slice)) }
                })
                .buffered(READ_AHEAD_BLOCKS);
            while let Some(r) = reads.next().await {
                let bytes = r?;
                sent += bytes.len() as u64;
                if tx.send(Ok(bytes)).await.is_err() {
                    return Ok(()); // the client went away
                }
            }
            if !more {
                break;
            }
            rows = self
                .inner
                .block_rows
                .read_range(&pk, &cursor.to_be_bytes(), ROWS_PER_BATCH)
                .await?;
        }
        let expected = range.end.min(part_start + part.size) - range.start.max(part_start);
        if sent != expected {
            return Err(Error::DataIncomplete {
                data_id: part.data_id,
            });
        }
        Ok(())
    }
}
