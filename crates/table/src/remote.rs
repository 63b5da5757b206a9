//! The table protocol between nodes: one RPC endpoint for every table, routed
//! by table name to the node's copy.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hangar_cluster::{NodeId, Routing, System};
use hangar_net::{Message, Priority};
use hangar_util::Hash;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::coalesce::{Coalescer, MergeReply, MergeRequest};

/// A request to one node's copy of a table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TableRequest {
    /// The table's tree name.
    pub table: String,
    pub op: TableOp,
}

/// What a [`TableRequest`] asks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum TableOp {
    /// Merge these encoded entries.
    Update(Vec<ByteBuf>),
    /// Merge this encoded entry; answer the merged entry if it differs from
    /// the one sent (what was there already won over part of it).
    Merge(ByteBuf),
    /// The encoded entry at (partition key, sort key), if any.
    Get { pk: Hash, sk: ByteBuf },
    /// Up to `limit` encoded entries of partition key `pk` from sort key
    /// `start` on (and before `end`, if given), in sort-key order.
    Range {
        pk: Hash,
        start: ByteBuf,
        end: Option<ByteBuf>,
        limit: u32,
    },
    /// Remove the entry at (partition key, sort key) if its encoding hashes
    /// to `hash` (a tombstone every replica holds).
    RemoveIfEqual { pk: Hash, sk: ByteBuf, hash: Hash },
    /// The root of the partition's summary (anti-entropy).
    Root { partition: u8 },
    /// The non-empty children of the summary node above `path` (0 or 1 byte).
    Children { partition: u8, path: ByteBuf },
    /// The encoded entries of the summary bucket `path` (2 bytes).
    Bucket { partition: u8, path: [u8; 2] },
}

/// The answer to a [`TableRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum TableReply {
    Updated,
    Entry(Option<ByteBuf>),
    Entries(Vec<ByteBuf>),
    Node(ByteBuf),
    Children(Vec<(u8, ByteBuf)>),
}

impl Message for TableRequest {
    const ENDPOINT: &'static str = "table/op";
    const PRIORITY: Priority = Priority::Metadata;
    type Response = TableReply;
}

/// A table as the protocol sees it: encoded entries in, encoded entries out.
#[async_trait::async_trait]
pub(crate) trait RemoteTable: Send + Sync + 'static {
    async fn handle(&self, op: TableOp) -> crate::Result<TableReply>;
    /// The database holding this node's copy (`None` once the table is gone).
    fn db(&self) -> Option<hangar_db::Db>;
    /// Merges encoded entries into this node's copy inside `tx`.
    fn merge_encoded_in(
        &self,
        tx: &mut hangar_db::Tx<'_>,
        entries: &[ByteBuf],
    ) -> crate::Result<()>;
    /// Merges one encoded entry inside `tx`; returns the merged entry if it
    /// differs from the one given.
    fn merge_one_in(
        &self,
        tx: &mut hangar_db::Tx<'_>,
        bytes: &[u8],
    ) -> crate::Result<Option<ByteBuf>>;
}

/// Entries of several tables for one node, merged there in one transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct BatchRequest {
    /// (table name, encoded entries).
    pub tables: Vec<(String, Vec<ByteBuf>)>,
}

impl Message for BatchRequest {
    const ENDPOINT: &'static str = "table/batch";
    const PRIORITY: Priority = Priority::Metadata;
    type Response = ();
}

/// The link between a node's tables and its cluster: it answers the table
/// protocol for every table registered with it and gives tables the current
/// layout and the quorum helper. One per node.
#[derive(Clone)]
pub struct Replicator {
    inner: Arc<ReplicatorInner>,
}

struct ReplicatorInner {
    system: Arc<System>,
    tables: RwLock<HashMap<String, Arc<dyn RemoteTable>>>,
    coalescer: Coalescer,
}

impl Replicator {
    /// A replicator for the node of `system`; registers the table endpoint.
    /// Must be called within the node's tokio runtime.
    pub fn new(system: Arc<System>) -> Self {
        let inner = Arc::new(ReplicatorInner {
            coalescer: Coalescer::new(system.rpc()),
            system,
            tables: RwLock::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&inner);
        inner
            .system
            .rpc()
            .register(move |_from, request: TableRequest| {
                let weak = weak.clone();
                async move {
                    let inner = weak
                        .upgrade()
                        .ok_or_else(|| "node shutting down".to_string())?;
                    let table = inner
                        .table(&request.table)
                        .ok_or_else(|| format!("no table {}", request.table))?;
                    table.handle(request.op).await.map_err(|e| e.to_string())
                }
            });
        let weak = Arc::downgrade(&inner);
        inner
            .system
            .rpc()
            .register(move |_from, request: BatchRequest| {
                let weak = weak.clone();
                async move {
                    let inner = weak
                        .upgrade()
                        .ok_or_else(|| "node shutting down".to_string())?;
                    inner.apply_batch(request).await.map_err(|e| e.to_string())
                }
            });
        let weak = Arc::downgrade(&inner);
        inner
            .system
            .rpc()
            .register(move |_from, request: MergeRequest| {
                let weak = weak.clone();
                async move {
                    let inner = weak
                        .upgrade()
                        .ok_or_else(|| "node shutting down".to_string())?;
                    Ok::<_, String>(inner.merge_each(request).await)
                }
            });
        Replicator { inner }
    }

    /// Merges `bytes`, an entry of `table`, on peer `to` through its write
    /// queue (see [`crate::coalesce`]).
    pub(crate) async fn merge_on(
        &self,
        to: NodeId,
        table: &'static str,
        bytes: ByteBuf,
    ) -> Result<Option<ByteBuf>, String> {
        self.inner.coalescer.merge(to, table, bytes).await
    }

    pub(crate) fn register(&self, name: &str, table: Arc<dyn RemoteTable>) {
        self.inner
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), table);
    }

    /// This node's id.
    pub fn local_id(&self) -> NodeId {
        self.inner.system.id()
    }

    /// Where writes and reads go under the live layout versions.
    pub fn routing(&self) -> Arc<Routing> {
        self.inner.system.layout().live_routing()
    }

    /// The node's cluster.
    pub fn system(&self) -> &Arc<System> {
        &self.inner.system
    }
}

impl ReplicatorInner {
    fn table(&self, name: &str) -> Option<Arc<dyn RemoteTable>> {
        self.tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Merges the entries of `request`: all in one transaction, or, if one
    /// of them fails, each in its own, so that only that one fails.
    async fn merge_each(&self, request: MergeRequest) -> MergeReply {
        let mut work = Vec::with_capacity(request.entries.len());
        for (name, bytes) in &request.entries {
            match self.table(name) {
                Some(t) => work.push((t, bytes.clone())),
                None => return self.merge_one_by_one(request).await,
            }
        }
        let Some(db) = work.first().and_then(|(t, _)| t.db()) else {
            return self.merge_one_by_one(request).await;
        };
        let together = db
            .transaction(move |tx| {
                work.iter()
                    .map(|(table, bytes)| table.merge_one_in(tx, bytes).map(Ok))
                    .collect::<crate::Result<MergeReply>>()
            })
            .await;
        match together {
            Ok(reply) => reply,
            Err(_) => self.merge_one_by_one(request).await,
        }
    }

    /// Merges each entry of `request` in its own transaction, all at once.
    async fn merge_one_by_one(&self, request: MergeRequest) -> MergeReply {
        let merges = request.entries.into_iter().map(|(name, bytes)| {
            let table = self.table(&name);
            async move {
                let table = table.ok_or_else(|| format!("no table {name}"))?;
                match table.handle(TableOp::Merge(bytes)).await {
                    Ok(TableReply::Entry(merged)) => Ok(merged),
                    Ok(other) => Err(format!("unexpected reply to a merge: {other:?}")),
                    Err(e) => Err(e.to_string()),
                }
            }
        });
        futures::future::join_all(merges).await
    }

    /// Merges a batch into this node's copies, all tables in one transaction.
    async fn apply_batch(&self, request: BatchRequest) -> crate::Result<()> {
        let mut work = Vec::with_capacity(request.tables.len());
        for (name, entries) in request.tables {
            let table = self
                .table(&name)
                .ok_or_else(|| crate::Error::Protocol(format!("no table {name}")))?;
            work.push((table, entries));
        }
        let Some((first, _)) = work.first() else {
            return Ok(());
        };
        let db = first
            .db()
            .ok_or_else(|| crate::Error::Protocol("table closed".into()))?;
        db.transaction(move |tx| {
            for (table, entries) in &work {
                table.merge_encoded_in(tx, entries)?;
            }
            Ok::<_, crate::Error>(())
        })
        .await
    }
}

#[cfg(test)]
mod format_fixtures;
