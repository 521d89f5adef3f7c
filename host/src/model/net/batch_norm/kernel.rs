//! BatchNorm in training mode over NCHW `f32` slices: per-channel batch statistics, the
//! normalization, and its gradients, each one or two passes over the activation.
//!
//! For channel `c` over its `M = N·H·W` values, `μ = Σx / M`, `σ² = Σ(x − μ)² / M` (biased, as
//! burn and PyTorch normalize with), `x̂ = (x − μ) / √(σ² + ε)`, `y = γ x̂ + β`. With
//! `g = ∂L/∂y` and the statistics' own dependence on `x` included:
//!
//! - `∂L/∂β = Σ g`, `∂L/∂γ = Σ g x̂`
//! - `∂L/∂x = γ / √(σ² + ε) · (g − Σg / M − x̂ · Σ(g x̂) / M)`
//!
//! burn 0.22.1's generic `batch_norm_train` and its backward reach the per-channel sums through
//! `swap_dims(0, 1)` + `reshape`, which copies the whole activation (a tiled transpose) twice on
//! the way forward and twice back, around about a dozen element-wise passes; here a channel's
//! values are read in place as its `N` contiguous planes. Sums of a plane run in eight `f32`
//! lanes; planes are added in `f64`.
use std::borrow::Cow;

use rayon::prelude::*;

use super::super::fused_activation::{Linear, Relu6, Scalar, Silu};
use super::super::simd;
use crate::model::arch::Activation;

/// NCHW extents: batch, channels and elements per plane (`H·W`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Elements of one `(n, c)` plane.
    pub plane: usize,
}

impl Extent {
    fn len(&self) -> usize {
        self.n * self.c * self.plane
    }

    /// Values per channel, `M`.
    fn count(&self) -> f64 {
        (self.n * self.plane) as f64
    }

    /// The planes of channel `c` in `v`.
    fn planes<'a>(&self, v: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        (0..self.n).map(move |n| &v[(n * self.c + c) * self.plane..][..self.plane])
    }
}

/// Per-channel mean and biased variance, `[mean_0 … mean_{C−1}, var_0 … var_{C−1}]`.
pub fn stats(x: &[f32], e: &Extent) -> Vec<f32> {
    assert_eq!(x.len(), e.len(), "batch norm: input length");
    let per_channel: Vec<(f32, f32)> = (0..e.c)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = e
                .planes(x, c)
                .map(|p| f64::from(simd::sum_map(p, |v| v)))
                .sum();
            let mean = sum / e.count();
            let m = mean as f32;
            let sq: f64 = e
                .planes(x, c)
                .map(|p| f64::from(simd::sum_map(p, |v| (v - m) * (v - m))))
                .sum();
            (m, (sq / e.count()) as f32)
        })
        .collect();
    let (mean, var): (Vec<f32>, Vec<f32>) = per_channel.into_iter().unzip();
    [mean, var].concat()
}

/// Calls `$body` with `$a` bound to the [`Scalar`] form of `$act` (`None`: [`Linear`]), so each
/// activation gets its own compiled loop.
macro_rules! with_activation {
    ($act:expr, $a:ident => $body:expr) => {
        match $act {
            None => {
                type $a = Linear;
                $body
            }
            Some(Activation::Silu) => {
                type $a = Silu;
                $body
            }
            Some(Activation::Relu6) => {
                type $a = Relu6;
                $body
            }
        }
    };
}

/// One layer's parameters: γ and β (`C` each), the statistics it normalizes with
/// (`[μ; σ²]`, `2C`, as [`stats`] returns them, or the running ones), ε, and the activation
/// after it (`None`: none).
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// Scale γ.
    pub gamma: &'a [f32],
    /// Shift β.
    pub beta: &'a [f32],
    /// `[μ_0 … μ_{C−1}, σ²_0 … σ²_{C−1}]`.
    pub stats: &'a [f32],
    /// ε added to σ².
    pub eps: f64,
    /// The activation applied to the normalized values.
    pub act: Option<Activation>,
}

impl Layer<'_> {
    /// Per-channel `a = γ / √(σ² + ε)`, `b = β − μ a`, so that `z = x a + b`.
    fn affine(&self, c: usize) -> (Vec<f32>, Vec<f32>) {
        assert_eq!(self.stats.len(), 2 * c, "batch norm: statistics length");
        assert!(
            self.gamma.len() == c && self.beta.len() == c,
            "batch norm: γ/β length"
        );
        let (mean, var) = self.stats.split_at(c);
        (0..c)
            .map(|k| {
                let a = f64::from(self.gamma[k]) / (f64::from(var[k]) + self.eps).sqrt();
                (
                    a as f32,
                    (f64::from(self.beta[k]) - f64::from(mean[k]) * a) as f32,
                )
            })
            .unzip()
    }
}

/// `y = act(γ (x − μ) / √(σ² + ε) + β)`, in one pass.
pub fn forward(x: &[f32], l: &Layer, e: &Extent) -> Vec<f32> {
    assert_eq!(x.len(), e.len(), "batch norm: input length");
    let (scale, shift) = l.affine(e.c);
    with_activation!(l.act, A => simd::map_new(x, e.plane, |plane| {
        let (a, b) = (scale[plane % e.c], shift[plane % e.c]);
        move |x| A::value(x * a + b)
    }))
}

/// [`forward`] overwriting `x` with `y`.
pub fn forward_in_place(x: &mut [f32], l: &Layer, e: &Extent) {
    assert_eq!(x.len(), e.len(), "batch norm: input length");
    let (scale, shift) = l.affine(e.c);
    if e.plane == 0 {
        return;
    }
    with_activation!(l.act, A => x.par_chunks_mut(e.plane).enumerate().for_each(|(plane, x)| {
        let (a, b) = (scale[plane % e.c], shift[plane % e.c]);
        simd::map_in_place(x, |v| A::value(v * a + b));
    }))
}

/// Gradients of [`forward`] (statistics included): `(∂L/∂x, ∂L/∂γ, ∂L/∂β)`. The activation's
/// input `z = x a + b` is recomputed from `x` (bit for bit the forward's), so the layer keeps
/// only `x` for its backward: one pass computes `d = ∂L/∂z = act'(z) g` with its per-plane
/// sums, a second `∂L/∂x` from `x` and `d`.
pub fn backward(x: &[f32], g: &[f32], l: &Layer, e: &Extent) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (d, plane_sums) = with_activation!(l.act, A => activation_grad::<A>(x, g, l, e));
    let ChannelSums {
        mean,
        inv_std,
        sums,
        dgamma,
        dbeta,
    } = ChannelSums::new(&plane_sums, l, e);
    let dx = simd::zip_map_new(x, &d, e.plane, |plane| {
        let c = plane % e.c;
        let k = l.gamma[c] * inv_std[c];
        let mg = (sums[c].0 / e.count()) as f32;
        let mgx = (sums[c].1 / e.count()) as f32;
        let (m, s) = (mean[c], inv_std[c]);
        move |x, d| k * (d - mg - (x - m) * s * mgx)
    });
    (dx, dgamma, dbeta)
}

/// Gradients of [`forward`] with the statistics constants (evaluation mode: the running
/// statistics): `(∂L/∂x, ∂L/∂γ, ∂L/∂β)` with `∂L/∂x = γ / √(σ² + ε) · d`, `∂L/∂γ = Σ d x̂`,
/// `∂L/∂β = Σ d` (`d = ∂L/∂z` as in [`backward`]).
pub fn backward_eval(
    x: &[f32],
    g: &[f32],
    l: &Layer,
    e: &Extent,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (d, plane_sums) = with_activation!(l.act, A => activation_grad::<A>(x, g, l, e));
    let ChannelSums {
        inv_std,
        dgamma,
        dbeta,
        ..
    } = ChannelSums::new(&plane_sums, l, e);
    let dx = simd::map_new(&d, e.plane, |plane| {
        let k = l.gamma[plane % e.c] * inv_std[plane % e.c];
        move |d| k * d
    });
    (dx, dgamma, dbeta)
}

/// `d = ∂L/∂z = act'(z) g` with `z = x a + b` recomputed per channel (without an activation,
/// `g` itself), and per plane `(Σ d, Σ d · (x − μ))`: one pass over `x` and `g`, the
/// activation's derivative once per element.
fn activation_grad<'g, A: Scalar>(
    x: &[f32],
    g: &'g [f32],
    l: &Layer,
    e: &Extent,
) -> (Cow<'g, [f32]>, Vec<(f32, f32)>) {
    assert_eq!(x.len(), e.len(), "batch norm: input length");
    assert_eq!(g.len(), e.len(), "batch norm: gradient length");
    let mean = &l.stats[..e.c];
    if A::IDENTITY {
        let sums = if e.plane == 0 {
            vec![(0.0, 0.0); e.n * e.c]
        } else {
            g.par_chunks(e.plane)
                .zip(x.par_chunks(e.plane))
                .enumerate()
                .map(|(plane, (gp, xp))| {
                    let m = mean[plane % e.c];
                    (simd::sum_map(gp, |v| v), simd::dot_centred(gp, xp, m))
                })
                .collect()
        };
        return (Cow::Borrowed(g), sums);
    }
    let (scale, shift) = l.affine(e.c);
    let (d, sums) = simd::zip_map_new_sums(x, g, e.plane, |plane| {
        let c = plane % e.c;
        let (a, b) = (scale[c], shift[c]);
        (move |x, g| A::grad(x * a + b, g), mean[c])
    });
    (Cow::Owned(d), sums)
}

/// What both backward passes need per channel: `μ`, `1/√(σ² + ε)`, `(Σ d, Σ d x̂)` summed in
/// `f64` over the channel's planes (`d = ∂L/∂z`, `x̂ = (x − μ) · inv_std`), and their `f32`
/// forms `∂L/∂γ = Σ d x̂`, `∂L/∂β = Σ d`.
struct ChannelSums<'a> {
    mean: &'a [f32],
    inv_std: Vec<f32>,
    sums: Vec<(f64, f64)>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

impl<'a> ChannelSums<'a> {
    /// From the per-plane `(Σ d, Σ d · (x − μ))` of [`activation_grad`] (plane `n·C + c`).
    fn new(plane_sums: &[(f32, f32)], l: &Layer<'a>, e: &Extent) -> Self {
        assert_eq!(plane_sums.len(), e.n * e.c, "batch norm: plane sums");
        let (mean, var) = l.stats.split_at(e.c);
        let inv_std: Vec<f32> = var
            .iter()
            .map(|&v| (1.0 / (f64::from(v) + l.eps).sqrt()) as f32)
            .collect();
        let sums: Vec<(f64, f64)> = (0..e.c)
            .map(|c| {
                let (sum_d, sum_dx) = (0..e.n)
                    .map(|n| plane_sums[n * e.c + c])
                    .fold((0.0f64, 0.0f64), |(s, t), (p, q)| {
                        (s + f64::from(p), t + f64::from(q))
                    });
                (sum_d, sum_dx * f64::from(inv_std[c]))
            })
            .collect();
        ChannelSums {
            mean,
            dbeta: sums.iter().map(|s| s.0 as f32).collect(),
            dgamma: sums.iter().map(|s| s.1 as f32).collect(),
            inv_std,
            sums,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hand-checkable: N = 2, C = 1, H·W = 2, x = [1, 3 | 5, 7]: μ = 4, σ² = (9 + 1 + 1 + 9) / 4 = 5.
    // With γ = 2, β = 1, ε = 0: y = 2 (x − 4) / √5 + 1.
    #[test]
    fn statistics_and_output_by_hand() {
        let e = Extent {
            n: 2,
            c: 1,
            plane: 2,
        };
        let x = [1.0, 3.0, 5.0, 7.0];
        let s = stats(&x, &e);
        assert_eq!(s, vec![4.0, 5.0]);
        let layer = |act| Layer {
            gamma: &[2.0],
            beta: &[1.0],
            stats: &s,
            eps: 0.0,
            act,
        };
        let y = forward(&x, &layer(None), &e);
        let r5 = 5.0f32.sqrt();
        for (got, want) in y.iter().zip(x.iter().map(|v| 2.0 * (v - 4.0) / r5 + 1.0)) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        let mut in_place = x;
        forward_in_place(&mut in_place, &layer(None), &e);
        assert_eq!(in_place.to_vec(), y);
        // With ReLU6 and SiLU after it, in one pass, in place or not: the activation of `y`.
        // python3: ys = [2 * (v - 4) / math.sqrt(5) + 1 for v in [1, 3, 5, 7]]
        //   [min(max(y, 0), 6) for y in ys] -> [0, 0.105573, 1.894427, 3.683282]
        //   [y / (1 + math.exp(-y)) for y in ys] -> [-0.263705, 0.05557, 1.646749, 3.592954]
        for (act, want) in [
            (Activation::Relu6, [0.0, 0.105_573, 1.894_427, 3.683_282]),
            (
                Activation::Silu,
                [-0.263_705, 0.055_57, 1.646_749, 3.592_954],
            ),
        ] {
            let fused = forward(&x, &layer(Some(act)), &e);
            let mut in_place = x;
            forward_in_place(&mut in_place, &layer(Some(act)), &e);
            assert_eq!(in_place.to_vec(), fused, "{act:?} in place");
            for (got, want) in fused.iter().zip(want) {
                assert!((got - want).abs() < 2e-6, "{act:?}: {got} vs {want}");
            }
        }
    }

    /// Central finite differences in f64 of `L = Σ r · act(y(x, γ, β))` (statistics recomputed
    /// from the perturbed input every time) against [`backward`], for no activation, SiLU and
    /// ReLU6 (whose kinks at 0 and 6 none of these pre-activations is within `h` of).
    #[test]
    fn gradients_match_finite_differences() {
        for act in [None, Some(Activation::Silu), Some(Activation::Relu6)] {
            gradients_match_finite_differences_with(act);
        }
    }

    fn gradients_match_finite_differences_with(act: Option<Activation>) {
        let apply = |z: f64| match act {
            None => z,
            Some(Activation::Silu) => z / (1.0 + (-z).exp()),
            Some(Activation::Relu6) => z.clamp(0.0, 6.0),
        };
        let e = Extent {
            n: 3,
            c: 2,
            plane: 5,
        };
        let x: Vec<f32> = (0..e.len())
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 4.0)
            .collect();
        let r: Vec<f32> = (0..e.len())
            .map(|i| ((i * 13 % 7) as f32 - 3.0) / 3.0)
            .collect();
        let gamma = [1.5f32, -0.7];
        let beta = [0.2f32, 0.4];
        let eps = 1e-3;
        let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| -> f64 {
            let mut l = 0.0;
            for c in 0..e.c {
                let idx: Vec<usize> = (0..e.n)
                    .flat_map(|n| (0..e.plane).map(move |p| (n * e.c + c) * e.plane + p))
                    .collect();
                let m = idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64;
                let v = idx.iter().map(|&i| (x[i] - m).powi(2)).sum::<f64>() / idx.len() as f64;
                for &i in &idx {
                    let y = gamma[c] * (x[i] - m) / (v + eps).sqrt() + beta[c];
                    l += f64::from(r[i]) * apply(y);
                }
            }
            l
        };
        let s = stats(&x, &e);
        let layer = Layer {
            gamma: &gamma,
            beta: &beta,
            stats: &s,
            eps,
            act,
        };
        let (dx, dgamma, dbeta) = backward(&x, &r, &layer, &e);
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let g64: Vec<f64> = gamma.iter().map(|&v| f64::from(v)).collect();
        let b64: Vec<f64> = beta.iter().map(|&v| f64::from(v)).collect();
        let h = 1e-5;
        for i in 0..x.len() {
            let (mut p, mut q) = (x64.clone(), x64.clone());
            p[i] += h;
            q[i] -= h;
            let fd = (loss(&p, &g64, &b64) - loss(&q, &g64, &b64)) / (2.0 * h);
            assert!(
                (fd - f64::from(dx[i])).abs() < 1e-4,
                "{act:?} dx[{i}] fd {fd} vs {}",
                dx[i]
            );
        }
        for c in 0..e.c {
            let (mut p, mut q) = (g64.clone(), g64.clone());
            p[c] += h;
            q[c] -= h;
            let fd = (loss(&x64, &p, &b64) - loss(&x64, &q, &b64)) / (2.0 * h);
            assert!(
                (fd - f64::from(dgamma[c])).abs() < 1e-4,
                "{act:?} dγ[{c}] {fd} vs {}",
                dgamma[c]
            );
            let (mut p, mut q) = (b64.clone(), b64.clone());
            p[c] += h;
            q[c] -= h;
            let fd = (loss(&x64, &g64, &p) - loss(&x64, &g64, &q)) / (2.0 * h);
            assert!(
                (fd - f64::from(dbeta[c])).abs() < 1e-4,
                "{act:?} dβ[{c}] {fd} vs {}",
                dbeta[c]
            );
        }
    }

    // Evaluation mode by hand: channels 0 and 1, one plane of two each; running μ = [1, 0],
    // σ² = [3, 0] with ε = 1 (so 1/√(σ² + ε) = [0.5, 1]), γ = [2, −1], x = [1, 3 | 4, −2],
    // g = [1, 2 | 0.5, 3]: x̂ = [0, 1 | 4, −2]; ∂x = γ/√(σ² + ε) · g = [1, 2 | −0.5, −3];
    // ∂γ = Σ g x̂ = [2, 2 − 6 = −4]; ∂β = Σ g = [3, 3.5].
    #[test]
    fn evaluation_gradients_by_hand() {
        let e = Extent {
            n: 1,
            c: 2,
            plane: 2,
        };
        let (dx, dgamma, dbeta) = backward_eval(
            &[1.0, 3.0, 4.0, -2.0],
            &[1.0, 2.0, 0.5, 3.0],
            &Layer {
                gamma: &[2.0, -1.0],
                beta: &[0.0, 0.0],
                stats: &[1.0, 0.0, 3.0, 0.0],
                eps: 1.0,
                act: None,
            },
            &e,
        );
        assert_eq!(dx, vec![1.0, 2.0, -0.5, -3.0]);
        assert_eq!(dgamma, vec![2.0, -4.0]);
        assert_eq!(dbeta, vec![3.0, 3.5]);
    }
}
