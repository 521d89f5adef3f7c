//! `Circle`: the valid region of a prepared image, in output pixels.
use serde::{Deserialize, Serialize};

/// A disc in image coordinates (pixel centres at `x + 0.5`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Circle {
    /// Centre column.
    pub cx: f32,
    /// Centre row.
    pub cy: f32,
    /// Radius.
    pub r: f32,
}

impl Circle {
    /// The disc centred in a `side`×`side` image with radius `shrink·side/2`.
    pub fn centred(side: u32, shrink: f32) -> Self {
        let half = side as f32 / 2.0;
        Circle {
            cx: half,
            cy: half,
            r: half * shrink,
        }
    }

    /// Whether the centre of pixel `(x, y)` lies inside.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        let (dx, dy) = (x as f32 + 0.5 - self.cx, y as f32 + 0.5 - self.cy);
        dx * dx + dy * dy <= self.r * self.r
    }

    /// Row-major mask of a `w`×`h` image: true inside.
    pub fn mask(&self, w: u32, h: u32) -> Vec<bool> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| self.contains(x, y)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_mask_area_is_close_to_pi_r_squared() {
        let c = Circle::centred(200, 0.9);
        let area = c.mask(200, 200).iter().filter(|&&m| m).count() as f32;
        let expected = std::f32::consts::PI * 90.0 * 90.0; // 25 446.9
        assert!((area - expected).abs() / expected < 0.01, "{area}");
        assert!(c.contains(100, 100) && !c.contains(0, 0));
    }
}
