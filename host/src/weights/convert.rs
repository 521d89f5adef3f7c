//! Element bytes of any stored type to `f32`.
//!
//! `f16`/`bf16` widen exactly (through `half`); `f64` and integers round to nearest, which
//! is exact for integers up to 2^24 (counters such as `num_batches_tracked`); `bool` is 0/1.
use half::{bf16, f16};

use super::Dtype;

/// Decode `bytes` as consecutive `dtype` elements in the given byte order; a trailing
/// partial element is dropped (callers check the count against the shape).
pub(super) fn to_f32(bytes: &[u8], dtype: Dtype, little_endian: bool) -> Vec<f32> {
    macro_rules! each {
        ($n:literal, |$b:ident| $e:expr) => {
            bytes
                .chunks_exact($n)
                .map(|c| {
                    let mut $b: [u8; $n] =
                        c.try_into().expect("chunks_exact yields whole elements");
                    if !little_endian {
                        $b.reverse();
                    }
                    $e
                })
                .collect()
        };
    }
    match dtype {
        Dtype::F64 => each!(8, |b| f64::from_le_bytes(b) as f32),
        Dtype::F32 => each!(4, |b| f32::from_le_bytes(b)),
        Dtype::F16 => each!(2, |b| f16::from_le_bytes(b).to_f32()),
        Dtype::BF16 => each!(2, |b| bf16::from_le_bytes(b).to_f32()),
        Dtype::I64 => each!(8, |b| i64::from_le_bytes(b) as f32),
        Dtype::I32 => each!(4, |b| i32::from_le_bytes(b) as f32),
        Dtype::I16 => each!(2, |b| f32::from(i16::from_le_bytes(b))),
        Dtype::I8 => bytes.iter().map(|&b| f32::from(b as i8)).collect(),
        Dtype::U64 => each!(8, |b| u64::from_le_bytes(b) as f32),
        Dtype::U32 => each!(4, |b| u32::from_le_bytes(b) as f32),
        Dtype::U16 => each!(2, |b| f32::from(u16::from_le_bytes(b))),
        Dtype::U8 => bytes.iter().map(|&b| f32::from(b)).collect(),
        Dtype::Bool => bytes.iter().map(|&b| f32::from(u8::from(b != 0))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_each_type() {
        // struct.pack('<e', -1.5) == b'\x00\xbe'; bf16(-1.5) is the high half of f32 0xbfc00000.
        assert_eq!(to_f32(&[0x00, 0xbe], Dtype::F16, true), [-1.5]);
        assert_eq!(to_f32(&[0xc0, 0xbf], Dtype::BF16, true), [-1.5]);
        assert_eq!(to_f32(&[0xbf, 0xc0], Dtype::BF16, false), [-1.5]);
        assert_eq!(to_f32(&0.1f64.to_le_bytes(), Dtype::F64, true), [0.1f32]);
        assert_eq!(to_f32(&(-7i64).to_le_bytes(), Dtype::I64, true), [-7.0]);
        assert_eq!(to_f32(&[0xff, 2], Dtype::I8, true), [-1.0, 2.0]);
        assert_eq!(to_f32(&[0, 1, 2], Dtype::Bool, true), [0.0, 1.0, 1.0]);
        assert_eq!(to_f32(&1.25f32.to_be_bytes(), Dtype::F32, false), [1.25]);
    }
}
