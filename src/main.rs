//! The `edgesift` command: thin glue over the library (see `docs/ARCHITECTURE.md`).
//!
//! The only place that uses `anyhow` and chooses exit codes: 0 success, 1 runtime failure,
//! 2 bad usage or configuration (clap's own convention for usage errors), 3 `edgesift check`
//! found an inconsistent store.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before the first thread (malloc's arenas are made as threads first allocate); every
    // command that runs the network gains from it, not only `run`.
    edgesift::ops::tune_allocator();
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    match cli::run(args.command) {
        Ok(code) => code,
        // A closed pipe (`edgesift ... | head`) is the reader's choice, not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}
