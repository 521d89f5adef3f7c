//! Would tract's NNEF form of a model load faster than the ONNX a bundle carries? (Issue 7:
//! "consider storing tract's NNEF form in the bundle if it loads faster".)
//!
//!   cargo run --release -p fovea-edge --example nnef_load compare MODEL.onnx [ROUNDS] [SIDE]
//!   cargo run --release -p fovea-edge --example nnef_load convert MODEL.onnx OUT.nnef.tar [SIDE]
//!   cargo run --release -p fovea-edge --example nnef_load load FILE [SIDE]
//!
//! The NNEF form is tract's own decluttered model of what `edge`'s loader reads (`plan::typed`,
//! then tract's declutter: the writer knows tract's ops, not fovea's), written by tract-nnef with
//! its `tract_core` extension. `compare` converts once, then times ROUNDS (default 5)
//! alternating loads of each form to a runnable plan with fovea's ops placed (fovea's declutter,
//! `depthwise::declutter`, then `plan::plan_decluttered`, the same for both): ONNX = decode,
//! dequantization fold, import, typing and declutter; NNEF = reading the tar and the declutter of
//! what it read. It prints the medians per phase, both files' sizes, whether the two plans give
//! the same outputs bit for bit on one input (and their largest difference) and which fovea ops
//! each plan runs. `load` loads one file as the screener does (its bytes freed before tract's
//! copy, under `heap::loading`), runs it once and prints the load time and the process's
//! peak RSS, one form per process.
use std::time::Instant;

use anyhow::Context;
use shared::infer::{depthwise, plan};
use tract_onnx::prelude::*;

#[path = "../src/runtime/heap.rs"]
mod heap;
#[allow(dead_code)]
#[path = "../src/runtime/model.rs"]
mod model;
#[path = "../src/runtime/spin.rs"]
mod spin;

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A test image of varied values (not a constant), so that two plans that differ show it.
fn input(side: usize) -> Tensor {
    Tensor::from(tract_ndarray::Array4::<f32>::from_shape_fn(
        (1, 3, side, side),
        |(_, c, y, x)| ((c * 7 + y * 3 + x) % 17) as f32 / 17.0 - 0.5,
    ))
}

fn outputs(plan: &model::Plan, side: usize) -> anyhow::Result<Vec<Vec<f32>>> {
    let out = model::infer(plan, input(side))?;
    out.iter()
        .map(|t| Ok(t.to_plain_array_view::<f32>()?.iter().copied().collect()))
        .collect()
}

/// How many of each fovea op the plan runs.
fn fovea_ops(plan: &model::Plan) -> std::collections::BTreeMap<String, usize> {
    let mut n = std::collections::BTreeMap::new();
    for node in plan.model().nodes() {
        let name = node.op().name().to_string();
        if name.starts_with("Fovea") {
            *n.entry(name).or_default() += 1;
        }
    }
    n
}

fn to_nnef(onnx: &[u8], side: usize) -> anyhow::Result<Vec<u8>> {
    // tract's own declutter: the NNEF writer knows tract's ops, not fovea's depthwise op that
    // `plan::decluttered` places during the declutter.
    let m = plan::typed(shared::onnx::model::decode(onnx)?, side)?.into_decluttered()?;
    tract_nnef::nnef().write_to_tar(&m, Vec::new())
}

fn nnef_decluttered(tar: &[u8]) -> anyhow::Result<TypedModel> {
    let mut m = tract_nnef::nnef()
        .model_for_read(&mut &tar[..])
        .context("tract cannot read the NNEF tar")?;
    depthwise::declutter(&mut m)?;
    Ok(m)
}

fn peak_rss_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM without a value")?
        .parse()?;
    Ok(kib / 1024.0)
}

fn compare(path: &str, rounds: usize, side: usize) -> anyhow::Result<()> {
    let onnx = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let tar = to_nnef(&onnx, side)?;
    let (mut o_import, mut o_plan, mut n_read, mut n_plan) = (vec![], vec![], vec![], vec![]);
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let m = plan::decluttered(shared::onnx::model::decode(&onnx)?, side)?;
        o_import.push(ms(t));
        let t = Instant::now();
        let a = plan::plan_decluttered(m)?;
        o_plan.push(ms(t));
        let t = Instant::now();
        let m = nnef_decluttered(&tar)?;
        n_read.push(ms(t));
        let t = Instant::now();
        let b = plan::plan_decluttered(m)?;
        n_plan.push(ms(t));
        last = Some((a, b));
    }
    let (a, b) = last.context("ROUNDS must be at least 1")?;
    let (ya, yb) = (outputs(&a, side)?, outputs(&b, side)?);
    let same = ya.len() == yb.len()
        && ya.iter().zip(&yb).all(|(p, q)| {
            p.len() == q.len() && p.iter().zip(q).all(|(x, y)| x.to_bits() == y.to_bits())
        });
    let (oi, op, nr, np) = (
        median(o_import),
        median(o_plan),
        median(n_read),
        median(n_plan),
    );
    println!("{path} at {side} px, medians of {rounds} alternating rounds:");
    println!("| form | file MB | to decluttered ms | fovea ops + optimize ms | total ms |");
    println!("|---|---|---|---|---|");
    println!(
        "| ONNX | {:.1} | {oi:.1} | {op:.1} | {:.1} |",
        onnx.len() as f64 / 1e6,
        oi + op
    );
    println!(
        "| NNEF | {:.1} | {nr:.1} | {np:.1} | {:.1} |",
        tar.len() as f64 / 1e6,
        nr + np
    );
    let diff = ya
        .iter()
        .zip(&yb)
        .flat_map(|(p, q)| p.iter().zip(q).map(|(x, y)| (x - y).abs()))
        .fold(0f32, f32::max);
    println!(
        "outputs bit for bit equal: {same} (max |Δ| {diff:e}); fovea ops placed: ONNX {:?}, NNEF {:?}",
        fovea_ops(&a),
        fovea_ops(&b)
    );
    Ok(())
}

fn load(path: &str, side: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    let plan = heap::loading(|| -> anyhow::Result<model::Plan> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        if path.ends_with(".onnx") {
            let proto = shared::onnx::model::decode(&bytes)?;
            drop(bytes);
            model::load_proto(proto, side)
        } else {
            let mut m = tract_nnef::nnef()
                .model_for_read(&mut &bytes[..])
                .context("tract cannot read the NNEF tar")?;
            drop(bytes);
            depthwise::declutter(&mut m)?;
            Ok(plan::plan_decluttered(m)?)
        }
    })?;
    let load_ms = ms(t);
    outputs(&plan, side)?;
    println!(
        "{path}: load + optimize {load_ms:.1} ms, peak RSS after one inference {:.1} MiB",
        peak_rss_mib()?
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let num = |i: usize, default: usize| arg(i).map_or(Ok(default), str::parse);
    match (arg(0), arg(1)) {
        (Some("compare"), Some(path)) => compare(path, num(2, 5)?, num(3, 224)?),
        (Some("convert"), Some(path)) => {
            let out = arg(2).context("convert needs OUT.nnef.tar")?;
            let tar = to_nnef(
                &std::fs::read(path).with_context(|| format!("reading {path}"))?,
                num(3, 224)?,
            )?;
            std::fs::write(out, tar).with_context(|| format!("writing {out}"))
        }
        (Some("load"), Some(path)) => load(path, num(2, 224)?),
        _ => anyhow::bail!(
            "usage: nnef_load compare MODEL.onnx [ROUNDS] [SIDE] | convert MODEL.onnx OUT.nnef.tar [SIDE] | load FILE [SIDE]"
        ),
    }
}
