//! Seeded train/val/test split, stratified by label, that never puts one patient in two splits.
//!
//! The greedy assignment follows scikit-learn's `StratifiedGroupKFold(shuffle=True)`: groups
//! (patients; a sample without `patient_id` is its own group) are shuffled with a seeded
//! ChaCha8 generator, then stably sorted by the standard deviation of their per-class counts,
//! largest first, so big and lopsided groups are placed while there is still room. Each group
//! then goes to the split where it most reduces the squared shortfall of every class against
//! that split's target share (`fraction × class total`, class by class as a proportion of the
//! class, so rare grades weigh as much as common ones); in effect, to the split whose label
//! distribution is farthest below its target. scikit-learn balances equal folds; this
//! generalises the criterion to unequal fractions.
use std::collections::HashMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Dataset, DatasetError};

/// Tolerance on the fractions summing to 1.
const SUM_TOLERANCE: f64 = 1e-6;

/// Shares of the data for training, validation and test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    /// Training share.
    pub train: f64,
    /// Validation share.
    pub val: f64,
    /// Test share (may be 0 when a separate test set exists).
    pub test: f64,
}

impl Default for SplitFractions {
    /// 70 % train, 15 % validation, 15 % test.
    fn default() -> Self {
        SplitFractions {
            train: 0.7,
            val: 0.15,
            test: 0.15,
        }
    }
}

impl SplitFractions {
    /// Validated fractions; see [`SplitFractions::validate`].
    pub fn new(train: f64, val: f64, test: f64) -> Result<Self, DatasetError> {
        let f = SplitFractions { train, val, test };
        f.validate()?;
        Ok(f)
    }

    /// Checks each fraction is finite and in `[0, 1]`, the train fraction is positive, and
    /// they sum to 1 (within 1e-6).
    pub fn validate(&self) -> Result<(), DatasetError> {
        let reason = if self.as_array().iter().any(|f| !f.is_finite()) {
            Some("each fraction must be a finite number")
        } else if self.as_array().iter().any(|&f| !(0.0..=1.0).contains(&f)) {
            Some("each fraction must be between 0 and 1")
        } else if self.train <= 0.0 {
            Some("the train fraction must be positive")
        } else if (self.as_array().iter().sum::<f64>() - 1.0).abs() > SUM_TOLERANCE {
            Some("fractions must sum to 1")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(DatasetError::InvalidFractions {
                train: self.train,
                val: self.val,
                test: self.test,
                reason,
            }),
            None => Ok(()),
        }
    }

    fn as_array(&self) -> [f64; 3] {
        [self.train, self.val, self.test]
    }
}

/// Sample indices (into [`Dataset::samples`]) of each split, each list sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Split {
    /// Training samples.
    pub train: Vec<usize>,
    /// Validation samples.
    pub val: Vec<usize>,
    /// Test samples.
    pub test: Vec<usize>,
}

/// Per-split running state of the greedy assignment.
struct Bins {
    /// Target count per split and class: `fraction × class total`.
    target: [Vec<f64>; 3],
    /// Samples assigned so far per split and class.
    count: [Vec<usize>; 3],
    /// Groups assigned per split.
    groups: [Vec<usize>; 3],
    /// Class totals, to express counts as a share of the class.
    totals: Vec<usize>,
}

impl Bins {
    /// Squared shortfall/excess of split `s` against its target, if its counts were `count`
    /// plus `sign × group` (sign ±1).
    fn cost(&self, s: usize, group: &[usize], sign: i64) -> f64 {
        (0..self.totals.len())
            .filter(|&c| self.totals[c] > 0)
            .map(|c| {
                let n = self.count[s][c] as i64 + sign * group[c] as i64;
                let d = (n as f64 - self.target[s][c]) / self.totals[c] as f64;
                d * d
            })
            .sum()
    }

    /// Change in cost of adding `group` to split `s`.
    fn add_delta(&self, s: usize, group: &[usize]) -> f64 {
        self.cost(s, group, 1) - self.cost(s, group, 0)
    }

    fn add(&mut self, s: usize, g: usize, group: &[usize]) {
        for (c, n) in group.iter().enumerate() {
            self.count[s][c] += n;
        }
        self.groups[s].push(g);
    }

    fn remove(&mut self, s: usize, g: usize, group: &[usize]) {
        for (c, n) in group.iter().enumerate() {
            self.count[s][c] -= n;
        }
        self.groups[s].retain(|&x| x != g);
    }

    fn size(&self, s: usize) -> usize {
        self.count[s].iter().sum()
    }
}

/// Population standard deviation (numpy's default `ddof=0`).
fn std_dev(counts: &[usize]) -> f64 {
    let n = counts.len() as f64;
    let mean = counts.iter().sum::<usize>() as f64 / n;
    (counts
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

/// Splits `dataset` into train/val/test by patient, stratified by label (see module docs).
///
/// Deterministic for a given `seed`. Every split with a positive fraction is non-empty: if
/// the greedy pass leaves one empty, the group whose move costs least is taken from the split
/// holding the most groups.
///
/// Errors: [`DatasetError::InvalidFractions`], or [`DatasetError::TooFewGroups`] when there
/// are fewer groups than splits with a positive fraction.
pub fn split(
    dataset: &Dataset,
    fractions: SplitFractions,
    seed: u64,
) -> Result<Split, DatasetError> {
    fractions.validate()?;
    let fractions = fractions.as_array();
    let active: Vec<usize> = (0..3).filter(|&s| fractions[s] > 0.0).collect();

    // Groups in order of first appearance.
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut by_patient: HashMap<&str, usize> = HashMap::new();
    for (i, sample) in dataset.samples.iter().enumerate() {
        match &sample.patient_id {
            Some(p) => {
                let g = *by_patient.entry(p.as_str()).or_insert_with(|| {
                    members.push(Vec::new());
                    members.len() - 1
                });
                members[g].push(i);
            }
            None => members.push(vec![i]),
        }
    }
    if members.len() < active.len() {
        return Err(DatasetError::TooFewGroups {
            dataset: dataset.source.clone(),
            groups: members.len(),
            splits: active.len(),
        });
    }
    let n_classes = dataset.classes.len();
    let group_counts: Vec<Vec<usize>> = members
        .iter()
        .map(|m| {
            let mut c = vec![0; n_classes];
            for &i in m {
                c[dataset.samples[i].label] += 1;
            }
            c
        })
        .collect();

    let mut order: Vec<usize> = (0..members.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let spread: Vec<f64> = group_counts.iter().map(|c| std_dev(c)).collect();
    order.sort_by(|&a, &b| spread[b].total_cmp(&spread[a]));

    let totals = dataset.class_counts();
    let target = fractions.map(|f| totals.iter().map(|&t| f * t as f64).collect());
    let mut bins = Bins {
        target,
        count: std::array::from_fn(|_| vec![0; n_classes]),
        groups: Default::default(),
        totals,
    };
    let n = dataset.samples.len() as f64;
    for &g in &order {
        let counts = &group_counts[g];
        // Ties (e.g. the very first group) go to the split least filled relative to its size.
        let fill = |s: usize| bins.size(s) as f64 / (fractions[s] * n);
        let best = active
            .iter()
            .copied()
            .min_by(|&a, &b| {
                let (da, db) = (bins.add_delta(a, counts), bins.add_delta(b, counts));
                da.total_cmp(&db).then(fill(a).total_cmp(&fill(b)))
            })
            .expect("at least the train split is active");
        bins.add(best, g, counts);
    }

    // Fill any split the greedy pass left empty with the cheapest group from the fullest split.
    for &s in &active {
        if !bins.groups[s].is_empty() {
            continue;
        }
        let donor = *active
            .iter()
            .max_by_key(|&&d| bins.groups[d].len())
            .expect("active splits exist");
        let (g, _) = bins.groups[donor]
            .iter()
            .map(|&g| {
                let c = &group_counts[g];
                let delta = bins.cost(donor, c, -1) - bins.cost(donor, c, 0) + bins.add_delta(s, c);
                (g, delta)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("donor holds at least two groups");
        bins.remove(donor, g, &group_counts[g]);
        bins.add(s, g, &group_counts[g]);
    }

    let [train, val, test] = bins.groups.map(|gs| {
        let mut idx: Vec<usize> = gs
            .iter()
            .flat_map(|&g| members[g].iter().copied())
            .collect();
        idx.sort_unstable();
        idx
    });
    Ok(Split { train, val, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_dev_matches_numpy() {
        // np.std([3, 0, 1, 0, 0]) == 1.16619037896906
        assert!((std_dev(&[3, 0, 1, 0, 0]) - 1.166_190_378_969_06).abs() < 1e-12);
        assert_eq!(std_dev(&[2, 2]), 0.0);
    }

    #[test]
    fn default_fractions_are_valid() {
        assert_eq!(SplitFractions::default().validate().ok(), Some(()));
    }

    #[test]
    fn delta_prefers_split_farthest_below_target() {
        let bins = Bins {
            target: [vec![7.0, 7.0], vec![1.5, 1.5], vec![1.5, 1.5]],
            count: [vec![7, 0], vec![0, 0], vec![0, 0]],
            groups: Default::default(),
            totals: vec![10, 10],
        };
        // One class-0 sample: train is at target, val/test 1.5 short → val/test cheaper.
        let d = [0, 1, 2].map(|s| bins.add_delta(s, &[1, 0]));
        assert!((d[0] - 0.01).abs() < 1e-12, "{d:?}");
        assert!((d[1] - (-0.02)).abs() < 1e-12, "{d:?}");
        // One class-1 sample: train is 7 short, the most of all.
        let d = [0, 1, 2].map(|s| bins.add_delta(s, &[0, 1]));
        assert!((d[0] - (-0.13)).abs() < 1e-12, "{d:?}");
        assert!((d[1] - (-0.02)).abs() < 1e-12, "{d:?}");
    }
}
