//! The group-commit writer: one thread owns all engine write transactions.
//!
//! It takes every queued job, runs each against its own overlay (so a failing job
//! leaves no trace), applies the overlays of the jobs that succeeded to one engine
//! transaction, commits once, then answers every caller.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::ReadableTable;
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::{engine_err, Durability, Error, Result, Tree};

/// Most jobs queued for the writer before callers wait.
const QUEUE_LEN_MAX: usize = 4096;
/// Most jobs grouped in one commit, so one commit's latency stays bounded.
const BATCH_LEN_MAX: usize = 512;
/// Longest time a non-durable commit waits for a durable one.
const FLUSH_AFTER: Duration = Duration::from_secs(1);

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
    pub(crate) fn spawn(db: Arc<redb::Database>, durability: Durability) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_LEN_MAX);
        let stats = Arc::new(Stats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("hangar-db-writer".into())
            .spawn(move || run(&db, durability, rx, &thread_stats))
            .expect("spawning the metadata writer thread must succeed at startup");
        // Asks the writer every FLUSH_AFTER to make its commits durable; ends
        // with the writer's queue.
        let weak = queue.downgrade();
        std::thread::Builder::new()
            .name("hangar-db-flush".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_AFTER);
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

fn run(db: &redb::Database, durability: Durability, mut rx: mpsc::Receiver<Job>, stats: &Stats) {
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
        let flush_due = unflushed_since.is_some_and(|t| ticked || t.elapsed() >= FLUSH_AFTER);
        let (completions, result, durable) = run_batch(db, durability, batch, flush_due);
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
    if unflushed_since.is_some() {
        flush(db);
    }
}

/// Makes every commit so far durable with an empty durable commit.
fn flush(db: &redb::Database) {
    let mut wtx = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            error!(error = %e, "metadata flush failed");
            return;
        }
    };
    if let Err(e) = wtx.set_durability(redb::Durability::Immediate) {
        error!(error = %e, "cannot set commit durability");
    }
    if let Err(e) = wtx.commit() {
        error!(error = %e, "metadata flush failed");
    }
}

/// Runs and commits one batch; the commit is durable when a job of an
/// `Fsync` database asks for it, or when `flush_due`. Returns whether it was.
fn run_batch(
    db: &redb::Database,
    durability: Durability,
    batch: Vec<Job>,
    flush_due: bool,
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
    // FLUSH_AFTER: a crash loses at most that much.
    let durable = flush_due
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
    let mut failure = None;
    for job in batch {
        let mut tx = Tx {
            wtx: &wtx,
            overlay: BTreeMap::new(),
        };
        let (ok, completion) = (job.run)(&mut tx);
        completions.push(completion);
        if ok && failure.is_none() {
            if let Err(e) = tx.apply() {
                failure = Some(e);
            }
        }
    }
    if let Some(e) = failure {
        let _ = wtx.abort();
        return (completions, Err(e), false);
    }
    (completions, wtx.commit().map_err(engine_err), durable)
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

    fn apply(self) -> Result<()> {
        for (tree, writes) in self.overlay {
            let mut table = self.wtx.open_table(tree.def()).map_err(engine_err)?;
            for (key, value) in writes {
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
