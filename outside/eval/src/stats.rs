//! Confidence intervals for the evaluation's proportions.
//!
//! - [`wilson`]: the Wilson score interval of `k` successes in `n` independent trials
//!   (tone accuracy: one label per sentence).
//! - [`cluster_bootstrap`]: a percentile bootstrap of a ratio `Σk / Σn` over clusters
//!   resampled with replacement (key-point recall: the key points of one thread are not
//!   independent, so threads are resampled, not key points). Deterministic: a fixed seed,
//!   so the same set and the same outputs print the same interval.
//!
//! Both are standard; they are a few lines each, so they are written here rather than
//! pulling a statistics crate into the workspace.

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A two-sided 95 % interval `(low, high)`.
pub type Interval = (f64, f64);

/// The Wilson score interval (95 %) of `k` successes in `n` trials; `(0, 1)` when `n == 0`.
pub fn wilson(k: usize, n: usize) -> Interval {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// SplitMix64: a tiny deterministic generator for resampling (not for secrets).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The 95 % percentile-bootstrap interval of `Σk / Σn` over `clusters` of `(k, n)`,
/// resampling clusters with replacement 2,000 times; `(0, 1)` for an empty set.
pub fn cluster_bootstrap(clusters: &[(usize, usize)]) -> Interval {
    const ROUNDS: usize = 2000;
    if clusters.is_empty() {
        return (0.0, 1.0);
    }
    let mut rng = SplitMix(0x636c_6f69_7374_6572); // "cloister"
    let mut ratios = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let (mut k, mut n) = (0usize, 0usize);
        for _ in 0..clusters.len() {
            let (ck, cn) = clusters[rng.below(clusters.len())];
            k += ck;
            n += cn;
        }
        ratios.push(if n == 0 { 1.0 } else { k as f64 / n as f64 });
    }
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((q * (ROUNDS - 1) as f64).round() as usize).min(ROUNDS - 1)];
    (at(0.025), at(0.975))
}

/// `0.52 [0.44, 0.60]`.
pub fn show(value: f64, interval: Interval) -> String {
    format!("{value:.3} [95% CI {:.3}, {:.3}]", interval.0, interval.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 8 of 10: the Wilson interval is [0.490, 0.943].
        let (lo, hi) = wilson(8, 10);
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
        // 0 of 20 and 20 of 20 stay inside [0, 1] and are not degenerate.
        let (lo, hi) = wilson(0, 20);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.1 && hi < 0.2, "{hi}");
        let (lo, hi) = wilson(20, 20);
        assert!(lo > 0.8 && lo < 0.9 && hi == 1.0, "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }

    #[test]
    fn the_bootstrap_brackets_the_ratio_and_is_deterministic() {
        let clusters: Vec<(usize, usize)> = (0..40).map(|i| (i % 5, 5)).collect();
        let k: usize = clusters.iter().map(|c| c.0).sum();
        let n: usize = clusters.iter().map(|c| c.1).sum();
        let ratio = k as f64 / n as f64;
        let (lo, hi) = cluster_bootstrap(&clusters);
        assert!(lo < ratio && ratio < hi, "{lo} {ratio} {hi}");
        assert!(hi - lo < 0.3, "{lo} {hi}");
        assert_eq!(cluster_bootstrap(&clusters), (lo, hi));
        // No spread, no width.
        assert_eq!(cluster_bootstrap(&[(3, 4), (3, 4)]), (0.75, 0.75));
        assert_eq!(cluster_bootstrap(&[]), (0.0, 1.0));
    }
}
