//! `host keygen --out KEY`: a new ed25519 signing key (KEY) and its public key (KEY.pub).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, ensure};
use shared::bundle::SigningKey;

/// Arguments of `host keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// The private key file to write; the public key goes to the same path plus `.pub`.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `host keygen`; never overwrites a key.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let public = PathBuf::from(format!("{}.pub", args.out.display()));
    for path in [&args.out, &public] {
        ensure!(
            !path.exists(),
            "{}: exists; refusing to overwrite a key (devices that trust it would refuse bundles \
             signed by the new one)",
            path.display()
        );
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = SigningKey::generate()?;
    key.write_file(&args.out)?;
    key.verifying_key().write_file(&public)?;
    println!(
        "key {}: private {} (keep it on the workstation), public {} (trust it on devices)",
        key.verifying_key().key_id(),
        args.out.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}
