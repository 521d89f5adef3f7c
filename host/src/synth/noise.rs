//! Random helpers for drawing: Gaussian samples and smooth value noise for textures.
use rand::Rng;

/// A standard normal sample (Box–Muller), using two uniform draws.
pub fn normal(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(1e-7);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// A uniform sample in `lo..hi` (returns `lo` when the range is empty).
pub fn uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// A count in `lo..=hi`.
pub fn count(rng: &mut impl Rng, lo: usize, hi: usize) -> usize {
    rng.random_range(lo..=hi)
}

/// Smooth 2-D value noise on the unit square: a lattice of random values interpolated with
/// smoothstep, summed over octaves (fractal Brownian motion). Output is roughly in `-1..1`.
#[derive(Clone, Debug)]
pub struct ValueNoise {
    cells: usize,
    octaves: Vec<Vec<f32>>,
}

impl ValueNoise {
    /// Noise with `cells` lattice cells across the square at the first octave, doubling per octave.
    pub fn new(rng: &mut impl Rng, cells: usize, octaves: usize) -> Self {
        let octaves = (0..octaves)
            .map(|o| {
                let n = (cells << o) + 1;
                (0..n * n)
                    .map(|_| rng.random::<f32>() * 2.0 - 1.0)
                    .collect()
            })
            .collect();
        Self { cells, octaves }
    }

    /// Noise at `(x, y)` in `0..1`² (clamped outside), amplitude halving per octave.
    pub fn at(&self, x: f32, y: f32) -> f32 {
        let mut sum = 0.0;
        let mut amp = 1.0;
        let mut norm = 0.0;
        for (o, lattice) in self.octaves.iter().enumerate() {
            let n = self.cells << o;
            let fx = (x.clamp(0.0, 1.0) * n as f32).min(n as f32 - 1e-4);
            let fy = (y.clamp(0.0, 1.0) * n as f32).min(n as f32 - 1e-4);
            let (ix, iy) = (fx as usize, fy as usize);
            let (tx, ty) = (fx - ix as f32, fy - iy as f32);
            let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
            let w = n + 1;
            let v00 = lattice[iy * w + ix];
            let v10 = lattice[iy * w + ix + 1];
            let v01 = lattice[(iy + 1) * w + ix];
            let v11 = lattice[(iy + 1) * w + ix + 1];
            let top = v00 + (v10 - v00) * sx;
            let bottom = v01 + (v11 - v01) * sx;
            sum += amp * (top + (bottom - top) * sy);
            norm += amp;
            amp *= 0.5;
        }
        sum / norm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn normal_samples_have_unit_spread() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let xs: Vec<f32> = (0..20_000).map(|_| normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / xs.len() as f32;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }

    #[test]
    fn value_noise_is_bounded_continuous_and_seeded() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let noise = ValueNoise::new(&mut rng, 4, 3);
        let mut prev = noise.at(0.0, 0.5);
        let mut max_step: f32 = 0.0;
        for i in 1..=1000 {
            let v = noise.at(i as f32 / 1000.0, 0.5);
            assert!((-1.0..=1.0).contains(&v));
            max_step = max_step.max((v - prev).abs());
            prev = v;
        }
        assert!(max_step < 0.05, "noise jumps by {max_step}");
        let again = ValueNoise::new(&mut ChaCha8Rng::seed_from_u64(9), 4, 3);
        assert_eq!(noise.at(0.3, 0.7), again.at(0.3, 0.7));
        let other = ValueNoise::new(&mut ChaCha8Rng::seed_from_u64(10), 4, 3);
        assert_ne!(noise.at(0.3, 0.7), other.at(0.3, 0.7));
    }
}
