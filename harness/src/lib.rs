//! servebench's harness: identical workloads on every backend, side-by-side ratios.
//!
//! The binary's `main` only calls [`run`], so tests drive the whole program in-process
//! exactly as a user does from the shell. The modules are layers, each using only those
//! below it (a test, `layers.rs`, reads their `crate::` paths to keep it so):
//!
//! 1. [`stats`] (percentiles, stability, bootstrap intervals), [`agreement`]; [`alloc`]:
//!    the allocator the binary installs;
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
pub mod alloc;
pub mod cli;
pub mod compare;
pub mod config;
pub mod diff;
mod error;
#[cfg(test)]
mod layers;
pub mod load;
pub mod output;
pub mod precision;
mod progress;
pub mod registry;
pub mod report;
pub mod resources;
pub mod results;
pub mod stats;

pub use error::{HarnessError, Signal};

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use cli::{Command, ParseError};
use config::RunConfig;

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
        let (tx, stop) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let first = stop_signal().await;
            // A server still starting on a blocking thread gives up and stops.
            registry::cancel_starts();
            let _ = tx.send(Some(first));
            // A second signal does not wait for the first to finish: the managed
            // servers' watchdogs stop them once the harness is gone.
            let second = stop_signal().await;
            eprintln!("error: interrupted twice (by {first}, then {second})");
            std::process::exit(128 + i32::from(second.number()));
        });
        dispatch(cli.command, stop).await
    });
    // Dropping the runtime drops every task and, with them, every backend: executor
    // threads are joined and managed servers are stopped.
    runtime.shutdown_timeout(Duration::from_secs(10));
    // The closed loop's load threads drop what is left on them (nothing, unless a
    // window was cut) and end.
    load::threads::shutdown();
    match outcome {
        Ok(Outcome::Complete) => ExitCode::SUCCESS,
        Ok(Outcome::Partial) => ExitCode::from(EXIT_PARTIAL),
        Ok(Outcome::Interrupted(signal)) => ExitCode::from(128 + signal.number()),
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                // 128 + the signal's number, as a shell reports a process it ended.
                HarnessError::Interrupted(signal) => ExitCode::from(128 + signal.number()),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// Exit status of a run whose results are partial: some backend failed, the others
/// were measured and written.
pub const EXIT_PARTIAL: u8 = 3;

/// How a command ended, when it wrote what it had.
enum Outcome {
    /// Everything planned was measured (or the command measures nothing).
    Complete,
    /// Some backend failed; the others were measured.
    Partial,
    /// A signal stopped the run; what was measured was written.
    Interrupted(Signal),
}

/// Waits for the first of SIGINT (Ctrl-C), SIGTERM (`timeout`, CI cancellation,
/// `docker stop`) and SIGHUP (a closed terminal): each ends the run alike, stopping
/// every managed server. A signal that cannot be watched is never reported.
async fn stop_signal() -> error::Signal {
    use tokio::signal::unix::{signal, SignalKind};
    async fn one(kind: SignalKind, which: error::Signal) -> error::Signal {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
                which
            }
            Err(_) => std::future::pending().await,
        }
    }
    tokio::select! {
        s = one(SignalKind::interrupt(), error::Signal::Int) => s,
        s = one(SignalKind::terminate(), error::Signal::Term) => s,
        s = one(SignalKind::hangup(), error::Signal::Hup) => s,
    }
}

async fn dispatch(command: Command, stop: error::Stop) -> Result<Outcome, HarnessError> {
    match command {
        Command::Compare(args) => measure_and_report(RunConfig::compare(*args)?, false, stop).await,
        Command::Run(args) => measure_and_report(RunConfig::run(*args)?, true, stop).await,
        Command::Backends => {
            list_backends();
            Ok(Outcome::Complete)
        }
        Command::Diff(args) => {
            let (old, new) = (diff::read(&args.old)?, diff::read(&args.new)?);
            let d = diff::diff(&old.results, &new.results, args.threshold, new.config.seed);
            print!("{}", d.render(args.markdown));
            match d.regressions() {
                0 => Ok(Outcome::Complete),
                n => Err(HarnessError::Regression(format!(
                    "{n} cells regressed beyond {}%",
                    args.threshold
                ))),
            }
        }
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&results::schema()).expect("schema");
            println!("{schema}");
            Ok(Outcome::Complete)
        }
    }
}

/// Measures the plan, writes its files and prints its page (`single`: the one table of
/// `harness run`).
async fn measure_and_report(
    cfg: RunConfig,
    single: bool,
    stop: error::Stop,
) -> Result<Outcome, HarnessError> {
    output::check_paths(&cfg.results_dir, cfg.json.as_deref())?;
    output::check_tmpdir()?;
    let signal = stop.clone();
    let results = compare::grid(cfg.plans(), cfg.record.clone(), stop).await?;
    let signal = *signal.borrow();
    // The tables are printed even when a file cannot be written. A run stopped before
    // anything was measured writes its (empty, `interrupted`) results and no tables.
    let written = output::write_outputs(&results);
    let nothing = signal.is_some() && results.results.is_empty();
    if nothing {
        for line in failure_lines(&results) {
            println!("{line}");
        }
        if let Ok(written) = &written {
            println!("{}", written.line());
        }
    } else if results.config.format == results::Format::Csv {
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
        // Prose lines fit the page as its tables do (`--wide` keeps them whole).
        let fit = |line: String| if wide { line } else { report::wrap(&line) };
        for line in failure_lines(&results) {
            println!("{}", fit(line));
        }
        if let Ok(written) = &written {
            println!("{}", fit(written.line()));
        }
    }
    written?;
    for line in failure_lines(&results) {
        eprintln!("{}", report::wrap(&format!("warning: {line}")));
    }
    Ok(match (signal, results.partial()) {
        (Some(signal), _) => Outcome::Interrupted(signal),
        (None, true) => Outcome::Partial,
        (None, false) => Outcome::Complete,
    })
}

/// One line per failed backend, and one if the run was interrupted.
fn failure_lines(results: &results::Results) -> Vec<String> {
    let mut lines: Vec<String> = results
        .failed
        .iter()
        .map(|f| {
            let kinds: Vec<String> = f
                .error_kinds
                .iter()
                .map(|k| format!("{} {}", k.kind, k.count))
                .collect();
            let counts = if kinds.is_empty() {
                String::new()
            } else {
                format!(" (errors: {})", kinds.join(", "))
            };
            format!(
                "{} failed at {} and was not measured after it{counts}: {}",
                f.backend, f.at, f.reason
            )
        })
        .collect();
    if let Some(signal) = &results.interrupted {
        lines.push(format!(
            "interrupted by {signal}: the results hold only what was measured until then"
        ));
    }
    lines
}

fn list_backends() {
    // Opening with no models checks that the engine or server can start.
    let opts = contract::OpenOptions {
        models: vec![],
        fixtures_dir: fixtures::default_dir(),
        workers: 1,
        intra_threads: 1,
        device: contract::Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    };
    for entry in registry::entries() {
        match (entry.open)(&opts, &registry::BackendOptions::default()) {
            Ok(b) => println!("{:<14} available: {}", entry.name, b.describe().engine),
            Err(e) => println!("{:<14} {e}", entry.name),
        }
    }
}
