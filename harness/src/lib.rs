//! servebench's harness: identical workloads on every backend, side-by-side ratios.
//!
//! The binary's `main` only calls [`run`], so tests drive the whole program in-process
//! exactly as a user does from the shell. The modules follow the life of a run:
//! [`config`] turns flags and a TOML file into a validated [`config::RunConfig`];
//! [`registry`] knows every backend; [`compare`] opens them, checks that their outputs
//! agree, and measures each point — a model, a batch size and a load level — in
//! `--trials` shuffled, interleaved trials, each a series of windows run until stable,
//! with the closed- or open-loop generators of [`load`]; [`stats`] summarises latencies
//! (percentiles, slowest requests, bootstrap intervals of ratios) and [`report`] prints
//! tables (or perf_analyzer-style CSV) and writes the JSON results (schema:
//! `results/schema.json`) and a Markdown report. `harness run` measures one backend,
//! model and batch size the same way and prints one table.
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
    /// Measure one backend on one model and batch size (like perf_analyzer for one
    /// model) and print one table; writes the JSON results too.
    Run(Box<RunArgs>),
    /// List the backends and whether each can run on this machine.
    Backends,
}

/// Flags of `harness run`: the target, plus every load and output setting of `compare`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Backend to measure (NAME or NAME@LABEL).
    #[arg(long, value_name = "NAME")]
    pub backend: String,
    /// Model: text-cnn, resnet18 or resnet50.
    #[arg(long, value_name = "MODEL")]
    pub model: String,
    /// Samples per request.
    #[arg(long, value_name = "N")]
    pub batch: usize,
    /// Load, window, trial and output settings (as for compare).
    #[command(flatten)]
    pub settings: config::Settings,
}

impl RunArgs {
    /// The validated configuration of a single-target run.
    fn config(self) -> Result<config::RunConfig, HarnessError> {
        let s = self.settings.with_file()?;
        for (given, flag) in [
            (s.backends.is_some(), "--backends"),
            (s.models.is_some(), "--models"),
            (s.small_batches.is_some(), "--small-batches"),
            (s.large_batches.is_some(), "--large-batches"),
            (s.large_batches_resnet.is_some(), "--large-batches-resnet"),
        ] {
            if given {
                return Err(HarnessError::Config(format!(
                    "harness run measures one target: give --backend, --model and --batch, not {flag}"
                )));
            }
        }
        let settings = config::Settings {
            reference: Some(s.reference.clone().unwrap_or_else(|| self.backend.clone())),
            backends: Some(vec![self.backend]),
            models: Some(vec![self.model]),
            small_batches: Some(vec![self.batch]),
            large_batches: Some(vec![self.batch]),
            large_batches_resnet: Some(vec![self.batch]),
            ..s
        };
        let mut cfg = settings.validate(&registry::names())?;
        cfg.single = true;
        Ok(cfg)
    }
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
        Command::Compare(settings) => {
            let cfg = settings.with_file()?.validate(&registry::names())?;
            measure_and_report(cfg).await
        }
        Command::Run(args) => measure_and_report(args.config()?).await,
        Command::Backends => {
            list_backends();
            Ok(())
        }
    }
}

async fn measure_and_report(cfg: config::RunConfig) -> Result<(), HarnessError> {
    registry::configure(&cfg);
    let results = compare::compare(cfg).await?;
    let written = report::write_outputs(&results)?;
    if results.config.format == config::Format::Csv {
        print!("{}", report::csv(&results));
    } else if results.config.single {
        print!("{}", report::tails_tables(&results, false));
        println!("{}\n", report::legend(false));
        print_written(&written);
    } else {
        print_report(&results, &written);
    }
    Ok(())
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
    print!("{}", report::tails_tables(results, false));
    print!("{}", report::breakdown_table(results, false));
    print_written(written);
}

fn print_written(written: &report::Written) {
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
