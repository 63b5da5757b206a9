//! Time seams. Last-writer-wins timestamps come from a hybrid logical clock:
//! wall-clock milliseconds, but never behind a timestamp this node has already
//! issued or observed, so a write that causally follows another always wins.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait WallClock: Send + Sync + 'static {
    /// Current wall time in milliseconds.
    fn now_msec(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    #[allow(clippy::disallowed_methods)] // the one real implementation of the seam
    fn now_msec(&self) -> u64 {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A manually driven clock for tests and simulation.
#[derive(Debug, Default)]
pub struct ManualWallClock(AtomicU64);

impl ManualWallClock {
    /// A clock reading `msec`.
    pub fn new(msec: u64) -> Self {
        ManualWallClock(AtomicU64::new(msec))
    }
    /// Moves the clock forward by `msec`.
    pub fn advance(&self, msec: u64) {
        self.0.fetch_add(msec, Ordering::SeqCst);
    }
}

impl WallClock for ManualWallClock {
    fn now_msec(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Hybrid logical clock: the timestamps it issues strictly increase and are never
/// below any timestamp passed to [`Clock::observe`].
#[derive(Clone)]
pub struct Clock {
    wall: Arc<dyn WallClock>,
    last: Arc<AtomicU64>,
}

impl Clock {
    /// A clock over the given wall clock.
    pub fn new(wall: Arc<dyn WallClock>) -> Self {
        Clock {
            wall,
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A clock over the system's wall clock.
    pub fn system() -> Self {
        Self::new(Arc::new(SystemWallClock))
    }

    /// Wall-clock milliseconds, for expiry and grace delays (not for ordering).
    pub fn wall_msec(&self) -> u64 {
        self.wall.now_msec()
    }

    /// A fresh timestamp: greater than every timestamp issued or observed so far.
    pub fn now(&self) -> u64 {
        let wall = self.wall.now_msec();
        let mut prev = self.last.load(Ordering::SeqCst);
        loop {
            let next = wall.max(prev + 1);
            match self
                .last
                .compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    /// Records a timestamp seen from elsewhere so later [`Clock::now`] calls exceed it.
    pub fn observe(&self, ts: u64) {
        self.last.fetch_max(ts, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("last", &self.last.load(Ordering::SeqCst))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_strictly_increase_even_when_wall_clock_stalls() {
        let wall = Arc::new(ManualWallClock::new(1000));
        let clock = Clock::new(wall.clone());
        let a = clock.now();
        let b = clock.now();
        assert!(b > a);
        wall.advance(5000);
        assert_eq!(clock.now(), 6000);
    }

    #[test]
    fn observed_timestamps_are_exceeded() {
        let clock = Clock::new(Arc::new(ManualWallClock::new(10)));
        clock.observe(1_000_000);
        assert!(clock.now() > 1_000_000);
    }
}
