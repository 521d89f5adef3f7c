//! What screening one image yields: the finding, and the numbers behind it.
use serde::{Deserialize, Serialize};
use shared::quality::Verdict;

/// The screening result shown to the clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// Refer to an ophthalmologist.
    Referable,
    /// No referable disease found by the model at its operating point.
    NotReferable,
    /// The photograph cannot be graded: retake it. Never a negative.
    Ungradable,
}

/// The result of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The finding.
    pub finding: Finding,
    /// The quality gate's verdict (with every reason when ungradable).
    pub quality: Verdict,
    /// Softmax probabilities in class order; absent when ungradable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Vec<f32>>,
    /// The most probable grade, for 5-grade models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<usize>,
    /// Summed probability of the positive classes; absent when ungradable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The operating threshold the score was compared with.
    pub threshold: f32,
}
