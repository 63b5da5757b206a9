//! Coalescing single-entry writes to a peer into one request.
//!
//! Every small PUT writes one entry to each of its replicas. Sent one request
//! each, a busy node spends more on the requests (streams, packets, tasks,
//! wakeups) than on the writes. So writes to a remote node go through that
//! node's queue: a sender task sends whatever is queued as one
//! [`MergeRequest`], up to [`BATCHES_IN_FLIGHT`] at once; while those are on
//! their way, new writes queue and leave together next. An idle node's write
//! leaves at once, alone: nothing waits for a batch to fill. A batch that
//! stays unanswered for [`STALLED_AFTER`] stops counting against that limit,
//! so one lost answer does not hold every later write to the node until its
//! call times out.
//!
//! The receiving node merges each entry in its own transaction (the metadata
//! writer commits them together), so one bad entry fails alone, and answers
//! each entry's merge result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use hangar_cluster::NodeId;
use hangar_net::{CallOptions, Message, Priority, Rpc};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Batches on their way to one node at once.
const BATCHES_IN_FLIGHT: usize = 2;
/// A batch unanswered this long no longer holds back the next ones: its
/// answer may be lost with a link that went silent, or wait for the node
/// until the call times out, while the node may already answer new requests.
const STALLED_AFTER: Duration = Duration::from_millis(500);
/// Most batches on their way to one node, stalled ones included (memory
/// stays bounded whatever happens to the node).
const BATCHES_OUTSTANDING_MAX: usize = 6;
/// Most entries in one batch.
const BATCH_ENTRIES_MAX: usize = 128;
/// Most bytes of entries in one batch.
const BATCH_BYTES_MAX: usize = 1 << 20;
/// Entries waiting for one node, beyond which writers wait.
const QUEUE_LEN: usize = 1024;

/// Entries of any tables to merge, each in its own transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MergeRequest {
    /// (table tree name, encoded entry).
    pub entries: Vec<(String, ByteBuf)>,
}

/// Per entry of a [`MergeRequest`]: the merged entry if it differs from the
/// one sent (see `TableOp::Merge`), or why the merge failed.
pub(crate) type MergeReply = Vec<Result<Option<ByteBuf>, String>>;

impl Message for MergeRequest {
    const ENDPOINT: &'static str = "table/merge";
    const PRIORITY: Priority = Priority::Metadata;
    type Response = MergeReply;
}

/// One queued write.
struct Queued {
    table: &'static str,
    bytes: ByteBuf,
    queued_at: Instant,
    reply: oneshot::Sender<Result<Option<ByteBuf>, String>>,
}

/// The write queues of one node's peers.
pub(crate) struct Coalescer {
    rpc: Weak<Rpc>,
    queues: Mutex<HashMap<NodeId, mpsc::Sender<Queued>>>,
    /// Where the queues' senders run: the runtime the node was built on,
    /// whichever runtime the first write to a peer comes from (a request
    /// handled on the bulk lane, whose threads run at idle priority, say).
    runtime: tokio::runtime::Handle,
}

impl Coalescer {
    /// Write queues for the peers of `rpc`'s node. Must be called from
    /// within the node's runtime.
    pub(crate) fn new(rpc: &Arc<Rpc>) -> Self {
        Coalescer {
            rpc: Arc::downgrade(rpc),
            queues: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Merges `bytes`, an entry of `table`, on node `to` (a peer); returns
    /// the merged entry if it differs from the one sent.
    pub(crate) async fn merge(
        &self,
        to: NodeId,
        table: &'static str,
        bytes: ByteBuf,
    ) -> Result<Option<ByteBuf>, String> {
        let queue = self.queue(to);
        let (reply, answer) = oneshot::channel();
        let item = Queued {
            table,
            bytes,
            queued_at: Instant::now(),
            reply,
        };
        queue
            .send(item)
            .await
            .map_err(|_| "node shutting down".to_string())?;
        answer
            .await
            .map_err(|_| "the write was dropped".to_string())?
    }

    fn queue(&self, to: NodeId) -> mpsc::Sender<Queued> {
        let mut queues = self
            .queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        queues
            .entry(to)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(QUEUE_LEN);
                self.runtime.spawn(send_batches(self.rpc.clone(), to, rx));
                tx
            })
            .clone()
    }
}

/// Sends what `queue` holds to `to`, as batches, until the queue closes.
async fn send_batches(rpc: Weak<Rpc>, to: NodeId, mut queue: mpsc::Receiver<Queued>) {
    let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let outstanding = Arc::new(Semaphore::new(BATCHES_OUTSTANDING_MAX));
    let timeout = CallOptions::default().timeout;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok(held) = outstanding.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(item) = next.take() {
            // A write that waited a whole call timeout in the queue (behind
            // batches to a node that does not answer) fails now, as its own
            // call would have.
            if item.reply.is_closed() {
                // Nobody waits for it any more (the request was dropped, as
                // when a client gives up): like a call not yet made, it is
                // not sent.
            } else if item.queued_at.elapsed() >= timeout {
                let _ = item
                    .reply
                    .send(Err(format!("no answer within {timeout:?}")));
            } else {
                bytes += item.bytes.len();
                batch.push(item);
            }
            if batch.len() < BATCH_ENTRIES_MAX && bytes < BATCH_BYTES_MAX {
                next = queue.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        let Some(rpc) = rpc.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let call = send_batch(&rpc, to, batch, timeout);
            tokio::pin!(call);
            tokio::select! {
                () = &mut call => drop(slot),
                () = tokio::time::sleep(STALLED_AFTER) => {
                    drop(slot);
                    call.await;
                }
            }
            drop(held);
        });
    }
}

async fn send_batch(rpc: &Rpc, to: NodeId, batch: Vec<Queued>, timeout: Duration) {
    let request = MergeRequest {
        entries: batch
            .iter()
            .map(|q| (q.table.to_string(), q.bytes.clone()))
            .collect(),
    };
    let options = CallOptions {
        timeout,
        ..CallOptions::default()
    };
    match rpc.call_with(to, &request, options, None).await {
        Ok((replies, _)) if replies.len() == batch.len() => {
            for (q, r) in batch.into_iter().zip(replies) {
                let _ = q.reply.send(r);
            }
        }
        Ok((replies, _)) => {
            let e = format!(
                "{} answers to a batch of {} entries",
                replies.len(),
                batch.len()
            );
            for q in batch {
                let _ = q.reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            let e = e.to_string();
            for q in batch {
                let _ = q.reply.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod format_fixtures;
