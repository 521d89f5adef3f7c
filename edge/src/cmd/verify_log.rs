//! `edge verify-log [LOG]`: check the audit log's hash chain; report the first bad record and
//! a torn last line. Exit 0 when intact, 1 otherwise.
use std::path::PathBuf;
use std::process::ExitCode;

use shared::device::DeviceLayout;

use crate::audit;

/// Arguments of `edge verify-log`.
#[derive(clap::Args)]
pub struct Args {
    /// The log (default: the device's log/audit.jsonl).
    log: Option<PathBuf>,
    /// Device root, when no LOG is given.
    #[arg(long, env = "FOVEA_DEVICE", default_value = "/var/lib/fovea")]
    device: PathBuf,
}

/// Runs `edge verify-log`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = args
        .log
        .unwrap_or_else(|| DeviceLayout::new(&args.device).audit_log());
    let v = audit::verify(&path)?;
    let name = path.display();
    match &v.first_bad {
        Some((line, reason)) => println!(
            "{name}: BROKEN at line {line}: {reason}; records 1..{} verify",
            v.valid
        ),
        None => println!("{name}: {} records verify", v.valid),
    }
    if let Some(bytes) = v.torn_tail {
        println!(
            "{name}: torn last line after record {} ({bytes} bytes without a newline: a write \
             cut by power loss); the records before it are intact",
            v.valid
        );
    }
    Ok(if v.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
