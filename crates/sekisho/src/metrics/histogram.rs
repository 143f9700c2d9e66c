//! Latency histograms with fixed, roughly logarithmic buckets (1-2-5 steps from 1 ms to 30 s, then one
//! overflow bucket). Percentiles read from a histogram are the upper bound of the bucket holding that rank:
//! at most one step (×2.5) above the true value, never below it.

/// Upper bounds (inclusive) of every bucket but the last, which holds everything slower.
pub const BOUNDS_MS: [u64; 14] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000,
];
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

pub fn bucket_of(latency_ms: u64) -> usize {
    BOUNDS_MS
        .iter()
        .position(|bound| latency_ms <= *bound)
        .unwrap_or(BOUNDS_MS.len())
}

/// The `q`-quantile (0 < q ≤ 1) of the histogram, as its bucket's upper bound in ms; the overflow bucket
/// reports the last bound. `None` for an empty histogram.
pub fn percentile(counts: &[u64; BUCKETS], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (bucket, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return BOUNDS_MS.get(bucket).or(BOUNDS_MS.last()).copied();
        }
    }
    BOUNDS_MS.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_into_the_bucket_of_their_upper_bound() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(30_000), 13);
        assert_eq!(bucket_of(30_001), 14);
        assert_eq!(bucket_of(u64::MAX), 14);
    }

    #[test]
    fn percentiles_are_the_bound_of_the_bucket_holding_the_rank() {
        let mut counts = [0; BUCKETS];
        assert_eq!(percentile(&counts, 0.5), None);
        // 98 fast requests (≤ 5 ms), one at 150 ms, one at 40 s.
        counts[bucket_of(4)] = 98;
        counts[bucket_of(150)] = 1;
        counts[bucket_of(40_000)] = 1;
        assert_eq!(percentile(&counts, 0.5), Some(5));
        assert_eq!(percentile(&counts, 0.98), Some(5));
        assert_eq!(percentile(&counts, 0.99), Some(200));
        assert_eq!(percentile(&counts, 1.0), Some(30_000));
        let mut one = [0; BUCKETS];
        one[bucket_of(700)] = 1;
        assert_eq!(percentile(&one, 0.01), Some(1_000));
        assert_eq!(percentile(&one, 0.99), Some(1_000));
    }
}
