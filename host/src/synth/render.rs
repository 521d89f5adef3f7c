//! Rendering one photograph: anatomy, vessels, lesions, field of view, then the camera.
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::anatomy::{Anatomy, Frame};
use super::camera;
use super::cohort::EyeSpec;
use super::{lesions, vessels};

/// The random stream of image `index` of a data set drawn with `seed`. Every image has its
/// own stream, so images can be rendered in any order or in parallel with identical bytes.
pub fn image_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1 + index as u64);
    rng
}

/// Renders `spec` as a `size`×`size` fundus photograph.
///
/// The anatomy comes from `spec.anatomy_seed`; `rng` drives lesion placement and the
/// camera's per-shot variation. Exactly two values are drawn from `rng` up front, so the
/// same eye rendered at two grades with equally seeded `rng`s differs only by its lesions
/// (and, from grade 3, venous beading).
pub fn render_eye(spec: &EyeSpec, size: u32, rng: &mut impl Rng) -> RgbImage {
    let mut lesion_rng = ChaCha8Rng::seed_from_u64(rng.random());
    let mut camera_rng = ChaCha8Rng::seed_from_u64(rng.random());
    let anatomy = Anatomy::sample(&mut ChaCha8Rng::seed_from_u64(spec.anatomy_seed));
    let frame = Frame::new(size, spec.camera.fov_radius, spec.eye);
    let mut canvas = anatomy.paint_background(&frame, size);
    vessels::draw(
        &mut canvas,
        &frame,
        &anatomy.vessels,
        lesions::beading(spec.grade),
    );
    lesions::paint(
        &mut canvas,
        &frame,
        &anatomy,
        spec.grade,
        spec.camera.lesion_contrast,
        &mut lesion_rng,
    );
    anatomy.paint_foveal_reflex(&mut canvas, &frame);
    Anatomy::apply_fov(&mut canvas, &frame);
    camera::develop(
        &mut canvas,
        &spec.camera,
        spec.defect,
        |x, y| frame.radius_at(x, y),
        &mut camera_rng,
    );
    canvas.to_image()
}

#[cfg(test)]
mod tests {
    use super::super::SynthConfig;
    use super::super::camera::Defect;
    use super::super::cohort::plan;
    use super::*;

    fn spec(grade: u8) -> EyeSpec {
        let cfg = SynthConfig::new(8, 3, 128).unwrap();
        let mut s = plan(&cfg)[5].clone();
        s.grade = grade;
        s.defect = None;
        s
    }

    fn stats(img: &RgbImage) -> (f32, f32) {
        let lum: Vec<f32> = img
            .pixels()
            .map(|p| (p[0] as f32 + p[1] as f32 + p[2] as f32) / 3.0)
            .collect();
        let mean = lum.iter().sum::<f32>() / lum.len() as f32;
        let n = img.width() as usize;
        let mut lap = Vec::new();
        for y in 1..n - 1 {
            for x in 1..n - 1 {
                let i = y * n + x;
                lap.push(4.0 * lum[i] - lum[i - 1] - lum[i + 1] - lum[i - n] - lum[i + n]);
            }
        }
        let lm = lap.iter().sum::<f32>() / lap.len() as f32;
        (
            mean,
            lap.iter().map(|l| (l - lm).powi(2)).sum::<f32>() / lap.len() as f32,
        )
    }

    #[test]
    fn same_stream_same_bytes_and_streams_differ_per_index() {
        let s = spec(2);
        let a = render_eye(&s, 96, &mut image_rng(1, 5));
        let b = render_eye(&s, 96, &mut image_rng(1, 5));
        let c = render_eye(&s, 96, &mut image_rng(1, 6));
        assert_eq!(a.dimensions(), (96, 96));
        assert_eq!(a.as_raw(), b.as_raw());
        assert_ne!(a.as_raw(), c.as_raw());
    }

    #[test]
    fn grade_changes_only_lesion_pixels_and_more_with_higher_grade() {
        let g0 = render_eye(&spec(0), 128, &mut image_rng(9, 0));
        let again = render_eye(&spec(0), 128, &mut image_rng(9, 0));
        assert_eq!(g0.as_raw(), again.as_raw());
        let changed = |g: u8| {
            let img = render_eye(&spec(g), 128, &mut image_rng(9, 0));
            img.pixels()
                .zip(g0.pixels())
                .filter(|(a, b)| (0..3).map(|k| a[k].abs_diff(b[k]) as u32).sum::<u32>() > 30)
                .count()
        };
        let px: Vec<usize> = (1..=4).map(changed).collect();
        assert!(px[0] > 0 && px.windows(2).all(|w| w[1] > w[0]), "{px:?}");
    }

    #[test]
    fn each_defect_is_measurable() {
        let good = spec(1);
        let (mean, lap) = stats(&render_eye(&good, 128, &mut image_rng(2, 0)));
        let shot = |d: Defect| {
            let mut s = good.clone();
            s.defect = Some(d);
            stats(&render_eye(&s, 128, &mut image_rng(2, 0)))
        };
        assert!(shot(Defect::UnderExposed).0 < 0.25 * mean);
        assert!(shot(Defect::OverExposed).0 > 1.5 * mean);
        assert!(
            shot(Defect::Defocused).1 < 0.25 * lap,
            "defocus {:?} vs lap {lap}",
            shot(Defect::Defocused)
        );
        assert!(shot(Defect::NoFov).0 < 10.0);
    }
}
