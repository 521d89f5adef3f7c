//! `PreprocessConfig`: every preprocessing choice, saved with the weights and read by the device.
use serde::{Deserialize, Serialize};

/// How the photograph is cropped before resizing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Crop {
    /// Fundus photograph: find the circular field of view, crop the square around it and
    /// blacken everything outside the circle (radius scaled by `shrink`, to drop the rim).
    FundusCircle {
        /// Fraction of the detected radius kept (e.g. 0.98).
        shrink: f32,
    },
    /// Any other modality (chest X-ray, …): trim near-black borders, then pad to a square.
    TrimBorder {
        /// Rows/columns whose brightest pixel is at or under this 8-bit level are border.
        threshold: u8,
    },
    /// Use the whole image, padded to a square with black.
    None,
}

/// How pixel values are mapped to model inputs (per channel, after any Graham step).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Normalize {
    /// `x / 255` into `[0, 1]`.
    UnitRange,
    /// ImageNet mean/std on `[0, 1]` values (timm/torchvision default).
    ImageNet,
    /// `(x − 127) / 128`, the TF-Lite EfficientNet-Lite convention.
    Symmetric,
    /// Explicit mean and std on `[0, 1]` values, per RGB channel.
    MeanStd {
        /// Channel means.
        mean: [f32; 3],
        /// Channel standard deviations.
        std: [f32; 3],
    },
}

impl Normalize {
    /// Per-channel `(scale, offset)` such that `model_input = pixel_0_255 * scale + offset`.
    pub fn affine(&self) -> [(f32, f32); 3] {
        let from_mean_std = |mean: [f32; 3], std: [f32; 3]| {
            std::array::from_fn(|c| (1.0 / (255.0 * std[c]), -mean[c] / std[c]))
        };
        match *self {
            Normalize::UnitRange => [(1.0 / 255.0, 0.0); 3],
            Normalize::ImageNet => from_mean_std(IMAGENET_MEAN, IMAGENET_STD),
            Normalize::Symmetric => [(1.0 / 128.0, -127.0 / 128.0); 3],
            Normalize::MeanStd { mean, std } => from_mean_std(mean, std),
        }
    }
}

/// ImageNet channel means on `[0, 1]` values (torchvision).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations on `[0, 1]` values (torchvision).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Resampling filter used when resizing to the model resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Bilinear with an area-aware support when shrinking (timm's default "bilinear").
    Bilinear,
    /// Bicubic (Catmull-Rom), timm's choice for EfficientNet evaluation.
    Bicubic,
    /// Lanczos with 3 lobes.
    Lanczos3,
}

impl Interpolation {
    pub(crate) fn filter(self) -> image::imageops::FilterType {
        match self {
            Interpolation::Bilinear => image::imageops::FilterType::Triangle,
            Interpolation::Bicubic => image::imageops::FilterType::CatmullRom,
            Interpolation::Lanczos3 => image::imageops::FilterType::Lanczos3,
        }
    }
}

/// Ben Graham's local colour normalisation, `4·I − 4·GaussianBlur(I, σ) + 128`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Graham {
    /// σ as a fraction of the FOV radius in output pixels (Graham used 1/30).
    pub sigma_fraction: f32,
}

impl Default for Graham {
    fn default() -> Self {
        Graham {
            sigma_fraction: 1.0 / 30.0,
        }
    }
}

/// Every preprocessing choice between a decoded photograph and the model's input tensor.
///
/// Saved in the run directory and the device bundle; the device never derives any of it from
/// the model variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessConfig {
    /// Side of the square model input, in pixels.
    pub size: u32,
    /// Crop strategy.
    pub crop: Crop,
    /// Resampling filter for the resize.
    pub interpolation: Interpolation,
    /// Optional Graham local colour normalisation (masked to the FOV).
    pub graham: Option<Graham>,
    /// Value normalisation into model inputs.
    pub normalize: Normalize,
}

impl Default for PreprocessConfig {
    /// The fundus default: circle crop, 224 px, bicubic, no Graham, ImageNet mean/std.
    fn default() -> Self {
        PreprocessConfig {
            size: 224,
            crop: Crop::FundusCircle { shrink: 0.98 },
            interpolation: Interpolation::Bicubic,
            graham: None,
            normalize: Normalize::ImageNet,
        }
    }
}

impl PreprocessConfig {
    /// The chest X-ray default: trim black borders, pad to square, ImageNet mean/std.
    pub fn radiograph(size: u32) -> Self {
        PreprocessConfig {
            size,
            crop: Crop::TrimBorder { threshold: 8 },
            interpolation: Interpolation::Bilinear,
            graham: None,
            normalize: Normalize::ImageNet,
        }
    }

    /// The canonical JSON form: serde_json's compact encoding, fields in declaration order.
    /// The bundle manifest stores exactly this string, and [`Self::sha256_hex`] hashes it.
    pub fn canonical_json(&self) -> String {
        // Plain structs, enums and numbers only (no maps with non-string keys): serde_json
        // cannot fail on this type.
        serde_json::to_string(self).expect("PreprocessConfig serialises to JSON")
    }

    /// SHA-256 of [`Self::canonical_json`], lower-case hex: the preprocessing identity that an
    /// exported model's metadata carries, so a runtime can refuse a config that differs.
    pub fn sha256_hex(&self) -> String {
        crate::bundle::sha256_hex(self.canonical_json().as_bytes())
    }

    /// Checks the values a hand-edited config could get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(8..=4096).contains(&self.size) {
            return Err(format!("size {} is outside 8..=4096", self.size));
        }
        if let Crop::FundusCircle { shrink } = self.crop
            && !(0.5..=1.0).contains(&shrink)
        {
            return Err(format!("fundus shrink {shrink} is outside 0.5..=1.0"));
        }
        if let Some(g) = self.graham
            && (g.sigma_fraction.is_nan() || g.sigma_fraction <= 0.0 || g.sigma_fraction > 1.0)
        {
            return Err(format!(
                "graham sigma_fraction {} is outside (0, 1]",
                g.sigma_fraction
            ));
        }
        if let Normalize::MeanStd { std, .. } = self.normalize
            && std.iter().any(|s| s.is_nan() || *s <= 0.0)
        {
            return Err(format!("normalize std {std:?} must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_affine_matches_torchvision_formula() {
        // torchvision: (x/255 - mean)/std; for x = 255 on the red channel: (1-0.485)/0.229.
        let [(s, o), _, _] = Normalize::ImageNet.affine();
        assert!((255.0 * s + o - (1.0 - 0.485) / 0.229).abs() < 1e-6);
        assert!((o + 0.485 / 0.229).abs() < 1e-6);
    }

    #[test]
    fn symmetric_maps_127_to_zero_and_255_to_one() {
        let [(s, o), _, _] = Normalize::Symmetric.affine();
        assert_eq!(127.0 * s + o, 0.0);
        assert_eq!(255.0 * s + o, 1.0);
    }

    // python3: import hashlib
    //   s = '{"size":224,"crop":{"kind":"fundus_circle","shrink":0.98},"interpolation":"bicubic",'
    //       '"graham":null,"normalize":{"kind":"image_net"}}'
    //   hashlib.sha256(s.encode()).hexdigest()
    //     -> 024b7745d732185f43499fb04b4c6c96a0a0f7735b3dc10a81695408e7ddc144
    #[test]
    fn canonical_json_and_its_sha256_match_python() {
        let cfg = PreprocessConfig::default();
        assert_eq!(
            cfg.canonical_json(),
            r#"{"size":224,"crop":{"kind":"fundus_circle","shrink":0.98},"interpolation":"bicubic","graham":null,"normalize":{"kind":"image_net"}}"#
        );
        assert_eq!(
            cfg.sha256_hex(),
            "024b7745d732185f43499fb04b4c6c96a0a0f7735b3dc10a81695408e7ddc144"
        );
        let other = PreprocessConfig {
            size: 128,
            ..cfg.clone()
        };
        assert_ne!(other.sha256_hex(), cfg.sha256_hex());
    }

    #[test]
    fn config_round_trips_through_json_and_validates() {
        let cfg = PreprocessConfig {
            graham: Some(Graham::default()),
            ..Default::default()
        };
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(json.contains("\"kind\":\"fundus_circle\""), "{json}");
        let back: PreprocessConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
        assert!(cfg.validate().is_ok());
        let bad = PreprocessConfig {
            size: 4,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("size 4"));
    }
}
