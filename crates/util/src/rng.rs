//! The randomness seam. Every random value Hangar draws (ids, secrets, the
//! in-memory network's losses) comes from here: from the operating system's
//! generator, seeded once per thread (a cryptographic generator: secrets and
//! keys are drawn from it too), unless a test or the simulation seeded the
//! calling thread with [`seed_this_thread`], so that a run can be replayed.

use std::cell::RefCell;

use rand::distributions::{Distribution, Standard};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

thread_local! {
    /// A seeded generator for this thread, if a test installed one.
    static SEEDED: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// Makes every draw on the calling thread come from a generator seeded with
/// `seed` (deterministic: the same seed gives the same values), until
/// [`unseed_this_thread`]. For tests and the simulation only.
pub fn seed_this_thread(seed: u64) {
    SEEDED.with(|s| *s.borrow_mut() = Some(StdRng::seed_from_u64(seed)));
}

/// Goes back to the operating system's generator on the calling thread.
pub fn unseed_this_thread() {
    SEEDED.with(|s| *s.borrow_mut() = None);
}

/// Runs `f` with this thread's generator.
pub fn with_rng<T>(f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
    SEEDED.with(|s| match s.borrow_mut().as_mut() {
        Some(seeded) => f(seeded),
        #[allow(clippy::disallowed_methods, reason = "the one real source of the seam")]
        None => f(&mut rand::thread_rng()),
    })
}

/// A random value of type `T`.
pub fn random<T>() -> T
where
    Standard: Distribution<T>,
{
    with_rng(|rng| rng.gen())
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    with_rng(|rng| rng.fill_bytes(buf));
}

/// `true` with probability `p` (clamped to 0..=1).
pub fn chance(p: f64) -> bool {
    with_rng(|rng| rng.gen_bool(p.clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_thread_draws_the_same_values_again() {
        seed_this_thread(7);
        let first: [u64; 4] = random();
        seed_this_thread(7);
        let again: [u64; 4] = random();
        unseed_this_thread();
        let unseeded: [u64; 4] = random();
        assert_eq!(first, again);
        assert_ne!(first, unseeded);
    }
}
