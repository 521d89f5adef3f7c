//! `host weights`: look inside a pretrained-weights file (PyTorch legacy/zip or safetensors).
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use crate::weights::{self, StateDict};

/// Pretrained-weights files.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Print the format, tensor count, total elements and each tensor's name, type and shape.
    Inspect {
        /// A `.pth`/`.pt` (legacy or zip `torch.save`) or `.safetensors` file.
        path: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// One tensor's line of the report.
#[derive(Serialize)]
struct Entry<'a> {
    name: &'a str,
    dtype: String,
    shape: &'a [usize],
}

/// What `inspect` prints, as JSON with `--json`.
#[derive(Serialize)]
struct Report<'a> {
    path: String,
    format: String,
    tensors: usize,
    /// Elements over all tensors, buffers included (what `sum(t.numel() for t in sd.values())` gives).
    parameters: usize,
    entries: Vec<Entry<'a>>,
}

impl<'a> Report<'a> {
    fn new(path: &std::path::Path, dict: &'a StateDict) -> Self {
        let entries = dict
            .iter()
            .map(|(name, t)| Entry {
                name,
                dtype: t.dtype.to_string(),
                shape: &t.shape,
            })
            .collect();
        Report {
            path: path.display().to_string(),
            format: dict.format.to_string(),
            tensors: dict.len(),
            parameters: dict.total_elements(),
            entries,
        }
    }
}

/// Run `host weights …`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Inspect { path, json } => {
            // The error already names the file.
            let dict = weights::load(&path)?;
            let report = Report::new(&path, &dict);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("path: {}", report.path);
                println!("format: {}", report.format);
                println!("tensors: {}", report.tensors);
                println!(
                    "parameters: {} (all tensor elements, buffers included)",
                    report.parameters
                );
                for e in &report.entries {
                    println!("{} {} {:?}", e.name, e.dtype, e.shape);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
