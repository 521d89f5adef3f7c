//! A point estimate with a 95 % interval, and the Wilson score interval for proportions.

use serde::{Deserialize, Serialize};

use super::MetricsError;

/// The standard normal quantile for a two-sided 95 % interval, `Φ⁻¹(0.975)`
/// (`scipy.stats.norm.ppf(0.975)`).
pub const Z_95: f64 = 1.959963984540054;

/// A point estimate with its two-sided 95 % interval, `lo <= estimate <= hi`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The point estimate (e.g. the observed proportion or the AUC).
    pub estimate: f64,
    /// Lower bound of the 95 % interval.
    pub lo: f64,
    /// Upper bound of the 95 % interval.
    pub hi: f64,
}

impl Interval {
    /// Whether `value` lies in the closed interval `[lo, hi]`.
    pub fn contains(&self, value: f64) -> bool {
        self.lo <= value && value <= self.hi
    }
}

/// The proportion `successes / trials` with its Wilson score 95 % interval.
///
/// Wilson (1927); unlike the normal (Wald) interval it stays inside `[0, 1]` and keeps
/// sensible coverage at 0 or `trials` successes, which screening studies hit routinely
/// (e.g. no missed cases among a handful of severe ones). Equal to statsmodels
/// `proportion_confint(successes, trials, alpha=0.05, method="wilson")`.
///
/// # Errors
/// [`MetricsError::Empty`] when `trials == 0`; [`MetricsError::InvalidParameter`] when
/// `successes > trials`.
pub fn wilson(successes: usize, trials: usize) -> Result<Interval, MetricsError> {
    if trials == 0 {
        return Err(MetricsError::Empty("trials"));
    }
    if successes > trials {
        return Err(MetricsError::InvalidParameter {
            name: "successes",
            reason: "must not exceed the number of trials",
        });
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z_95 * Z_95;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // At 0 or `trials` successes the bound is exactly 0 or 1 in exact arithmetic; pin it so
    // rounding cannot put the estimate outside its own interval.
    let lo = if successes == 0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let hi = if successes == trials {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Ok(Interval {
        estimate: p,
        lo,
        hi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    // from statsmodels.stats.proportion import proportion_confint
    // for k, n in ((6, 7), (10, 17), (0, 12), (12, 12), (1, 1), (37, 250)):
    //     print(k, n, *proportion_confint(k, n, alpha=0.05, method='wilson'))
    // 6 7 0.4868721707256809 0.9743203756552563
    // 10 17 0.3600544264299978 0.7838894320978518
    // 0 12 0.0 0.24249400665524096
    // 12 12 0.7575059933447589 0.9999999999999999
    // 1 1 0.2065493143772374 1.0
    // 37 250 0.10931982398325643 0.19733401886153654
    #[test]
    fn wilson_matches_statsmodels() {
        let cases = [
            (6, 7, 0.4868721707256809, 0.9743203756552563),
            (10, 17, 0.3600544264299978, 0.7838894320978518),
            (0, 12, 0.0, 0.24249400665524096),
            (12, 12, 0.7575059933447589, 0.9999999999999999),
            (1, 1, 0.2065493143772374, 1.0),
            (37, 250, 0.10931982398325643, 0.19733401886153654),
        ];
        for (k, n, lo, hi) in cases {
            let iv = wilson(k, n).unwrap();
            assert_eq!(iv.estimate, k as f64 / n as f64);
            assert!(close(iv.lo, lo, 1e-12), "{k}/{n}: lo {} vs {lo}", iv.lo);
            assert!(close(iv.hi, hi, 1e-12), "{k}/{n}: hi {} vs {hi}", iv.hi);
            assert!(iv.contains(iv.estimate));
        }
    }

    #[test]
    fn wilson_rejects_impossible_counts() {
        assert_eq!(wilson(0, 0), Err(MetricsError::Empty("trials")));
        assert!(matches!(
            wilson(5, 4),
            Err(MetricsError::InvalidParameter {
                name: "successes",
                ..
            })
        ));
    }

    #[test]
    fn interval_round_trips_through_json() {
        let iv = wilson(10, 17).unwrap();
        let json = serde_json::to_string(&iv).unwrap();
        assert!(json.starts_with("{\"estimate\":"), "{json}");
        let back: Interval = serde_json::from_str(&json).unwrap();
        assert_eq!(back, iv);
    }
}
