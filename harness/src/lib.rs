//! servebench's harness: identical workloads on every backend, side-by-side ratios.
//!
//! The binary's `main` only calls [`run`], so tests drive the whole program in-process
//! exactly as a user does from the shell. The modules follow the life of a run:
//! [`config`] turns flags and a TOML file into a validated [`config::RunConfig`];
//! [`registry`] knows every backend; [`compare`] opens them, checks that their outputs
//! agree, and measures each point with the closed-loop generator in [`load`];
//! [`stats`] summarises latencies and [`report`] prints tables and writes the JSON
//! results (schema: `results/schema.json`) and a Markdown report.
#![deny(missing_docs)]

pub mod agreement;
pub mod compare;
pub mod config;
mod error;
pub mod load;
mod progress;
pub mod registry;
pub mod report;
pub mod stats;

pub use error::HarnessError;

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Command line of the `harness` binary.
#[derive(Debug, Parser)]
#[command(
    name = "harness",
    version,
    about = "Compare ways of serving a model on identical workloads."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run identical text-CNN and ResNet workloads on every backend and print
    /// side-by-side latency tables with ratios, for small and large batches.
    Compare(Box<config::Settings>),
    /// List the backends and whether each can run on this machine.
    Backends,
}

/// Exit status after Ctrl-C.
const INTERRUPTED: u8 = 130;

/// Runs the program with `args` (the first is the program name) and returns its exit
/// status. Errors are printed as one sentence on stderr.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
        Command::Compare(settings) => {
            let cfg = settings.with_file()?.validate(&registry::names())?;
            registry::configure(&cfg);
            let results = compare::compare(cfg).await?;
            let written = report::write_outputs(&results)?;
            print_report(&results, &written);
            Ok(())
        }
        Command::Backends => {
            list_backends();
            Ok(())
        }
    }
}

fn print_report(results: &report::Results, written: &report::Written) {
    for d in results.backends.iter().map(|b| &b.description) {
        if d.details.contains_key("test_peer") {
            println!("{} answered from servebench's test peer, not TF Serving: its timings say nothing about TF Serving.\n", d.name);
        }
    }
    if !results.unavailable.is_empty() {
        println!("Not measured:\n{}", report::unavailable_lines(results));
    }
    if !results.agreement.is_empty() {
        println!(
            "Agreement with {} (same inputs, before timing):\n{}\n",
            results.config.reference,
            report::agreement_table(results, false)
        );
    }
    print!("{}", report::ratio_tables(results, false));
    print!("{}", report::breakdown_table(results, false));
    println!(
        "Results: {} (JSON), {} (Markdown)",
        written
            .json
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        written.markdown.display()
    );
}

fn list_backends() {
    // Opening with no models checks that the engine or server can start.
    let opts = contract::OpenOptions {
        models: vec![],
        fixtures_dir: fixtures::default_dir(),
        workers: 1,
        intra_threads: 1,
        device: contract::Device::Cpu,
        server_urls: Default::default(),
    };
    for entry in registry::entries() {
        match (entry.open)(&opts) {
            Ok(b) => println!("{:<14} available: {}", entry.name, b.describe().engine),
            Err(e) => println!("{:<14} {e}", entry.name),
        }
    }
}
