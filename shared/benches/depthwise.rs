//! `cargo bench -p fovea-shared --bench depthwise`: the depthwise kernel on EfficientNet-B0's
//! depthwise layers at 224 px (TF "same" padding, batch 1, bias, one thread: the device's
//! default), median µs of 300 calls per layer and the B0 total (each layer times how often B0
//! has it). Each layer runs as the device runs it: `forward_prepared_into` with its weights
//! prepared once, into a fresh output; what it picks per layer (the plane path or the
//! small-plane path) is what is timed. Beside it, the same layer on a channels-last input
//! (`ChannelsLast`, `[h, w, c]`: no staging), its output channels-last and in planes (the
//! device's form: an in-register transpose on the way out), both checked equal to the NCHW
//! path's bit for bit before timing; the three are timed call by call in turn.
use std::hint::black_box;
use std::time::Instant;

use shared::depthwise::{ChannelsLast, Geometry, Prepared, Spread, forward_prepared_into};

/// B0's depthwise layers: (channels, input side, kernel, stride, how many).
const B0: [(usize, usize, usize, usize, usize); 12] = [
    (32, 112, 3, 1, 1),
    (96, 112, 3, 2, 1),
    (144, 56, 3, 1, 1),
    (144, 56, 5, 2, 1),
    (240, 28, 5, 1, 1),
    (240, 28, 3, 2, 1),
    (480, 14, 3, 1, 2),
    (480, 14, 5, 1, 1),
    (672, 14, 5, 1, 2),
    (672, 14, 5, 2, 1),
    (1152, 7, 5, 1, 3),
    (1152, 7, 3, 1, 1),
];

fn main() {
    let calls = 300;
    // `cargo bench -p fovea-shared --bench depthwise -- 672` times only the layers with that
    // many channels (cargo's own `--bench` flag is passed through too, and ignored).
    let only: Option<usize> = std::env::args().skip(1).find_map(|a| a.parse().ok());
    let (mut total, mut total_last, mut total_planes) = (0.0, 0.0, 0.0);
    println!(
        "| channels | side | kernel | stride | µs | GMAC/s | channels-last µs | channels-last in, planes out µs |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (c, side, k, s, count) in B0 {
        if only.is_some_and(|o| o != c) {
            continue;
        }
        let out = side.div_ceil(s);
        let pad = ((out - 1) * s + k).saturating_sub(side) / 2;
        let geo = Geometry {
            n: 1,
            c,
            h: side,
            w: side,
            kh: k,
            kw: k,
            oh: out,
            ow: out,
            sh: s,
            sw: s,
            ph: pad,
            pw: pad,
        };
        let x: Vec<f32> = (0..c * side * side)
            .map(|i| (i % 97) as f32 * 0.01)
            .collect();
        let w: Vec<f32> = (0..c * k * k)
            .map(|i| (i % 13) as f32 * 0.1 - 0.6)
            .collect();
        let bias: Vec<f32> = (0..c).map(|i| i as f32 * 0.001).collect();
        // As the device runs a layer: its weights prepared once, a fresh output per call.
        let layer = Prepared::new(&w, Some(&bias), &geo);
        let len = c * out * out;
        let nchw = || {
            let mut y = Vec::<f32>::with_capacity(len);
            forward_prepared_into(
                &x,
                &layer,
                Spread::Serial,
                &mut y.spare_capacity_mut()[..len],
                &|_| {},
            );
            // SAFETY: `forward_prepared_into` wrote all `len` values.
            unsafe { y.set_len(len) };
            y
        };
        let last_layer = ChannelsLast::new(&w, Some(&bias), &geo);
        let x_last = to_last(&x, c, side * side);
        let last = || {
            let mut y = Vec::<f32>::with_capacity(len);
            last_layer.forward_into(&x_last, &mut y.spare_capacity_mut()[..len]);
            // SAFETY: `forward_into` wrote all `len` values.
            unsafe { y.set_len(len) };
            y
        };
        let planes = || {
            let mut y = Vec::<f32>::with_capacity(len);
            let out = &mut y.spare_capacity_mut()[..len];
            last_layer.forward_into_planes(&x_last, out, Spread::Serial, false);
            // SAFETY: `forward_into_planes` wrote all `len` values.
            unsafe { y.set_len(len) };
            y
        };
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&to_last(&nchw(), c, out * out)),
            bits(&last()),
            "{c} × {side}², {k}×{k} stride {s}: channels-last differs from NCHW"
        );
        assert_eq!(
            bits(&nchw()),
            bits(&planes()),
            "{c} × {side}², {k}×{k} stride {s}: planes out differ from NCHW"
        );
        let time = |f: &dyn Fn() -> Vec<f32>| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64() * 1e6
        };
        let (mut times, mut times_last, mut times_planes) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..calls {
            times.push(time(&nchw));
            times_last.push(time(&last));
            times_planes.push(time(&planes));
        }
        let median = |mut t: Vec<f64>| {
            t.sort_by(f64::total_cmp);
            t[calls / 2]
        };
        let (us, us_last, us_planes) = (median(times), median(times_last), median(times_planes));
        let macs = (c * out * out * k * k) as f64;
        total += us * count as f64;
        total_last += us_last * count as f64;
        total_planes += us_planes * count as f64;
        println!(
            "| {c} | {side} | {k} | {s} | {us:.1} | {:.1} | {us_last:.1} | {us_planes:.1} |",
            macs / us / 1e3
        );
    }
    println!(
        "\nB0 total (each layer × its count): {:.2} ms; channels-last {:.2} ms; channels-last in, planes out {:.2} ms",
        total / 1e3,
        total_last / 1e3,
        total_planes / 1e3
    );
}

/// `[plane, c]` from `[c, plane]`.
fn to_last(v: &[f32], c: usize, plane: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for ch in 0..c {
        for p in 0..plane {
            out[p * c + ch] = v[ch * plane + p];
        }
    }
    out
}
