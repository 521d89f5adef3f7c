//! Three-sample DICOM pixels to interleaved 8-bit RGB: planar layout, 16→8 bits, YBR_FULL → RGB.

/// Interleave one planar frame (`RRR…GGG…BBB…`, Planar Configuration 1) into `RGBRGB…`.
pub(crate) fn interleave<T: Copy>(planar: &[T]) -> Vec<T> {
    let n = planar.len() / 3;
    let (r, rest) = planar.split_at(n);
    let (g, b) = rest.split_at(n);
    r.iter()
        .zip(g)
        .zip(&b[..n])
        .flat_map(|((&r, &g), &b)| [r, g, b])
        .collect()
}

/// Scale samples of `bits_stored` significant bits (masked) linearly onto 0..=255, rounding.
pub(crate) fn narrow_to_u8(samples: &[u16], bits_stored: u16) -> Vec<u8> {
    let bits = bits_stored.clamp(1, 16);
    let max = ((1u32 << bits) - 1) as f64;
    let mask = (1u32 << bits) - 1;
    samples
        .iter()
        .map(|&s| ((u32::from(s) & mask) as f64 / max * 255.0).round() as u8)
        .collect()
}

/// Convert interleaved YBR_FULL samples to RGB in place (PS3.3 C.7.6.3.1.2, full-range
/// ITU-R BT.601, the same matrix as pydicom's `convert_color_space`), rounding and clamping.
pub(crate) fn ybr_full_to_rgb(pixels: &mut [u8]) {
    for px in pixels.chunks_exact_mut(3) {
        let y = f64::from(px[0]);
        let cb = f64::from(px[1]) - 128.0;
        let cr = f64::from(px[2]) - 128.0;
        let r = y + 1.402 * cr;
        let g = y - (0.114 * 1.772 / 0.587) * cb - (0.299 * 1.402 / 0.587) * cr;
        let b = y + 1.772 * cb;
        px[0] = r.round().clamp(0.0, 255.0) as u8;
        px[1] = g.round().clamp(0.0, 255.0) as u8;
        px[2] = b.round().clamp(0.0, 255.0) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_planes() {
        assert_eq!(
            interleave(&[1u8, 2, 10, 20, 100, 200]),
            vec![1, 10, 100, 2, 20, 200]
        );
    }

    #[test]
    fn narrows_by_bits_stored() {
        // 12 bits: 4095 → 255, 2048 → 127.53 → 128, high garbage bits masked off.
        assert_eq!(
            narrow_to_u8(&[4095, 2048, 0, 0xF000 | 4095], 12),
            vec![255, 128, 0, 255]
        );
        assert_eq!(narrow_to_u8(&[65535, 257], 16), vec![255, 1]);
    }

    #[test]
    fn ybr_full_matches_bt601() {
        // Reference values, pydicom 3:
        //   from pydicom.pixels import convert_color_space
        //   convert_color_space(np.array([[[128,128,128],[76,85,255],[150,44,21],
        //       [29,255,107],[255,128,128]]],np.uint8), "YBR_FULL", "RGB")
        //   → [[128,128,128],[254,0,0],[0,255,1],[0,0,254],[255,255,255]]
        // (pure red/green/blue encoded with pydicom's RGB → YBR_FULL, so one level is lost).
        let mut px = vec![
            128, 128, 128, 76, 85, 255, 150, 44, 21, 29, 255, 107, 255, 128, 128,
        ];
        ybr_full_to_rgb(&mut px);
        assert_eq!(
            px,
            vec![
                128, 128, 128, 254, 0, 0, 0, 255, 1, 0, 0, 254, 255, 255, 255
            ]
        );
    }
}
