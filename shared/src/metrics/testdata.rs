//! Shared test data sets for the metrics unit tests (the Python snippets repeat them).

/// Five DR grades, imbalanced (12/6/6/3/3 samples).
pub const Y_TRUE: [usize; 30] = [
    1, 1, 0, 4, 2, 3, 1, 0, 4, 2, 2, 1, 0, 3, 2, 0, 0, 0, 0, 1, 0, 1, 2, 0, 4, 3, 0, 2, 0, 0,
];

/// Argmax of [`PROBS`].
pub const Y_PRED: [usize; 30] = [
    1, 1, 2, 4, 2, 3, 1, 0, 4, 0, 2, 2, 0, 3, 2, 0, 1, 0, 0, 1, 0, 0, 2, 0, 4, 1, 0, 1, 0, 0,
];

/// Per-sample class probabilities for [`Y_TRUE`], rows summing to 1, two decimals (so
/// columns have ties). Generated once with
/// `rng = np.random.default_rng(7); logits = rng.normal(size=(30,5)) + 1.5*np.eye(5)[y]`,
/// softmax, rounded.
pub const PROBS: [[f64; 5]; 30] = [
    [0.03, 0.71, 0.14, 0.10, 0.02],
    [0.09, 0.63, 0.16, 0.03, 0.09],
    [0.26, 0.07, 0.45, 0.07, 0.15],
    [0.25, 0.06, 0.09, 0.11, 0.49],
    [0.01, 0.05, 0.82, 0.01, 0.11],
    [0.06, 0.03, 0.39, 0.51, 0.01],
    [0.08, 0.62, 0.06, 0.15, 0.09],
    [0.57, 0.28, 0.03, 0.08, 0.04],
    [0.08, 0.02, 0.04, 0.06, 0.80],
    [0.42, 0.04, 0.27, 0.26, 0.01],
    [0.03, 0.05, 0.79, 0.10, 0.03],
    [0.07, 0.34, 0.45, 0.06, 0.08],
    [0.68, 0.09, 0.09, 0.03, 0.11],
    [0.05, 0.27, 0.16, 0.36, 0.16],
    [0.07, 0.28, 0.44, 0.18, 0.03],
    [0.81, 0.02, 0.02, 0.09, 0.06],
    [0.31, 0.56, 0.03, 0.03, 0.07],
    [0.58, 0.07, 0.06, 0.16, 0.13],
    [0.31, 0.18, 0.20, 0.07, 0.24],
    [0.03, 0.78, 0.08, 0.07, 0.04],
    [0.66, 0.02, 0.05, 0.24, 0.03],
    [0.30, 0.10, 0.27, 0.05, 0.28],
    [0.05, 0.01, 0.71, 0.19, 0.04],
    [0.41, 0.10, 0.05, 0.37, 0.07],
    [0.05, 0.03, 0.03, 0.02, 0.87],
    [0.11, 0.35, 0.14, 0.30, 0.10],
    [0.49, 0.19, 0.13, 0.14, 0.05],
    [0.05, 0.54, 0.24, 0.04, 0.13],
    [0.91, 0.01, 0.04, 0.03, 0.01],
    [0.70, 0.07, 0.08, 0.04, 0.11],
];

/// Binary screening set: 7 positives among 24, scores with ties across classes
/// (0.8, 0.4 and 0.35 each occur for a positive and a negative).
pub const BIN_LABELS: [bool; 24] = [
    true, false, false, true, false, false, false, true, false, false, true, false, false, false,
    true, false, false, true, false, false, false, true, false, false,
];

/// Scores for [`BIN_LABELS`].
pub const BIN_SCORES: [f64; 24] = [
    0.9, 0.1, 0.4, 0.35, 0.8, 0.4, 0.2, 0.7, 0.05, 0.6, 0.4, 0.3, 0.55, 0.1, 0.8, 0.25, 0.15, 0.65,
    0.4, 0.3, 0.5, 0.95, 0.2, 0.35,
];

/// Row-major copy of [`PROBS`].
pub fn probs_flat() -> Vec<f64> {
    PROBS.iter().flatten().copied().collect()
}

/// `labels` as `bool`s from 0/1 integers (keeps the literal data short).
pub fn bools(bits: &[u8]) -> Vec<bool> {
    bits.iter().map(|&b| b == 1).collect()
}
