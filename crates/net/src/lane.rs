//! The bulk lane: user data and background transfers between two nodes travel
//! on a second QUIC connection, whose packets are encrypted, decrypted and
//! acknowledged by threads of the lowest CPU priority (`SCHED_IDLE` on Linux).
//!
//! Stream priorities and pacing order what waits in a node's buffers and in the
//! network. On a fast link the bottleneck is the CPU instead: a connection is
//! one state machine, so a small request arriving behind a burst of bulk
//! datagrams waits until they are all decrypted and handled, and a thread busy
//! with bulk data delays the thread that would answer it. With bulk data on its
//! own connection and thread, the kernel preempts that thread whenever a small
//! request needs the CPU. Bulk transfers still use every cycle nothing else
//! wants. On the sending node the work that feeds them (an upload's hashing,
//! say) runs at normal priority and waits for them, so they are not starved
//! by their own node; on the receiving node the requests that arrive on the
//! bulk connection are handled on the lane, at its priority (a peer's block
//! is hashed and stored there). Tasks a handler spawns stay on the lane, so
//! long-lived ones belong on the node's main runtime.
//!
//! The bulk connection carries bulk streams only on fast links (a base round
//! trip under [`FAST_LINK`]). On slower ones the network, not the CPU, is the
//! bottleneck, and bulk streams stay on the main connection, paced
//! ([`crate::pacer`]): there a small request's lost packet is found lost by the
//! bulk packets that follow it, at once, where alone on its connection it
//! would wait for a probe timeout (measured through a 100 Mbit/s, 10 ms link
//! with BBR: small-request p99 during a transfer 2.0× idle with bulk data on
//! its own connection, 1.7× with it on the main one).
//!
//! The main connection stays the peer link: membership, round-trip times and
//! every small request use it. The node that dialled it dials the bulk
//! connection next to it, marked by a prefix of its first connection id (so
//! the accepting node drives it from the bulk lane from its first packet) and
//! by the link it joins, named by keying material of the main connection's
//! TLS session. Until the bulk connection is up, or whenever it is lost, bulk
//! streams use the main connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thread_priority::ThreadPriority;
#[cfg(target_os = "linux")]
use thread_priority::{
    set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
    ThreadSchedulePolicy,
};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::lane_guard::{self, LaneThreads};
use crate::Error;

/// First bytes of the first destination connection id of a bulk connection.
pub(crate) const BULK_CID_TAG: &[u8; 4] = b"hblk";
/// Length of that connection id (the largest QUIC allows, so that the random
/// part stays unpredictable).
pub(crate) const BULK_CID_LEN: usize = 20;
/// Links whose base round trip is below this are fast: the CPU, not the
/// network, is what bulk data and small requests share there.
pub(crate) const FAST_LINK: Duration = Duration::from_millis(2);
/// Streams accepted on a bulk connection and not yet taken by the RPC layer.
const ACCEPTED_STREAMS: usize = 64;
/// Wait before dialling a lost bulk connection again, doubled after each
/// failure up to [`MAX_REDIAL`].
pub(crate) const FIRST_REDIAL: Duration = Duration::from_secs(1);
pub(crate) const MAX_REDIAL: Duration = Duration::from_secs(30);

/// The threads that drive bulk connections and run the handlers of the
/// requests that arrive on them.
pub(crate) struct LaneRuntime {
    /// Taken when dropped.
    runtime: Option<Runtime>,
    handle: Handle,
    /// The lane's threads, for the starvation guard.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "the guard holds its own reference")
    )]
    threads: Arc<LaneThreads>,
    /// Set when dropped: the guard then ends.
    stop_guard: Arc<AtomicBool>,
}

impl LaneRuntime {
    /// Starts half as many threads as there are cores (at least one), at
    /// `priority`; at idle priority, with the starvation guard
    /// ([`crate::lane_guard`]).
    pub(crate) fn start(priority: BulkCpuPriority) -> Result<Self, Error> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let threads = Arc::new(LaneThreads::default());
        let idle = priority == BulkCpuPriority::Idle;
        let (entering, leaving) = (Arc::clone(&threads), Arc::clone(&threads));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads((cores / 2).max(1))
            .thread_name("hangar-bulk")
            .enable_all()
            .on_thread_start(move || {
                if idle {
                    lowest_priority();
                    entering.enter();
                }
            })
            .on_thread_stop(move || {
                if idle {
                    leaving.leave();
                }
            })
            .build()
            .map_err(|e| Error::io("starting the bulk lane", e))?;
        let stop_guard = Arc::new(AtomicBool::new(false));
        if idle {
            lane_guard::start(Arc::clone(&threads), Arc::clone(&stop_guard))
                .map_err(|e| Error::io("starting the guard of the bulk lane", e))?;
        }
        Ok(LaneRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            threads,
            stop_guard,
        })
    }

    /// The lane's threads, as the starvation guard sees them.
    #[cfg(test)]
    pub(crate) fn threads(&self) -> &LaneThreads {
        &self.threads
    }

    /// Where bulk work is spawned.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for LaneRuntime {
    fn drop(&mut self) {
        self.stop_guard.store(true, Ordering::Relaxed);
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime blocks, which an async context forbids.
            runtime.shutdown_background();
        }
    }
}

/// The CPU priority of the threads that carry bulk transfers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkCpuPriority {
    /// The lowest (`SCHED_IDLE`): they run when nothing else wants the CPU,
    /// so small requests never wait for them; a machine kept busy by other
    /// programs starves them.
    Idle,
    /// The same as every other thread: bulk transfers get their share of a
    /// busy machine, and small requests may wait for their time slices.
    Normal,
}

impl std::str::FromStr for BulkCpuPriority {
    type Err = Error;

    /// Reads `idle` or `normal`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "idle" => Ok(BulkCpuPriority::Idle),
            "normal" => Ok(BulkCpuPriority::Normal),
            other => Err(Error::Config(format!(
                "bulk CPU priority must be \"idle\" or \"normal\", not {other:?}"
            ))),
        }
    }
}

/// Moves the calling thread to the lowest CPU priority (`SCHED_IDLE`); logs
/// if the system refuses.
#[cfg(target_os = "linux")]
fn lowest_priority() {
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, policy)
    {
        tracing::warn!("lowering the CPU priority of the bulk lane failed: {e:?}");
    }
}

/// Moves the calling thread to the lowest CPU priority the system offers to
/// ordinary threads; logs if the system refuses.
#[cfg(not(target_os = "linux"))]
fn lowest_priority() {
    if let Err(e) = thread_priority::set_current_thread_priority(ThreadPriority::Min) {
        tracing::warn!("lowering the CPU priority of the bulk lane failed: {e:?}");
    }
}

/// A stream the peer opened on a bulk connection.
pub(crate) type BulkStream = (quinn::SendStream, quinn::RecvStream);

/// Where a link keeps its bulk connection.
#[derive(Default)]
struct Slot {
    conn: Option<quinn::Connection>,
    /// Set once the main connection closed: no bulk connection joins it after.
    closed: bool,
}

/// The bulk connection of one main connection, once there is one.
pub(crate) struct BulkLink {
    slot: Mutex<Slot>,
    streams_tx: mpsc::Sender<BulkStream>,
    /// Streams the peer opened on the bulk connection.
    pub(crate) streams: tokio::sync::Mutex<mpsc::Receiver<BulkStream>>,
    /// Cancelled when the link is dropped with its main connection's wrapper:
    /// the tasks that serve the link then end and let go of the connections.
    gone: CancellationToken,
    /// The lowest round trip of the main connection seen, in microseconds.
    base_rtt_us: AtomicU64,
}

impl BulkLink {
    pub(crate) fn new() -> Arc<Self> {
        let (streams_tx, rx) = mpsc::channel(ACCEPTED_STREAMS);
        Arc::new(BulkLink {
            slot: Mutex::new(Slot::default()),
            streams_tx,
            streams: tokio::sync::Mutex::new(rx),
            gone: CancellationToken::new(),
            base_rtt_us: AtomicU64::new(u64::MAX),
        })
    }

    /// Cancelled once the link is dropped.
    pub(crate) fn gone(&self) -> CancellationToken {
        self.gone.clone()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The bulk connection, if it is up.
    pub(crate) fn current(&self) -> Option<quinn::Connection> {
        self.slot()
            .conn
            .as_ref()
            .filter(|c| c.close_reason().is_none())
            .cloned()
    }

    /// The connection bulk streams should use, if not `main`: the bulk
    /// connection, if it is up and the link is fast.
    pub(crate) fn carrier(&self, main: &quinn::Connection) -> Option<quinn::Connection> {
        let rtt = u64::try_from(main.rtt().as_micros()).unwrap_or(u64::MAX);
        let base = self.base_rtt_us.fetch_min(rtt, Ordering::Relaxed).min(rtt);
        if Duration::from_micros(base) >= FAST_LINK {
            return None;
        }
        self.current()
    }

    /// Makes `conn` the bulk connection (closing any previous one) and passes
    /// the streams the peer opens on it to [`Self::streams`], from `lane`.
    /// Closes `conn` instead, and answers false, if the link was closed.
    pub(crate) fn attach(&self, conn: quinn::Connection, lane: &Handle) -> bool {
        {
            let mut slot = self.slot();
            if slot.closed {
                drop(slot);
                conn.close(0u32.into(), b"main connection closed");
                return false;
            }
            if let Some(old) = slot.conn.replace(conn.clone()) {
                old.close(0u32.into(), b"replaced");
            }
        }
        let (tx, gone) = (self.streams_tx.clone(), self.gone());
        lane.spawn(async move {
            loop {
                let stream = tokio::select! {
                    stream = conn.accept_bi() => stream,
                    _ = gone.cancelled() => return,
                };
                let Ok(stream) = stream else { return };
                if tx.send(stream).await.is_err() {
                    return;
                }
            }
        });
        true
    }

    /// Closes the bulk connection, if any, for good: its main connection
    /// closed.
    pub(crate) fn close(&self, reason: &str) {
        let conn = {
            let mut slot = self.slot();
            slot.closed = true;
            slot.conn.take()
        };
        if let Some(conn) = conn {
            conn.close(0u32.into(), reason.as_bytes());
        }
    }
}

impl Drop for BulkLink {
    fn drop(&mut self) {
        self.gone.cancel();
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests of the real scheduler, in real time"
)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{BulkCpuPriority, LaneRuntime};

    /// The scheduling policies of this process's lane threads (Linux numbers:
    /// 0 normal, 5 idle), read from `/proc`.
    #[cfg(target_os = "linux")]
    fn lane_policies() -> Vec<u32> {
        let mut policies = Vec::new();
        for task in std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .flatten()
        {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() != "hangar-bulk" {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            // Fields after the command name, which ends with the last ')'.
            let fields: Vec<&str> = stat[stat.rfind(')').expect("stat") + 2..]
                .split(' ')
                .collect();
            // Field 41 of stat, counting the pid as 1 and the name as 2.
            policies.push(fields[41 - 3].parse().expect("policy"));
        }
        policies
    }

    /// Waits up to `limit` for `done`.
    fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        done()
    }

    /// Runs `busy` threads of normal priority in this process, spinning
    /// until `stop` is set (or 60 s passed).
    fn spin_here(busy: usize, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
        (0..busy)
            .map(|_| {
                let stop = Arc::clone(stop);
                std::thread::spawn(move || {
                    let start = Instant::now();
                    while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60)
                    {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect()
    }

    /// Starts an idle lane and gives it work that wants a CPU all the time
    /// (until `stop`, or 60 s).
    fn busy_lane(stop: &Arc<AtomicBool>) -> LaneRuntime {
        let lane = LaneRuntime::start(BulkCpuPriority::Idle).expect("lane");
        let (tx, rx) = std::sync::mpsc::channel();
        lane.handle().spawn(async move { tx.send(()) });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the lane runs");
        assert!(wait_for(Duration::from_secs(5), || {
            let p = lane_policies();
            !p.is_empty() && p.iter().all(|p| *p == 5)
        }));
        let working = Arc::clone(stop);
        lane.handle().spawn(async move {
            let start = Instant::now();
            while !working.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60) {
                std::hint::spin_loop();
            }
        });
        lane
    }

    /// A busy loop in a process of its own (its own process group, killed
    /// whole when dropped; it ends by itself after 60 s).
    struct OtherProgram(std::process::Child);

    impl OtherProgram {
        fn spin() -> Self {
            use std::os::unix::process::CommandExt;
            let child = std::process::Command::new("timeout")
                .args(["60", "sh", "-c", "while :; do :; done"])
                .process_group(0)
                .spawn()
                .expect("sh");
            OtherProgram(child)
        }
    }

    impl Drop for OtherProgram {
        fn drop(&mut self) {
            let group = format!("-{}", self.0.id());
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &group])
                .status();
            let _ = self.0.wait();
        }
    }

    fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    }

    /// One test, so that its phases do not run at once: the other programs
    /// of the second would starve the first.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_lane_starved_by_other_programs_runs_at_normal_priority_but_not_one_starved_by_its_own() {
        let lane_stop = Arc::new(AtomicBool::new(false));
        let lane = busy_lane(&lane_stop);

        // The node's own work (small requests) taking every core is what the
        // idle priority is for: the lane waits.
        let own_stop = Arc::new(AtomicBool::new(false));
        let spinners = spin_here(cores(), &own_stop);
        std::thread::sleep(super::lane_guard::WINDOW * 2 + super::lane_guard::FIRST_HOLD);
        let before = lane.threads().starvations();
        std::thread::sleep(super::lane_guard::WINDOW * 6);
        let (promoted, after) = (lane.threads().promoted(), lane.threads().starvations());
        own_stop.store(true, Ordering::Relaxed);
        for spinner in spinners {
            spinner.join().expect("spinner");
        }
        assert!(
            !promoted && after == before,
            "starved by its own process: {before} -> {after}"
        );

        // Other programs keep every core busy (for at most 60 s).
        let others: Vec<OtherProgram> = (0..cores()).map(|_| OtherProgram::spin()).collect();
        let raised = wait_for(Duration::from_secs(30), || {
            lane.threads().promoted() && lane_policies().iter().all(|p| *p == 0)
        });
        let starvations = lane.threads().starvations() - after;
        drop(others);
        lane_stop.store(true, Ordering::Relaxed);
        assert!(
            raised,
            "the starved lane was raised to normal priority ({starvations} starvations, policies {:?})",
            lane_policies()
        );
        assert!(starvations >= 1);
        // With idle time again, the lane goes back to idle priority once its
        // stay at normal priority is over.
        assert!(wait_for(super::lane_guard::MAX_HOLD * 2, || {
            !lane.threads().promoted() && lane_policies().iter().all(|p| *p == 5)
        }));
    }

    #[test]
    fn bulk_cpu_priorities_read_from_their_names() {
        assert_eq!(
            "idle".parse::<BulkCpuPriority>().ok(),
            Some(BulkCpuPriority::Idle)
        );
        assert_eq!(
            "normal".parse::<BulkCpuPriority>().ok(),
            Some(BulkCpuPriority::Normal)
        );
        let err = "low".parse::<BulkCpuPriority>().expect_err("refused");
        assert!(err.to_string().contains("not \"low\""), "{err}");
    }
}
