//! servebench's harness: identical workloads on every backend, side-by-side ratios.
//!
//! The binary's `main` only calls [`run`], so tests drive the whole program in-process
//! exactly as a user does from the shell. The modules are layers, each using only those
//! below it (a test, `layers.rs`, reads their `crate::` paths to keep it so):
//!
//! 1. [`stats`] (percentiles, stability, bootstrap intervals), [`agreement`];
//! 2. [`load`]: load shapes, windows, the closed- and open-loop generators; [`registry`]:
//!    every backend and how to open it;
//!    [`resources`]: CPU, memory and GPU use of whatever serves a backend, sampled while
//!    a point is measured;
//! 3. [`results`]: the results model, what `results.json` holds (schema generated from
//!    it: `results/schema.json`), readable back;
//! 4. [`compare`]: follows a [`compare::Plan`]: opens the backends, checks that their
//!    outputs agree, measures each point (a model, a batch size and a load level) in
//!    `--trials` shuffled, interleaved trials, one result row per point and backend;
//! 5. [`report`]: pure functions from results to the terminal page, Markdown and CSV;
//!    [`diff`]: two runs' results compared cell by cell (`harness diff`);
//! 6. [`output`]: writes a run's files;
//! 7. [`cli`] (typed flag groups, the config file read as flags) and [`config`] (the
//!    cross-field defaults, and the one plan of a run).
#![deny(missing_docs)]

pub mod agreement;
pub mod cli;
pub mod compare;
pub mod config;
pub mod diff;
mod error;
#[cfg(test)]
mod layers;
pub mod load;
pub mod output;
mod progress;
pub mod registry;
pub mod report;
pub mod resources;
pub mod results;
pub mod stats;

pub use error::HarnessError;

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use cli::{Command, ParseError};
use config::RunConfig;

/// Exit status after Ctrl-C.
const INTERRUPTED: u8 = 130;

/// Runs the program with `args` (the first is the program name) and returns its exit
/// status. Errors are printed as one sentence on stderr.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::parse(args) {
        Ok(cli) => cli,
        Err(ParseError::Clap(e)) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        Err(ParseError::File(e)) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_name(load::cpu::CLIENT_THREAD_NAME)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = dispatch(cli.command) => r,
            _ = tokio::signal::ctrl_c() => {
                // A server still starting on a blocking thread gives up and stops.
                registry::cancel_starts();
                Err(HarnessError::Interrupted)
            }
        }
    });
    // Dropping the runtime drops every task and, with them, every backend: executor
    // threads are joined and managed servers are stopped.
    runtime.shutdown_timeout(Duration::from_secs(10));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if matches!(e, HarnessError::Interrupted) {
                ExitCode::from(INTERRUPTED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn dispatch(command: Command) -> Result<(), HarnessError> {
    match command {
        Command::Compare(args) => measure_and_report(RunConfig::compare(*args)?, false).await,
        Command::Run(args) => measure_and_report(RunConfig::run(*args)?, true).await,
        Command::Backends => {
            list_backends();
            Ok(())
        }
        Command::Diff(args) => {
            let (old, new) = (diff::read(&args.old)?, diff::read(&args.new)?);
            let d = diff::diff(&old.results, &new.results, args.threshold, new.config.seed);
            print!("{}", d.render(args.markdown));
            match d.regressions() {
                0 => Ok(()),
                n => Err(HarnessError::Regression(format!(
                    "{n} cells regressed beyond {}%",
                    args.threshold
                ))),
            }
        }
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&results::schema()).expect("schema");
            println!("{schema}");
            Ok(())
        }
    }
}

/// Measures the plan, writes its files and prints its page (`single`: the one table of
/// `harness run`).
async fn measure_and_report(cfg: RunConfig, single: bool) -> Result<(), HarnessError> {
    let results = compare::compare(cfg.plan()).await?;
    let written = output::write_outputs(&results)?;
    if results.config.format == results::Format::Csv {
        print!("{}", report::csv(&results));
    } else {
        let wide = cfg.wide;
        let page = if single {
            report::run_page(&results, wide)
        } else if wide {
            report::page(&results, report::Layout::Wide)
        } else {
            report::page(&results, report::Layout::Narrow)
        };
        print!("{page}");
        println!("{}", written.line());
    }
    Ok(())
}

fn list_backends() {
    // Opening with no models checks that the engine or server can start.
    let opts = contract::OpenOptions {
        models: vec![],
        fixtures_dir: fixtures::default_dir(),
        workers: 1,
        intra_threads: 1,
        device: contract::Device::Cpu,
    };
    for entry in registry::entries() {
        match (entry.open)(&opts, &registry::BackendOptions::default()) {
            Ok(b) => println!("{:<14} available: {}", entry.name, b.describe().engine),
            Err(e) => println!("{:<14} {e}", entry.name),
        }
    }
}
