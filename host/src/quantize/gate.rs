//! The accuracy gate: the int8 model may lose at most `max_drop` of the task's headline metric
//! (QWK for grading, AUC for referable, accuracy otherwise) against the fp32 model on the
//! run's validation split, both run by tract. Otherwise nothing is written.
use serde::Serialize;

/// Both models' headline metric and the verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gate {
    /// `qwk`, `auc` or `accuracy`.
    pub metric: &'static str,
    /// fp32 model.
    pub fp32: f64,
    /// int8 model.
    pub int8: f64,
    /// The largest drop allowed.
    pub max_drop: f64,
    /// Validation images scored.
    pub images: usize,
}

impl Gate {
    /// fp32 − int8 (negative when the int8 model scores higher).
    pub fn drop(&self) -> f64 {
        self.fp32 - self.int8
    }

    /// Whether the drop is within `max_drop` (a tiny tolerance absorbs float noise in the
    /// subtraction; metric steps on a validation split are far coarser).
    pub fn passes(&self) -> bool {
        self.drop() <= self.max_drop + 1e-12
    }

    /// One line with both numbers.
    pub fn describe(&self) -> String {
        format!(
            "validation {} over {} images: fp32 {:.4}, int8 {:.4}, drop {:.4} (--max-drop {})",
            self.metric,
            self.images,
            self.fp32,
            self.int8,
            self.drop(),
            self.max_drop
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(fp32: f64, int8: f64) -> Gate {
        Gate {
            metric: "qwk",
            fp32,
            int8,
            max_drop: 0.01,
            images: 40,
        }
    }

    #[test]
    fn the_drop_decides() {
        assert!(gate(0.90, 0.895).passes());
        assert!(gate(0.90, 0.89).passes()); // exactly one point
        assert!(!gate(0.90, 0.8899).passes());
        assert!(gate(0.80, 0.85).passes()); // int8 better
        let text = gate(0.9, 0.7).describe();
        assert!(
            text.contains("fp32 0.9000") && text.contains("int8 0.7000"),
            "{text}"
        );
        assert!(text.contains("drop 0.2000"), "{text}");
    }
}
