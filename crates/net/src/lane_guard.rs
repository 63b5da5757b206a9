//! The starvation guard of the bulk lane.
//!
//! At `SCHED_IDLE` the lane runs only on cycles nobody else wants. On a
//! machine that other programs keep busy at normal priority there are almost
//! none (an idle thread weighs 3 against 1024 for a normal one): the lane
//! still wakes at once for a short task, but a transfer gets a fraction of a
//! percent of a core, and the uploads and reads waiting for it time out
//! (measured: two busy loops on a 2-core machine made a 3 MiB upload through
//! a 4-node cluster fail after 30 s). The guard watches, from a thread of
//! normal priority, how long the lane's threads have waited for a CPU while
//! they had work (the kernel counts it per thread, in `schedstat`), and who
//! used the CPU meanwhile (`/proc/stat` for the machine, `/proc/self/stat`
//! for this process). When they waited for more than [`STARVED_SHARE`] of
//! the last [`WINDOW`], and other programs used more than
//! [`OTHERS_OVER_OWN`] times the CPU this process did, it moves them to
//! normal priority for a while ([`FIRST_HOLD`], doubled each time the lane
//! starves again soon after, up to [`MAX_HOLD`]), then back to idle.
//!
//! The second condition keeps what the idle priority is for: a lane that
//! waits because this node's own small requests take the CPU (or a peer's
//! on the same machine answering them, which is no more than this node's
//! share) should wait. Measured without it, on 2 cores, a bulk transfer
//! between two nodes of one process raised the lane and small requests
//! during it had a p99 of 3–4× idle instead of 1.2–1.4×. While the machine
//! has idle cycles nothing changes; while other programs take them all, bulk
//! transfers get their fair share, as with `rpc_bulk_cpu_priority =
//! "normal"`, instead of next to nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often the guard looks.
pub(crate) const WINDOW: Duration = Duration::from_millis(500);
/// The lane is starved when its threads waited for a CPU for more than this
/// share of a window, in all.
pub(crate) const STARVED_SHARE: f64 = 0.5;
/// The lane is starved by other programs (not by this process) when they
/// used more than this many times the CPU this process did.
pub(crate) const OTHERS_OVER_OWN: u64 = 2;
/// How long the lane first stays at normal priority once found starved.
pub(crate) const FIRST_HOLD: Duration = Duration::from_secs(1);
/// The longest stay at normal priority.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(30);

/// One lane thread, as the scheduler knows it.
#[derive(Clone, Copy)]
struct LaneThread {
    /// For `pthread_setschedparam`.
    #[cfg(target_os = "linux")]
    native: thread_priority::ThreadId,
    /// The kernel's id, for `/proc/self/task/<tid>/schedstat`.
    tid: Option<u32>,
}

/// The lane's threads, as they start and stop, and how they are treated.
#[derive(Default)]
pub(crate) struct LaneThreads {
    /// Locked while a thread registers, leaves, or has its priority changed,
    /// so that the guard never touches a thread that has exited.
    threads: Mutex<Vec<LaneThread>>,
    /// Whether the lane runs at normal priority for now.
    promoted: AtomicBool,
    /// How many times the guard found the lane starved.
    starvations: AtomicU64,
}

impl LaneThreads {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LaneThread>> {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the calling thread, a lane thread that has just lowered its
    /// priority; it takes the lane's current priority.
    pub(crate) fn enter(&self) {
        let mut threads = self.lock();
        let me = LaneThread::current();
        if self.promoted.load(Ordering::Relaxed) {
            me.set_policy(false);
        }
        threads.push(me);
    }

    /// Unregisters the calling thread, which is about to exit.
    pub(crate) fn leave(&self) {
        let me = LaneThread::current();
        self.lock().retain(|t| t.tid != me.tid);
    }

    /// Moves every lane thread to normal priority (`promote`) or back to idle.
    fn set_all(&self, promote: bool) {
        let threads = self.lock();
        self.promoted.store(promote, Ordering::Relaxed);
        for thread in threads.iter() {
            thread.set_policy(!promote);
        }
    }

    /// How long, in all, the lane's threads have waited for a CPU while
    /// runnable since they started, in nanoseconds; `None` where the system
    /// does not say.
    fn waited_ns(&self) -> Option<u64> {
        let tids: Vec<Option<u32>> = self.lock().iter().map(|t| t.tid).collect();
        tids.into_iter().try_fold(0u64, |sum, tid| {
            let stat = std::fs::read_to_string(format!("/proc/self/task/{}/schedstat", tid?));
            // `cpu time`, `wait time` and `time slices`; a thread that just
            // exited counts nothing.
            let waited = stat.ok().map_or(Some(0), |s| {
                s.split_whitespace().nth(1).and_then(|w| w.parse().ok())
            })?;
            Some(sum.saturating_add(waited))
        })
    }

    /// How many times the lane was found starved and raised to normal
    /// priority.
    #[cfg(test)]
    pub(crate) fn starvations(&self) -> u64 {
        self.starvations.load(Ordering::Relaxed)
    }

    /// Whether the lane runs at normal priority for now.
    #[cfg(test)]
    pub(crate) fn promoted(&self) -> bool {
        self.promoted.load(Ordering::Relaxed)
    }
}

impl LaneThread {
    /// The calling thread.
    fn current() -> Self {
        // "<pid>/task/<tid>"
        let tid = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name()?.to_str()?.parse().ok());
        LaneThread {
            #[cfg(target_os = "linux")]
            native: thread_priority::thread_native_id(),
            tid,
        }
    }

    /// Moves the thread to `SCHED_IDLE` (`idle`) or to `SCHED_OTHER` at its
    /// nice value (which `SCHED_IDLE` kept: the process's); logs if the system
    /// refuses.
    #[cfg(target_os = "linux")]
    fn set_policy(self, idle: bool) {
        use thread_priority::{
            set_thread_priority_and_policy, NormalThreadSchedulePolicy, ThreadPriority,
            ThreadPriorityOsValue, ThreadSchedulePolicy,
        };
        let policy = if idle {
            NormalThreadSchedulePolicy::Idle
        } else {
            NormalThreadSchedulePolicy::Other
        };
        // For normal policies the crate sets the thread's policy through
        // `pthread_setschedparam`, then the nice value of the *calling*
        // thread (the guard, or the lane thread itself): 0, as they started.
        let nice_zero = ThreadPriority::Os(ThreadPriorityOsValue::default());
        if let Err(e) = set_thread_priority_and_policy(
            self.native,
            nice_zero,
            ThreadSchedulePolicy::Normal(policy),
        ) {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if WARNED.swap(true, Ordering::Relaxed) {
                tracing::debug!("changing the CPU priority of the bulk lane failed: {e:?}");
            } else {
                tracing::warn!("changing the CPU priority of the bulk lane failed: {e:?}");
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn set_policy(self, _idle: bool) {}
}

/// Starts the guard of the lane whose threads register in `threads`, if the
/// system says how long threads wait for a CPU. It ends once `stop` is set.
pub(crate) fn start(threads: Arc<LaneThreads>, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    if std::fs::metadata("/proc/thread-self/schedstat").is_err() {
        tracing::debug!("no schedstat: the bulk lane runs without its starvation guard");
        return Ok(());
    }
    std::thread::Builder::new()
        .name("hangar-bulk-guard".into())
        .spawn(move || watch(&threads, &stop))
        .map(drop)
}

/// CPU time used so far, in clock ticks: by the whole machine (every core,
/// every program) and by this process.
#[derive(Clone, Copy)]
struct CpuUse {
    machine: u64,
    own: u64,
}

impl CpuUse {
    /// Reads `/proc/stat` and `/proc/self/stat`; `None` where they cannot be
    /// read.
    fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        // "cpu  user nice system idle iowait irq softirq steal ..."
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let busy = [0, 1, 2, 5, 6, 7]
            .iter()
            .map(|&i| fields.get(i).copied().unwrap_or(0))
            .sum();
        let me = std::fs::read_to_string("/proc/self/stat").ok()?;
        // After the command name, which ends with the last ')': utime and
        // stime are fields 14 and 15 of the line.
        let after: Vec<&str> = me.get(me.rfind(')')? + 2..)?.split(' ').collect();
        let own =
            after.get(14 - 3)?.parse::<u64>().ok()? + after.get(15 - 3)?.parse::<u64>().ok()?;
        Some(CpuUse { machine: busy, own })
    }

    /// Whether, between `self` and `later`, other programs used more than
    /// [`OTHERS_OVER_OWN`] times the CPU this process did.
    fn others_dominate(self, later: CpuUse) -> bool {
        let machine = later.machine.saturating_sub(self.machine);
        let own = later.own.saturating_sub(self.own);
        machine.saturating_sub(own) > OTHERS_OVER_OWN * own
    }
}

/// The guard's loop. It watches the operating system's scheduler, in its
/// time.
#[allow(
    clippy::disallowed_methods,
    reason = "the scheduler's time is real time"
)]
fn watch(threads: &LaneThreads, stop: &AtomicBool) {
    let mut hold = FIRST_HOLD;
    let mut promoted_until: Option<Instant> = None;
    let mut last_starved: Option<Instant> = None;
    let mut waited_before = threads.waited_ns();
    let mut cpu_before = CpuUse::now();
    let starved_ns = WINDOW.as_secs_f64() * 1e9 * STARVED_SHARE;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(WINDOW);
        let now = Instant::now();
        let waited = threads.waited_ns();
        let window_wait = match (waited_before, waited) {
            (Some(before), Some(after)) => after.saturating_sub(before),
            _ => 0,
        };
        waited_before = waited;
        let cpu = CpuUse::now();
        let by_others = matches!((cpu_before, cpu), (Some(b), Some(a)) if b.others_dominate(a));
        cpu_before = cpu;
        #[expect(clippy::cast_precision_loss, reason = "a share of half a second")]
        let starved = window_wait as f64 > starved_ns && by_others;
        if starved && promoted_until.is_none() {
            // Starving again soon after the last stay: stay longer this time.
            hold = match last_starved {
                Some(at) if now.duration_since(at) < hold * 4 => (hold * 2).min(MAX_HOLD),
                _ => FIRST_HOLD,
            };
            last_starved = Some(now);
            threads.starvations.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                waited_ms = window_wait / 1_000_000,
                hold_ms = hold.as_millis(),
                "bulk lane starved: running it at normal priority for a while"
            );
            threads.set_all(true);
            promoted_until = Some(now + hold);
        } else if promoted_until.is_some_and(|until| now >= until) {
            threads.set_all(false);
            promoted_until = None;
        }
    }
    if promoted_until.is_some() {
        threads.set_all(false);
    }
}
