//! The subgroup table: for every subgroup column (sex, age band, camera, site, …) and each of
//! its values, n, sensitivity and specificity at the operating threshold (Wilson intervals)
//! and AUC (DeLong), with a flag where a group's sensitivity trails the overall one.
//!
//! **Flag rule:** a group is flagged when its sensitivity is more than `margin` below the
//! overall sensitivity *and* the two 95 % intervals do not overlap (group upper bound below
//! the overall lower bound). The first condition alone flags noise in small groups; the
//! second alone flags clinically irrelevant gaps in huge ones.
use serde::{Deserialize, Serialize};
use shared::metrics::{BinaryCounts, Interval, auc_delong};

/// One value of a subgroup column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubgroupRow {
    /// The value, e.g. `cam_b` or `60-69`.
    pub value: String,
    /// Gradable images of the group.
    pub n: usize,
    /// Counts at the operating threshold.
    pub counts: BinaryCounts,
    /// Sensitivity with its Wilson interval; `None` without positives.
    pub sensitivity: Option<Interval>,
    /// Specificity with its Wilson interval; `None` without negatives.
    pub specificity: Option<Interval>,
    /// AUC with its DeLong interval; `None` unless there are two positives and two negatives.
    pub auc: Option<Interval>,
    /// Sensitivity trails the overall by more than the margin, intervals apart.
    pub flagged: bool,
}

/// One subgroup column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubgroupTable {
    /// Manifest column name.
    pub column: String,
    /// One row per value, sorted by value.
    pub rows: Vec<SubgroupRow>,
}

/// Whether `group` sensitivity trails `overall` by more than `margin` with intervals that do
/// not overlap.
pub fn trails(overall: &Interval, group: &Interval, margin: f64) -> bool {
    group.estimate < overall.estimate - margin && group.hi < overall.lo
}

/// The table of `column`: `values[i]` is image `i`'s value (`None`: not recorded, left out),
/// `labels` / `scores` the gradable images' truth and positive score, `threshold` the
/// operating threshold and `overall` the overall sensitivity.
pub fn table(
    column: &str,
    values: &[Option<&str>],
    labels: &[bool],
    scores: &[f64],
    threshold: f64,
    overall: &Interval,
    margin: f64,
) -> SubgroupTable {
    let mut keys: Vec<&str> = values.iter().flatten().copied().collect();
    keys.sort_unstable();
    keys.dedup();
    let rows = keys
        .into_iter()
        .map(|value| {
            let (l, s): (Vec<bool>, Vec<f64>) = values
                .iter()
                .zip(labels.iter().zip(scores))
                .filter(|(v, _)| **v == Some(value))
                .map(|(_, (&l, &s))| (l, s))
                .unzip();
            let counts =
                BinaryCounts::from_scores(&l, &s, threshold).expect("equal lengths, finite scores");
            let sensitivity = counts.sensitivity().ok();
            SubgroupRow {
                value: value.to_string(),
                n: l.len(),
                counts,
                sensitivity,
                specificity: counts.specificity().ok(),
                auc: auc_delong(&l, &s).ok(),
                flagged: sensitivity.is_some_and(|g| trails(overall, &g, margin)),
            }
        })
        .collect();
    SubgroupTable {
        column: column.to_string(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::metrics::wilson;

    #[test]
    fn trailing_needs_both_the_margin_and_separate_intervals() {
        let overall = wilson(180, 200).unwrap(); // 0.90, [0.851, 0.934]
        // 10 points lower but a small group: intervals overlap, no flag.
        assert!(!trails(&overall, &wilson(8, 10).unwrap(), 0.05));
        // 30 points lower in 100 positives: flagged.
        assert!(trails(&overall, &wilson(60, 100).unwrap(), 0.05));
        // Intervals apart but within the margin: not flagged.
        let big = wilson(9000, 10000).unwrap();
        assert!(!trails(&big, &wilson(8700, 10000).unwrap(), 0.05));
    }

    #[test]
    fn rows_count_each_value_and_skip_missing_values() {
        let values = [
            Some("a"),
            Some("a"),
            Some("b"),
            None,
            Some("b"),
            Some("a"),
            Some("a"),
        ];
        let labels = [true, false, true, true, false, true, false];
        let scores = [0.9, 0.2, 0.3, 0.8, 0.1, 0.6, 0.4];
        let overall = wilson(3, 4).unwrap();
        let t = table("cam", &values, &labels, &scores, 0.5, &overall, 0.05);
        assert_eq!(t.rows.len(), 2);
        let a = &t.rows[0];
        assert_eq!((a.value.as_str(), a.n), ("a", 4));
        assert_eq!(
            a.counts,
            BinaryCounts {
                tp: 2,
                fp: 0,
                tn: 2,
                fn_: 0
            }
        );
        assert_eq!(a.sensitivity.unwrap().estimate, 1.0);
        assert_eq!(a.auc.unwrap().estimate, 1.0);
        let b = &t.rows[1];
        assert_eq!((b.n, b.counts.fn_, b.counts.tn), (2, 1, 1));
        assert_eq!(b.sensitivity.unwrap().estimate, 0.0);
        // One positive and one negative: DeLong needs two of each, so no AUC.
        assert_eq!(b.auc, None);
        // 0 of 1 against 3 of 4: 75 points behind, but the intervals overlap.
        assert!(!b.flagged);
    }
}
