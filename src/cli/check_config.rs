//! `edgesift check-config`: validates a config file without running anything.

use anyhow::Result;
use clap::Args;
use edgesift::config::{self, Config};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct CheckConfigArgs {
    /// Config file. Default: the one `edgesift run` would use.
    pub file: Option<PathBuf>,
}

pub fn run(a: CheckConfigArgs) -> Result<ExitCode> {
    let path = match config::locate(a.file.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("edgesift: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    match Config::load(&path) {
        Ok(cfg) => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            // The model file is the one thing validation cannot see without I/O; say whether
            // it would be found, since a missing model stops the daemon at start.
            match cfg.model.resolve_path(dir) {
                Ok(model) => println!(
                    "{}: ok (source {}, model {})",
                    path.display(),
                    cfg.source.kind.name(),
                    model.display()
                ),
                Err(e) => {
                    eprintln!("{}: model.{e}", path.display());
                    return Ok(ExitCode::from(2));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(2))
        }
    }
}
