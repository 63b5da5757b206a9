//! Small statistics helpers: nearest-rank percentiles over a sorted vector and
//! min/median/max summaries of repeated runs.
//!
//! A sorted `Vec` is enough here: a bounded run records at most 10 million
//! samples (80 MB of `f64`), sorted once at the end.

use serde::Serialize;

/// Rounds to three decimals so the JSON stays readable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Nearest-rank percentile `p` (0..=100) of `sorted` (ascending); 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    sorted.get(idx).copied().unwrap_or(0.0)
}

/// Sorts samples ascending (NaN-free input assumed; NaNs sort last).
pub fn sort_samples(samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Latency {
    /// Percentiles of `sorted` (ascending, milliseconds).
    pub fn of_sorted(sorted: &[f64]) -> Self {
        Self {
            p50: round3(percentile(sorted, 50.0)),
            p90: round3(percentile(sorted, 90.0)),
            p99: round3(percentile(sorted, 99.0)),
            max: round3(sorted.last().copied().unwrap_or(0.0)),
        }
    }
}

/// Time-to-first-byte percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct Ttfb {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Ttfb {
    /// Percentiles of `sorted` (ascending, milliseconds).
    pub fn of_sorted(sorted: &[f64]) -> Self {
        Self {
            p50: round3(percentile(sorted, 50.0)),
            p90: round3(percentile(sorted, 90.0)),
            p99: round3(percentile(sorted, 99.0)),
        }
    }
}

/// Minimum, median and maximum of a few repeated measurements.
#[derive(Debug, Serialize)]
pub struct MinMedMax {
    /// Smallest value.
    pub min: f64,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Largest value.
    pub max: f64,
}

impl MinMedMax {
    /// Summarises `values` (any order); all zero when empty.
    pub fn of(values: &[f64]) -> Self {
        let mut v = values.to_vec();
        sort_samples(&mut v);
        let n = v.len();
        let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
        let median = if n == 0 {
            0.0
        } else if n % 2 == 1 {
            at(n / 2)
        } else {
            (at(n / 2 - 1) + at(n / 2)) / 2.0
        };
        Self {
            min: round3(at(0)),
            median: round3(median),
            max: round3(if n == 0 { 0.0 } else { at(n - 1) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 90.0), 90.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn min_median_max() {
        let s = MinMedMax::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = MinMedMax::of(&[4.0, 1.0, 2.0, 3.0]);
        assert_eq!(s.median, 2.5);
    }
}
