//! Epoch order: a seeded shuffle, or class-balanced sampling with replacement.
use rand::SeedableRng;
use rand::distr::{Distribution, weighted::WeightedIndex};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The RNG of one epoch: the run's seed and the epoch number give the stream.
pub fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64 + 1);
    rng
}

/// Item order for one epoch (`labels.len()` draws either way).
///
/// `balanced`: each item is drawn with probability ∝ 1 / (its class's count), so every class
/// is seen equally often on average (torch `WeightedRandomSampler` with inverse-frequency weights).
pub fn epoch_order(labels: &[usize], balanced: bool, rng: &mut ChaCha8Rng) -> Vec<usize> {
    if !balanced {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.shuffle(rng);
        return order;
    }
    let classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut counts = vec![0usize; classes];
    for &l in labels {
        counts[l] += 1;
    }
    let weights: Vec<f64> = labels.iter().map(|&l| 1.0 / counts[l] as f64).collect();
    let dist = WeightedIndex::new(&weights).expect("labels are non-empty and weights positive");
    (0..labels.len()).map(|_| dist.sample(rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let labels = vec![0; 50];
        let a = epoch_order(&labels, false, &mut epoch_rng(1, 0));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(&labels, false, &mut epoch_rng(1, 0)));
        assert_ne!(a, epoch_order(&labels, false, &mut epoch_rng(1, 1)));
    }

    #[test]
    fn balanced_sampling_evens_out_a_9_to_1_imbalance() {
        // 900 of class 0, 100 of class 1: over 20 epochs class 1 should be ≈ 50 % of draws.
        let labels: Vec<usize> = (0..1000).map(|i| (i >= 900) as usize).collect();
        let mut ones = 0;
        for e in 0..20 {
            ones += epoch_order(&labels, true, &mut epoch_rng(7, e))
                .iter()
                .filter(|&&i| labels[i] == 1)
                .count();
        }
        let share = ones as f64 / 20_000.0;
        // Binomial sd over 20 000 draws: 0.0035; 0.02 is more than five of them.
        assert!((share - 0.5).abs() < 0.02, "{share}");
    }
}
