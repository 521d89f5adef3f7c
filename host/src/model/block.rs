//! One stage of an EfficientNet as a timm block string (`ir_r2_k3_s2_e6_c24_se0.25`).
//!
//! The string form is the one timm's `_efficientnet_builder.py` (`_decode_block_str`) reads:
//! a block type followed by `_`-separated options, each a one- or two-letter key glued to its
//! value. We accept the subset EfficientNet-B0…B7 and Lite0…4 use:
//!
//! | key  | meaning                                   | example  |
//! |------|-------------------------------------------|----------|
//! | `ds` | depthwise-separable block (no expansion)  | `ds_…`   |
//! | `ir` | inverted-residual (MBConv) block          | `ir_…`   |
//! | `r`  | repeats (blocks in the stage)             | `r2`     |
//! | `k`  | depthwise kernel size                     | `k3`     |
//! | `s`  | stride of the stage's first block         | `s2`     |
//! | `e`  | expansion ratio (always 1 for `ds`)       | `e6`     |
//! | `c`  | output channels                           | `c24`    |
//! | `se` | squeeze-excitation ratio (absent: no SE)  | `se0.25` |
//!
//! `Display` always writes the options in that order; `FromStr` takes them in any order, as
//! timm does, and rejects anything else with an error naming the offending piece.
use std::fmt;
use std::str::FromStr;

/// The two block types EfficientNet is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// `ds`: depthwise conv → (SE) → pointwise projection; timm `DepthwiseSeparableConv`.
    DepthwiseSeparable,
    /// `ir`: pointwise expansion → depthwise conv → (SE) → pointwise projection; timm
    /// `InvertedResidual` (MBConv).
    InvertedResidual,
}

impl BlockKind {
    /// The prefix of the block string.
    pub const fn tag(self) -> &'static str {
        match self {
            BlockKind::DepthwiseSeparable => "ds",
            BlockKind::InvertedResidual => "ir",
        }
    }
}

/// One stage of the network: `repeats` identical blocks, the first with `stride`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockSpec {
    /// Block type.
    pub kind: BlockKind,
    /// Number of blocks in the stage.
    pub repeats: u32,
    /// Depthwise kernel size (odd).
    pub kernel: u32,
    /// Stride of the first block (1 or 2); later blocks use 1.
    pub stride: u32,
    /// Expansion ratio of the inverted residual (1 for `ds`).
    pub expansion: u32,
    /// Output channels.
    pub channels: u32,
    /// Squeeze-excitation ratio relative to the block's input channels; `None`: no SE.
    pub se_ratio: Option<f64>,
}

impl BlockSpec {
    /// The same stage without squeeze-excitation (EfficientNet-Lite).
    pub const fn without_se(self) -> Self {
        BlockSpec {
            se_ratio: None,
            ..self
        }
    }
}

impl fmt::Display for BlockSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_r{}_k{}_s{}_e{}_c{}",
            self.kind.tag(),
            self.repeats,
            self.kernel,
            self.stride,
            self.expansion,
            self.channels
        )?;
        if let Some(se) = self.se_ratio {
            write!(f, "_se{se}")?;
        }
        Ok(())
    }
}

/// Why a block string did not parse.
#[derive(Clone, Debug, PartialEq)]
pub enum ParseBlockError {
    /// The string was empty.
    Empty,
    /// The leading block type is not `ds` or `ir`.
    UnknownKind(String),
    /// An option key we do not know (or do not support).
    UnknownOption(String),
    /// An option appeared twice.
    Duplicate(&'static str),
    /// An option's value is not a number of the right kind.
    BadValue {
        /// The option key.
        key: &'static str,
        /// The text after the key.
        value: String,
    },
    /// A required option is absent.
    Missing(&'static str),
    /// Parsed, but not a block EfficientNet can build.
    Invalid(String),
}

impl fmt::Display for ParseBlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseBlockError::Empty => write!(f, "empty block string"),
            ParseBlockError::UnknownKind(k) => {
                write!(f, "unknown block type {k:?} (expected `ds` or `ir`)")
            }
            ParseBlockError::UnknownOption(o) => write!(
                f,
                "unknown option {o:?} (expected r<repeats>, k<kernel>, s<stride>, \
                 e<expansion>, c<channels> or se<ratio>)"
            ),
            ParseBlockError::Duplicate(k) => write!(f, "option `{k}` given twice"),
            ParseBlockError::BadValue { key, value } => {
                write!(f, "option `{key}` has a bad value {value:?}")
            }
            ParseBlockError::Missing(k) => write!(f, "missing option `{k}`"),
            ParseBlockError::Invalid(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for ParseBlockError {}

impl FromStr for BlockSpec {
    type Err = ParseBlockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseBlockError::Empty);
        }
        let mut ops = s.split('_');
        let kind = match ops.next().unwrap_or_default() {
            "ds" => BlockKind::DepthwiseSeparable,
            "ir" => BlockKind::InvertedResidual,
            other => return Err(ParseBlockError::UnknownKind(other.to_owned())),
        };
        let (mut r, mut k, mut st, mut e, mut c, mut se) = (None, None, None, None, None, None);
        for op in ops {
            // `se` must be tried before the one-letter `s`.
            if let Some(v) = op.strip_prefix("se") {
                set(&mut se, "se", parse_ratio(v)?)?;
                continue;
            }
            let Some(key) = op.chars().next() else {
                return Err(ParseBlockError::UnknownOption(op.to_owned()));
            };
            let v = &op[key.len_utf8()..];
            match key {
                'r' => set(&mut r, "r", parse_int("r", v)?)?,
                'k' => set(&mut k, "k", parse_int("k", v)?)?,
                's' => set(&mut st, "s", parse_int("s", v)?)?,
                'e' => set(&mut e, "e", parse_int("e", v)?)?,
                'c' => set(&mut c, "c", parse_int("c", v)?)?,
                _ => return Err(ParseBlockError::UnknownOption(op.to_owned())),
            }
        }
        let spec = BlockSpec {
            kind,
            repeats: r.ok_or(ParseBlockError::Missing("r"))?,
            kernel: k.ok_or(ParseBlockError::Missing("k"))?,
            stride: st.ok_or(ParseBlockError::Missing("s"))?,
            // timm's `ds` blocks have no expansion option; `e1` is allowed for symmetry.
            expansion: match kind {
                BlockKind::DepthwiseSeparable => e.unwrap_or(1),
                BlockKind::InvertedResidual => e.ok_or(ParseBlockError::Missing("e"))?,
            },
            channels: c.ok_or(ParseBlockError::Missing("c"))?,
            se_ratio: se,
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl BlockSpec {
    fn validate(&self) -> Result<(), ParseBlockError> {
        let bad = |why: String| Err(ParseBlockError::Invalid(why));
        if self.repeats == 0 {
            return bad("repeats must be at least 1".into());
        }
        if self.kernel.is_multiple_of(2) {
            return bad(format!("kernel {} must be odd", self.kernel));
        }
        if !matches!(self.stride, 1 | 2) {
            return bad(format!("stride {} must be 1 or 2", self.stride));
        }
        if self.expansion == 0 {
            return bad("expansion must be at least 1".into());
        }
        if self.kind == BlockKind::DepthwiseSeparable && self.expansion != 1 {
            return bad(format!(
                "a `ds` block has no expansion, got e{}",
                self.expansion
            ));
        }
        if self.channels == 0 {
            return bad("channels must be at least 1".into());
        }
        Ok(())
    }
}

fn set<T>(slot: &mut Option<T>, key: &'static str, value: T) -> Result<(), ParseBlockError> {
    if slot.replace(value).is_some() {
        return Err(ParseBlockError::Duplicate(key));
    }
    Ok(())
}

fn parse_int(key: &'static str, v: &str) -> Result<u32, ParseBlockError> {
    v.parse().map_err(|_| ParseBlockError::BadValue {
        key,
        value: v.to_owned(),
    })
}

fn parse_ratio(v: &str) -> Result<f64, ParseBlockError> {
    match v.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err(ParseBlockError::BadValue {
            key: "se",
            value: v.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_timm_string() {
        let s = "ir_r2_k3_s2_e6_c24_se0.25";
        let spec: BlockSpec = s.parse().unwrap();
        assert_eq!(
            spec,
            BlockSpec {
                kind: BlockKind::InvertedResidual,
                repeats: 2,
                kernel: 3,
                stride: 2,
                expansion: 6,
                channels: 24,
                se_ratio: Some(0.25),
            }
        );
        assert_eq!(spec.to_string(), s);
    }

    #[test]
    fn accepts_options_in_any_order_and_ds_without_expansion() {
        let spec: BlockSpec = "ds_se0.25_c16_s1_k3_r1".parse().unwrap();
        assert_eq!(spec.to_string(), "ds_r1_k3_s1_e1_c16_se0.25");
    }

    #[test]
    fn no_se_is_omitted() {
        let spec: BlockSpec = "ir_r4_k5_s2_e6_c192".parse().unwrap();
        assert_eq!(spec.se_ratio, None);
        assert_eq!(spec.to_string(), "ir_r4_k5_s2_e6_c192");
        let with: BlockSpec = "ir_r4_k5_s2_e6_c192_se0.25".parse().unwrap();
        assert_eq!(with.without_se(), spec);
    }

    #[test]
    fn rejects_malformed_strings() {
        let err = |s: &str| s.parse::<BlockSpec>().unwrap_err();
        assert_eq!(err(""), ParseBlockError::Empty);
        assert_eq!(
            err("er_r1_k3_s1_e4_c24"),
            ParseBlockError::UnknownKind("er".into())
        );
        assert_eq!(
            err("ir_r1_k3_s1_e6_c24_noskip"),
            ParseBlockError::UnknownOption("noskip".into())
        );
        assert_eq!(
            err("ir_r1_k3_s1_e6_c24_"),
            ParseBlockError::UnknownOption("".into())
        );
        assert_eq!(
            err("ir_r1_r2_k3_s1_e6_c24"),
            ParseBlockError::Duplicate("r")
        );
        assert_eq!(
            err("ir_rx_k3_s1_e6_c24"),
            ParseBlockError::BadValue {
                key: "r",
                value: "x".into()
            }
        );
        assert_eq!(
            err("ir_r1_k3_s1_e6_c24_se1.5"),
            ParseBlockError::BadValue {
                key: "se",
                value: "1.5".into()
            }
        );
        assert_eq!(err("ir_r1_k3_s1_c24"), ParseBlockError::Missing("e"));
        assert_eq!(err("ir_r1_k3_s1_e6"), ParseBlockError::Missing("c"));
        assert!(matches!(
            err("ir_r1_k4_s1_e6_c24"),
            ParseBlockError::Invalid(_)
        ));
        assert!(matches!(
            err("ir_r1_k3_s3_e6_c24"),
            ParseBlockError::Invalid(_)
        ));
        assert!(matches!(
            err("ds_r1_k3_s1_e6_c24"),
            ParseBlockError::Invalid(_)
        ));
        assert!(matches!(
            err("ir_r0_k3_s1_e6_c24"),
            ParseBlockError::Invalid(_)
        ));
        // The message names the culprit.
        assert_eq!(err("ir_r1_k3_s1_e6").to_string(), "missing option `c`");
    }
}
