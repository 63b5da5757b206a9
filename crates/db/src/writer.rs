//! The group-commit writer: one thread owns all engine write transactions.
//!
//! It takes every queued job, runs each against its own overlay (so a failing job
//! leaves no trace), applies the overlays of the jobs that succeeded to one engine
//! transaction, commits once, then answers every caller.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use redb::{ReadableDatabase, ReadableTable};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};

use crate::wal::{self, Changes, Wal};
use crate::{engine_err, Durability, Error, Result, Tree};

/// Most jobs queued for the writer before callers wait.
const QUEUE_LEN_MAX: usize = 4096;
/// Most jobs grouped in one commit, so one commit's latency stays bounded.
const BATCH_LEN_MAX: usize = 512;

type Completion = Box<dyn FnOnce(Option<&Error>) + Send>;
type JobFn = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Completion) + Send>;

/// One queued transaction.
pub(crate) struct Job {
    run: JobFn,
    /// Whether its caller waits for durability (see [`crate::Db::transaction_unsynced`]).
    durable: bool,
    /// Sent by the flush ticker: makes the commits so far durable if some
    /// are not.
    flush: bool,
}

impl Job {
    pub(crate) fn new<T, E, F>(f: F, durable: bool) -> (Self, oneshot::Receiver<Result<T, E>>)
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run: JobFn = Box::new(move |t: &mut Tx<'_>| {
            let result = f(t);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit_err: Option<&Error>| {
                let answer = match (commit_err, result) {
                    (Some(e), Ok(_)) => Err(E::from(Error::Aborted(e.to_string()))),
                    (_, r) => r,
                };
                // The caller may have gone away; nothing to do then.
                let _ = tx.send(answer);
            });
            (ok, completion)
        });
        (
            Job {
                run,
                durable,
                flush: false,
            },
            rx,
        )
    }

    /// The flush ticker's job: nothing to write.
    fn flush() -> Self {
        Job {
            run: Box::new(|_: &mut Tx<'_>| (true, Box::new(|_: Option<&Error>| {}) as Completion)),
            durable: false,
            flush: true,
        }
    }
}

/// Owner of the writer thread. Dropping it closes the queue and waits for the
/// thread, so the engine file is closed when the last [`crate::Db`] goes away.
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Job>>,
    stats: Arc<Stats>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Default)]
struct Stats {
    transactions: AtomicU64,
    commits: AtomicU64,
}

impl Writer {
    /// Starts the writer of `db`, whose log `wal` was replayed up to commit
    /// `last_seq` (see [`replay_log`]).
    pub(crate) fn spawn(
        db: Arc<redb::Database>,
        config: &crate::DbConfig,
        wal: Wal,
        last_seq: u64,
    ) -> Self {
        let (durability, sync_interval) = (config.durability, config.sync_interval);
        let (queue, rx) = mpsc::channel(QUEUE_LEN_MAX);
        let stats = Arc::new(Stats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("hangar-db-writer".into())
            .spawn(move || {
                let mut log = Log {
                    wal,
                    last_seq,
                    pending: false,
                    broken: false,
                };
                run(
                    &db,
                    (durability, sync_interval),
                    rx,
                    &thread_stats,
                    &mut log,
                );
            })
            .expect("spawning the metadata writer thread must succeed at startup");
        // Asks the writer every sync interval to make its commits durable; ends
        // with the writer's queue.
        let weak = queue.downgrade();
        std::thread::Builder::new()
            .name("hangar-db-flush".into())
            .spawn(move || loop {
                std::thread::sleep(sync_interval);
                match weak.upgrade() {
                    Some(queue) => {
                        let _ = queue.try_send(Job::flush());
                    }
                    None => return,
                }
            })
            .expect("spawning the metadata flush thread must succeed at startup");
        Writer {
            queue: Some(queue),
            stats,
            thread: Some(thread),
        }
    }

    pub(crate) fn submit(&self, job: Job) -> Result<()> {
        // `try_send` first keeps the common case synchronous; a full queue is
        // waited on without blocking the async runtime.
        let queue = self.queue.as_ref().ok_or(Error::WriterStopped)?;
        match queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(job)) => {
                let queue = queue.clone();
                tokio::task::block_in_place(|| queue.blocking_send(job))
                    .map_err(|_| Error::WriterStopped)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::WriterStopped),
        }
    }

    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.stats.transactions.load(Ordering::Relaxed),
            self.stats.commits.load(Ordering::Relaxed),
        )
    }
}

/// The writer's side of the write-ahead log.
struct Log {
    wal: Wal,
    /// Sequence number of the last commit logged (or replayed at start).
    last_seq: u64,
    /// Whether the log holds commits that the engine has not made durable.
    pending: bool,
    /// Set when writing to the log failed: every commit is then made durable
    /// until the log could be emptied again.
    broken: bool,
}

impl Log {
    /// After a durable commit that contains every logged commit: the log
    /// can be emptied.
    fn committed_durably(&mut self) {
        if !self.pending && !self.broken {
            return;
        }
        match self.wal.clear() {
            Ok(()) => {
                self.pending = false;
                self.broken = false;
            }
            Err(e) => {
                error!(error = %e, "cannot empty the metadata write-ahead log; every commit is now synced");
                self.broken = true;
            }
        }
    }
}

fn run(
    db: &redb::Database,
    (durability, sync_interval): (Durability, Duration),
    mut rx: mpsc::Receiver<Job>,
    stats: &Stats,
    log: &mut Log,
) {
    // Since when commits are waiting for a durable one (the engine persists a
    // non-durable commit only with the next durable one).
    let mut unflushed_since: Option<Instant> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH_LEN_MAX {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let ticked = batch.iter().any(|j| j.flush);
        if ticked && batch.len() == 1 && unflushed_since.is_none() {
            continue; // nothing to make durable
        }
        let n = batch.iter().filter(|j| !j.flush).count() as u64;
        let flush_due = unflushed_since.is_some_and(|t| ticked || t.elapsed() >= sync_interval);
        let (completions, result, durable) = run_batch(db, durability, batch, flush_due, log);
        if let Err(e) = &result {
            error!(error = %e, "metadata commit failed");
        }
        if result.is_ok() {
            if durable {
                unflushed_since = None;
            } else {
                unflushed_since.get_or_insert_with(Instant::now);
            }
        }
        let err = result.err();
        for c in completions {
            c(err.as_ref());
        }
        stats.transactions.fetch_add(n, Ordering::Relaxed);
        stats.commits.fetch_add(1, Ordering::Relaxed);
    }
    if unflushed_since.is_some() || log.pending {
        if let Err(e) = flush(db, log) {
            error!(error = %e, "metadata flush failed");
        }
    }
}

/// Makes every commit so far durable with an empty durable commit.
fn flush(db: &redb::Database, log: &mut Log) -> Result<()> {
    let mut wtx = db.begin_write().map_err(engine_err)?;
    wtx.set_durability(redb::Durability::Immediate)
        .map_err(engine_err)?;
    record_log_position(&wtx, log)?;
    wtx.commit().map_err(engine_err)?;
    log.committed_durably();
    Ok(())
}

/// Records, in a durable commit, the last logged commit it contains.
fn record_log_position(wtx: &redb::WriteTransaction, log: &Log) -> Result<()> {
    if !log.pending {
        return Ok(());
    }
    let def = redb::TableDefinition::<&[u8], &[u8]>::new(wal::WAL_TREE);
    let mut table = wtx.open_table(def).map_err(engine_err)?;
    table
        .insert(wal::WAL_SEQ_KEY, log.last_seq.to_le_bytes().as_slice())
        .map_err(engine_err)?;
    Ok(())
}

/// Runs and commits one batch; the commit is durable when a job of an
/// `Fsync` database asks for it, or when `flush_due`. Returns whether it was.
/// A commit that is not durable is written to the log before anyone is
/// answered, so that a crash of the process does not lose it.
fn run_batch(
    db: &redb::Database,
    durability: Durability,
    batch: Vec<Job>,
    flush_due: bool,
    log: &mut Log,
) -> (Vec<Completion>, Result<()>, bool) {
    let mut completions = Vec::with_capacity(batch.len());
    let mut wtx = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            // Jobs must still run to produce their completions; they see an error.
            let err = engine_err(e);
            for job in batch {
                completions.push(Box::new(move |_: Option<&Error>| drop(job)) as Completion);
            }
            return (completions, Err(err), false);
        }
    };
    // One durable job makes the whole commit durable, and with it every
    // non-durable commit before it.
    // Without fsync, commits are still made durable at least every
    // sync interval: a machine crash loses at most that much.
    let durable = flush_due
        || log.broken
        || match durability {
            Durability::Fsync => batch.iter().any(|j| j.durable),
            Durability::NoFsync => false,
        };
    let engine_durability = if durable {
        redb::Durability::Immediate
    } else {
        redb::Durability::None
    };
    if let Err(e) = wtx.set_durability(engine_durability) {
        error!(error = %e, "cannot set commit durability");
    }
    let mut changes = (!durable).then(Changes::default);
    let mut failure = None;
    for job in batch {
        let mut tx = Tx {
            wtx: &wtx,
            overlay: BTreeMap::new(),
        };
        let (ok, completion) = (job.run)(&mut tx);
        completions.push(completion);
        if ok && failure.is_none() {
            if let Err(e) = tx.apply(changes.as_mut()) {
                failure = Some(e);
            }
        }
    }
    if failure.is_none() && durable {
        failure = record_log_position(&wtx, log).err();
    }
    if let Some(e) = failure {
        let _ = wtx.abort();
        return (completions, Err(e), false);
    }
    if let Err(e) = wtx.commit() {
        return (completions, Err(engine_err(e)), false);
    }
    if durable {
        log.committed_durably();
        return (completions, Ok(()), true);
    }
    let changes = changes.unwrap_or_default();
    if changes.is_empty() {
        return (completions, Ok(()), false);
    }
    log.last_seq += 1;
    if let Err(e) = log.wal.append(log.last_seq, &changes) {
        // The commit is in the engine but not in the log: make it durable
        // before answering, and sync every commit until the log works again.
        error!(error = %e, "cannot write the metadata write-ahead log; syncing this commit instead");
        log.broken = true;
        log.pending = true;
        let flushed = flush(db, log);
        let durable = flushed.is_ok();
        return (completions, flushed, durable);
    }
    log.pending = true;
    (completions, Ok(()), false)
}

/// Applies the changes of the log's commits after the last one the engine
/// holds durably, in one durable commit, then empties the log. Returns the
/// sequence number of the last commit the database now holds.
pub(crate) fn replay_log(db: &redb::Database, wal: &mut Wal) -> Result<u64> {
    let def = redb::TableDefinition::<&[u8], &[u8]>::new(wal::WAL_TREE);
    let rtx = db.begin_read().map_err(engine_err)?;
    let durable_seq = match rtx.open_table(def) {
        Ok(t) => match t.get(wal::WAL_SEQ_KEY).map_err(engine_err)? {
            Some(v) => u64::from_le_bytes(
                v.value()
                    .try_into()
                    .map_err(|_| Error::Aborted("damaged write-ahead log position".into()))?,
            ),
            None => 0,
        },
        Err(redb::TableError::TableDoesNotExist(_)) => 0,
        Err(e) => return Err(engine_err(e)),
    };
    drop(rtx);
    let io = |e: std::io::Error| Error::Log(e.to_string());
    let records = wal.records_after(durable_seq).map_err(io)?;
    let Some(last) = records.last().map(|r| r.seq) else {
        if !wal.is_empty() {
            wal.clear().map_err(io)?;
        }
        return Ok(durable_seq);
    };
    let mut wtx = db.begin_write().map_err(engine_err)?;
    wtx.set_durability(redb::Durability::Immediate)
        .map_err(engine_err)?;
    let mut changed = 0usize;
    for r in &records {
        let changes = wal::decode_changes(&r.changes)
            .ok_or_else(|| Error::Log(format!("commit {} in the log is malformed", r.seq)))?;
        for c in changes {
            let def = redb::TableDefinition::<&[u8], &[u8]>::new(c.tree);
            let mut table = wtx.open_table(def).map_err(engine_err)?;
            match c.value {
                Some(v) => table.insert(c.key, v).map(|_| ()),
                None => table.remove(c.key).map(|_| ()),
            }
            .map_err(engine_err)?;
            changed += 1;
        }
    }
    {
        let mut table = wtx.open_table(def).map_err(engine_err)?;
        table
            .insert(wal::WAL_SEQ_KEY, last.to_le_bytes().as_slice())
            .map_err(engine_err)?;
    }
    wtx.commit().map_err(engine_err)?;
    wal.clear().map_err(io)?;
    info!(
        commits = records.len(),
        changes = changed,
        "metadata: commits not yet synced before the last stop were recovered from the write-ahead log"
    );
    Ok(last)
}

/// A transaction in progress: reads see this transaction's own writes and every
/// write committed before it.
pub struct Tx<'a> {
    wtx: &'a redb::WriteTransaction,
    overlay: BTreeMap<Tree, BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl Tx<'_> {
    /// Reads one value.
    pub fn get(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.overlay.get(&tree).and_then(|t| t.get(key)) {
            return Ok(v.clone());
        }
        let table = self.wtx.open_table(tree.def()).map_err(engine_err)?;
        let v = table.get(key).map_err(engine_err)?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    /// Writes one value.
    pub fn insert(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<()> {
        self.overlay
            .entry(tree)
            .or_default()
            .insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    /// Removes one key (absent keys are fine).
    pub fn remove(&mut self, tree: Tree, key: &[u8]) -> Result<()> {
        self.overlay
            .entry(tree)
            .or_default()
            .insert(key.to_vec(), None);
        Ok(())
    }

    /// Reads at most `limit` entries with `start <= key < end`, in key order,
    /// including this transaction's own writes.
    pub fn range(
        &mut self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let upper = match end {
            Some(e) => Bound::Excluded(e.to_vec()),
            None => Bound::Unbounded,
        };
        let mine: Vec<_> = match self.overlay.get(&tree) {
            Some(t) => t
                .range((Bound::Included(start.to_vec()), upper))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            None => Vec::new(),
        };
        let table = self.wtx.open_table(tree.def()).map_err(engine_err)?;
        let iter = match end {
            Some(end) => table.range::<&[u8]>(start..end),
            None => table.range::<&[u8]>(start..),
        }
        .map_err(engine_err)?;
        let mut merged = BTreeMap::new();
        // Each overlay removal can hide at most one stored entry.
        for item in iter.take(limit + mine.len()) {
            let (k, v) = item.map_err(engine_err)?;
            merged.insert(k.value().to_vec(), v.value().to_vec());
        }
        for (k, v) in mine {
            match v {
                Some(v) => merged.insert(k, v),
                None => merged.remove(&k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    /// Applies this transaction's writes to the engine transaction, and
    /// records them in `log` if given.
    fn apply(self, mut log: Option<&mut Changes>) -> Result<()> {
        for (tree, writes) in self.overlay {
            let mut table = self.wtx.open_table(tree.def()).map_err(engine_err)?;
            for (key, value) in writes {
                if let Some(log) = log.as_deref_mut() {
                    log.push(tree.0, &key, value.as_deref());
                }
                match value {
                    Some(v) => table.insert(key.as_slice(), v.as_slice()),
                    None => table.remove(key.as_slice()).map(|_| None),
                }
                .map_err(engine_err)?;
            }
        }
        Ok(())
    }
}
