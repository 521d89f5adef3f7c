//! `edge check IMAGE…`: decode each capture and run the quality gate, printing one JSON line each.
//!
//! The gate that runs before every screening, usable on its own to check a camera's set-up.
//! An image that cannot be read is reported (and sets exit code 1); it never stops the batch.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use shared::decode::{self, Source};
use shared::quality::{self, Measures, QualityConfig, Verdict};

/// Which thresholds to apply (until a device bundle supplies them).
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Modality {
    /// Colour fundus photograph: a circular field of view is required.
    Fundus,
    /// Radiograph (chest X-ray): the whole frame is the image.
    Radiograph,
}

/// Arguments of `edge check`.
#[derive(clap::Args)]
pub struct Args {
    /// Image files (PNG, JPEG, TIFF, BMP or DICOM).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Quality thresholds to apply.
    #[arg(long, value_enum, default_value = "fundus")]
    modality: Modality,
}

#[derive(Serialize)]
struct Line<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a Source>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    verdict: Option<&'a Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    measures: Option<&'a Measures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Runs `edge check`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = match args.modality {
        Modality::Fundus => QualityConfig::default(),
        Modality::Radiograph => QualityConfig::radiograph(),
    };
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for path in &args.images {
        let file = path.display().to_string();
        let line = match decode::decode_file(path) {
            Ok(decoded) => {
                let report = quality::assess(&decoded.image, &cfg);
                serde_json::to_string(&Line {
                    file,
                    source: Some(&decoded.source),
                    verdict: Some(&report.verdict),
                    // Nothing was measured when the gate stopped at "no field of view".
                    measures: (report.fov.is_some() || !cfg.require_fov)
                        .then_some(&report.measures),
                    error: None,
                })?
            }
            Err(e) => {
                failed = true;
                serde_json::to_string(&Line {
                    file,
                    source: None,
                    verdict: None,
                    measures: None,
                    error: Some(e.to_string()),
                })?
            }
        };
        writeln!(out, "{line}")?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
