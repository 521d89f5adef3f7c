//! The one error type of the metrics module.

/// Why a metric could not be computed from the given input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Two inputs that pair up element by element have different lengths.
    #[error("length mismatch: {left_name} has {left} entries but {right_name} has {right}")]
    LengthMismatch {
        /// Name of the first input.
        left_name: &'static str,
        /// Length of the first input.
        left: usize,
        /// Name of the second input.
        right_name: &'static str,
        /// Length of the second input.
        right: usize,
    },
    /// There is nothing to compute the metric from (the field names what is missing).
    #[error("empty input: no {0}")]
    Empty(&'static str),
    /// Fewer items than the statistic needs (e.g. DeLong's variance needs two of each class).
    #[error("too few {what}: need at least {need}, got {got}")]
    TooFew {
        /// What is counted.
        what: &'static str,
        /// The minimum required.
        need: usize,
        /// How many there are.
        got: usize,
    },
    /// A class label is not below the number of classes.
    #[error("label {label} at index {index} is out of range for {n_classes} classes")]
    LabelOutOfRange {
        /// Position of the label in its input.
        index: usize,
        /// The offending label.
        label: usize,
        /// Number of classes the labels must be below.
        n_classes: usize,
    },
    /// A ROC curve or AUC needs at least one positive and one negative sample.
    #[error(
        "ROC/AUC is undefined with only one class present: \
         {positives} positive and {negatives} negative samples"
    )]
    OneClassOnly {
        /// Number of positive samples.
        positives: usize,
        /// Number of negative samples.
        negatives: usize,
    },
    /// A one-vs-rest AUC needs every class to occur in the true labels.
    #[error("one-vs-rest AUC is undefined: class {class} never occurs in the true labels")]
    ClassAbsent {
        /// The class with no samples.
        class: usize,
    },
    /// A score is NaN or infinite.
    #[error("score {value} at index {index} is not finite")]
    NonFinite {
        /// Position of the score in its input.
        index: usize,
        /// The offending score.
        value: f64,
    },
    /// A value that must be a probability lies outside `[0, 1]` (or is NaN).
    #[error("value {value} at index {index} is outside [0, 1]")]
    OutsideUnitInterval {
        /// Position of the value in its input.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A parameter (not data) is invalid.
    #[error("invalid {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What it must satisfy.
        reason: &'static str,
    },
    /// The metric has a zero denominator for this input (e.g. kappa when both raters use one class).
    #[error("{0} is undefined for this input (zero denominator)")]
    Undefined(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_is_wrong() {
        let e = MetricsError::LengthMismatch {
            left_name: "labels",
            left: 3,
            right_name: "scores",
            right: 4,
        };
        assert_eq!(
            e.to_string(),
            "length mismatch: labels has 3 entries but scores has 4"
        );
        let e = MetricsError::OneClassOnly {
            positives: 0,
            negatives: 12,
        };
        assert_eq!(
            e.to_string(),
            "ROC/AUC is undefined with only one class present: 0 positive and 12 negative samples"
        );
        assert_eq!(
            MetricsError::Empty("samples").to_string(),
            "empty input: no samples"
        );
    }
}
