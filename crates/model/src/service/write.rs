//! Streaming a request body into blocks: the shared half of PUT and UploadPart.
//!
//! The body is cut into blocks. For each block, its BLAKE3 hash is computed, its
//! row and block reference are committed, then the block is written to its
//! nodes; up to [`BLOCKS_IN_FLIGHT`] blocks are stored concurrently while the
//! next is read. MD5 (the ETag) and the optional checksum run on their own thread
//! so they overlap with hashing and disk writes.

use bytes::{Bytes, BytesMut};
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use hangar_table::WriteBatch;
use hangar_util::{Hash, Uuid};
use md5::Digest as _;
use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tracing::warn;

use super::{BodyStream, ObjectService};
use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumHasher};
use crate::release::IN_FLIGHT;
use crate::schema::block_row::{BlockRow, DataOwner};
use crate::{Error, Result};

/// Blocks being hashed and stored at once for one upload.
const BLOCKS_IN_FLIGHT: usize = 6;
/// Blocks waiting for the digest thread.
const DIGEST_QUEUE_LEN: usize = 4;

/// What a body turned into.
pub(crate) struct Written {
    pub(crate) size: u64,
    pub(crate) md5: [u8; 16],
    pub(crate) checksum: Option<Checksum>,
    /// The whole body, when it fit under the inline threshold.
    pub(crate) inline: Option<Vec<u8>>,
    /// For data stored in blocks: releases it if the request goes away before
    /// the data was committed. Disarm it once the commit's outcome is known.
    pub(crate) in_flight: Option<InFlightGuard>,
}

/// The data id blocks are stored under, and what it is written for.
struct DataTarget {
    data_id: Uuid,
    owner: DataOwner,
}

/// Releases an upload's data when the request is dropped before committing or
/// releasing it, as when a client disconnects mid-upload and the server drops the
/// request. The release waits for the block tasks already started, and happens
/// only if the data id is still recorded in flight: a commit that went through
/// (it removes the record in the same transaction) is never undone.
pub(crate) struct InFlightGuard {
    /// `None` once disarmed.
    service: Option<ObjectService>,
    data_id: Uuid,
    /// Closed once every block task of the upload has ended.
    writers: Option<mpsc::Receiver<()>>,
}

impl InFlightGuard {
    /// The outcome is handled by the caller: nothing to do on drop.
    pub(crate) fn disarm(mut self) {
        self.service = None;
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let Some(service) = self.service.take() else {
            return;
        };
        // Without a runtime (shutting down), the next start releases it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let data_id = self.data_id;
        let writers = self.writers.take();
        runtime.spawn(async move {
            if let Some(mut w) = writers {
                while w.recv().await.is_some() {}
            }
            if let Err(e) = service.release_if_in_flight(data_id).await {
                warn!(%data_id, error = %e, "cannot release the data of an abandoned upload");
            }
        });
    }
}

struct Digests {
    md5: md5::Md5,
    checksum: Option<ChecksumHasher>,
}

impl ObjectService {
    /// Reads `body` into blocks under `data_id`. With `inline_allowed`, a body no
    /// larger than the inline threshold is returned whole instead, and nothing is
    /// stored. On error, everything stored is released.
    pub(crate) async fn write_body(
        &self,
        data_id: Uuid,
        owner: DataOwner,
        mut body: BodyStream,
        checksum_algorithm: Option<ChecksumAlgorithm>,
        inline_allowed: bool,
    ) -> Result<Written> {
        let inline_max = self.inner.config.inline_threshold;
        let idle = self.inner.config.body_idle_timeout;

        // Read enough to know whether the body fits inline.
        let mut buf = BytesMut::new();
        let mut ended = false;
        while inline_allowed && !ended && buf.len() <= inline_max {
            match next_chunk(&mut body, idle).await? {
                Some(chunk) => {
                    buf.extend_from_slice(&chunk.map_err(|e| Error::Body(e.to_string()))?);
                }
                None => ended = true,
            }
        }
        if inline_allowed && ended {
            let data = buf.to_vec();
            let md5: [u8; 16] = md5::Md5::digest(&data).into();
            let checksum = checksum_algorithm.map(|a| {
                let mut h = ChecksumHasher::new(a);
                h.update(&data);
                h.finalize()
            });
            return Ok(Written {
                size: data.len() as u64,
                md5,
                checksum,
                inline: Some(data),
                in_flight: None,
            });
        }

        // Recorded before any block, so that a crash's leftovers are released at
        // the next start; removed in the transaction that commits the data.
        self.inner
            .db
            .transaction(move |tx| tx.insert(IN_FLIGHT, data_id.as_bytes(), b""))
            .await?;
        self.step(crate::CrashPoint::InFlightRecorded);
        let (writers_tx, writers_rx) = mpsc::channel::<()>(1);
        let guard = InFlightGuard {
            service: Some(self.clone()),
            data_id,
            writers: Some(writers_rx),
        };
        let result = self
            .stream_blocks(
                Arc::new(DataTarget { data_id, owner }),
                buf.freeze(),
                ended,
                body,
                checksum_algorithm,
                writers_tx,
            )
            .await;
        match result {
            Ok(mut written) => {
                written.in_flight = Some(guard);
                Ok(written)
            }
            Err(e) => {
                self.release_data(data_id).await?;
                guard.disarm();
                Err(e)
            }
        }
    }

    async fn stream_blocks(
        &self,
        target: Arc<DataTarget>,
        first: Bytes,
        mut ended: bool,
        mut body: BodyStream,
        checksum_algorithm: Option<ChecksumAlgorithm>,
        writers: mpsc::Sender<()>,
    ) -> Result<Written> {
        let block_size = self.inner.config.block_size;
        let idle = self.inner.config.body_idle_timeout;
        let (digest_tx, digest_rx) =
            mpsc::channel::<(Bytes, Arc<OwnedSemaphorePermit>)>(DIGEST_QUEUE_LEN);
        let digests =
            tokio::task::spawn_blocking(move || digest_thread(digest_rx, checksum_algorithm));
        let mut in_flight = FuturesOrdered::new();
        let mut offset = 0u64;
        let budget = self.inner.upload_buffers.clone();
        let mut leftover = (!first.is_empty()).then_some(first);
        let outcome: Result<()> = async {
            // Every block buffer holds a permit of the node-wide upload budget
            // until it is both stored and digested, so memory stays bounded
            // whatever the number of concurrent uploads. Waiting for a permit
            // cannot deadlock: the permits an upload already holds are released
            // by work (storing, digesting) that goes on without it.
            loop {
                // A permit is taken only once the block's first bytes are here,
                // so clients that stall between blocks hold no budget.
                if leftover.is_none() && !ended {
                    match next_chunk(&mut body, idle).await? {
                        Some(c) => leftover = Some(c.map_err(|e| Error::Body(e.to_string()))?),
                        None => ended = true,
                    }
                }
                if leftover.is_none() {
                    break;
                }
                let permit = Arc::new(
                    budget
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the budget is never closed"),
                );
                // Exactly one block-sized allocation per block: a chunk that
                // crosses the block boundary is split, its rest kept for the next.
                let mut buf = BytesMut::with_capacity(block_size);
                while buf.len() < block_size {
                    let chunk = match leftover.take() {
                        Some(c) => c,
                        None if ended => break,
                        None => match next_chunk(&mut body, idle).await? {
                            Some(c) => c.map_err(|e| Error::Body(e.to_string()))?,
                            None => {
                                ended = true;
                                break;
                            }
                        },
                    };
                    let room = block_size - buf.len();
                    if chunk.len() > room {
                        buf.extend_from_slice(&chunk[..room]);
                        leftover = Some(chunk.slice(room..));
                    } else {
                        buf.extend_from_slice(&chunk);
                    }
                }
                let take = buf.len();
                if take == 0 {
                    break;
                }
                let block = buf.freeze();
                // The digest thread is gone only if it panicked: reported below.
                let _ = digest_tx.send((block.clone(), permit.clone())).await;
                // A task of its own, so storing continues while the body is read.
                let this = self.clone();
                let writer = writers.clone();
                let target = target.clone();
                in_flight.push_back(tokio::spawn(async move {
                    let r = this.store_block(&target, offset, block).await;
                    drop(permit);
                    drop(writer);
                    r
                }));
                offset += take as u64;
                while in_flight.len() >= BLOCKS_IN_FLIGHT {
                    joined(in_flight.next().await.expect("queue is not empty"))?;
                }
            }
            while let Some(r) = in_flight.next().await {
                joined(r)?;
            }
            Ok(())
        }
        .await;
        // On error, wait for the blocks already started, so that nothing is
        // written under this data id after it is released.
        while in_flight.next().await.is_some() {}
        drop(digest_tx);
        let digests = digests
            .await
            .map_err(|e| Error::Body(format!("digest task: {e}")))?;
        outcome?;
        Ok(Written {
            size: offset,
            md5: digests.md5.finalize().into(),
            checksum: digests.checksum.map(ChecksumHasher::finalize),
            inline: None,
            in_flight: None,
        })
    }

    async fn store_block(&self, target: &DataTarget, offset: u64, block: Bytes) -> Result<()> {
        let b = block.clone();
        let hash = tokio::task::spawn_blocking(move || Hash::of(&b))
            .await
            .map_err(|e| Error::Body(format!("hash task: {e}")))?;
        let row = BlockRow {
            data_id: target.data_id,
            offset,
            hash,
            size: u32::try_from(block.len()).expect("blocks are smaller than 4 GiB"),
            deleted: false,
            owner: Some(target.owner.clone()),
        };
        // The reference is taken before the block is written, so garbage
        // collection can never delete a block that a new row points to. The
        // row (with the data's other rows) and the reference (with the block)
        // go out in one round trip.
        self.record_blocks(&[row]).await?;
        self.inner.data.put(hash, block).await?;
        Ok(())
    }

    /// Records block rows and the references they hold, at write quorum.
    pub(crate) async fn record_blocks(&self, rows: &[BlockRow]) -> Result<()> {
        let mut batch = WriteBatch::new(&self.inner.replicator);
        for row in rows {
            batch.add(&self.inner.block_rows, row)?;
            batch.add(&self.inner.block_refs, &row.block_ref())?;
        }
        batch.commit().await?;
        Ok(())
    }
}

/// The next chunk of `body`, or `BodyTimeout` if none comes within `idle`.
async fn next_chunk(
    body: &mut BodyStream,
    idle: std::time::Duration,
) -> Result<Option<std::result::Result<Bytes, std::io::Error>>> {
    tokio::time::timeout(idle, body.next())
        .await
        .map_err(|_| Error::BodyTimeout {
            seconds: idle.as_secs(),
        })
}

/// The outcome of a finished block task.
fn joined(r: Result<Result<()>, tokio::task::JoinError>) -> Result<()> {
    r.map_err(|e| Error::Internal(format!("block task: {e}")))?
}

fn digest_thread(
    mut rx: mpsc::Receiver<(Bytes, Arc<OwnedSemaphorePermit>)>,
    algorithm: Option<ChecksumAlgorithm>,
) -> Digests {
    let mut d = Digests {
        md5: md5::Md5::new(),
        checksum: algorithm.map(ChecksumHasher::new),
    };
    // The permit is dropped with the block, once digested.
    while let Some((block, _permit)) = rx.blocking_recv() {
        d.md5.update(&block);
        if let Some(c) = &mut d.checksum {
            c.update(&block);
        }
    }
    d
}
