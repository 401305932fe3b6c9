//! The command line: typed flag groups ([`args`]) flattened into each subcommand, and
//! the config file read as flags put before the command line's own ([`file`]).
//!
//! What the parser cannot say (defaults that depend on other settings, a baseline that
//! must be among the backends) is left to [`crate::config`], which turns the parsed
//! flags into one plan.

pub mod args;
mod file;

use std::ffi::OsString;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

pub use args::{
    spelled, AgreementArgs, LoadArgs, MeasureArgs, OutputArgs, Selection, ServerArgs, Stack,
    Target, Workload,
};

use crate::HarnessError;

/// The exit statuses, as `--help` lists them (the README says the same).
pub const EXIT_STATUS: &str = "\
Exit status:
  0        every backend that opened was measured at every point
  1        nothing was measured: a bad setting, missing fixtures, or every backend failed
  2        a flag could not be parsed
  3        partial: some backend failed (results.json lists it under `failed`), the others
           were measured and written
  129/130/143  stopped by SIGHUP/SIGINT/SIGTERM; what was measured was written, flagged
           `interrupted`
Every managed server is stopped on each of these, and after SIGKILL by its watchdog.";

/// Command line of the `harness` binary.
#[derive(Debug, Parser)]
#[command(
    name = "harness",
    version,
    about = "Compare ways of serving a model on identical workloads.",
    after_help = EXIT_STATUS,
    args_override_self = true
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
    #[command(after_help = EXIT_STATUS)]
    Compare(Box<CompareArgs>),
    /// Measure one backend on one model and batch size (like perf_analyzer for one
    /// model) and print one table; writes the JSON results too.
    #[command(after_help = EXIT_STATUS)]
    Run(Box<RunArgs>),
    /// List the backends and whether each can run on this machine.
    Backends,
    /// Print the JSON schema of `results.json` (the source of `results/schema.json`).
    Schema,
    /// Compare two runs' results: NEW/OLD p50 ratio per shared cell with a bootstrap
    /// 95 % interval; exit status 1 when a cell is slower beyond the threshold with an
    /// interval that excludes 1.0.
    Diff(DiffArgs),
}

/// Flags of `harness diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier run's results.json.
    #[arg(value_name = "OLD.json")]
    pub old: std::path::PathBuf,
    /// The later run's results.json.
    #[arg(value_name = "NEW.json")]
    pub new: std::path::PathBuf,
    /// A cell regresses when NEW's p50 is slower than OLD's by more than this many
    /// percent (and its interval excludes 1.0).
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0, value_parser = args::percent)]
    pub threshold: f64,
    /// Print the table in Markdown.
    #[arg(long)]
    pub markdown: bool,
}

/// Every group but the selection: what `compare` and `run` share.
#[derive(Debug, Clone, Default, Args)]
pub struct Common {
    /// Resources and fixtures.
    #[command(flatten)]
    pub workload: Workload,
    /// Load levels.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Windows, trials, stability.
    #[command(flatten)]
    pub measure: MeasureArgs,
    /// The agreement check.
    #[command(flatten)]
    pub agreement: AgreementArgs,
    /// Results and terminal output.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Server backends.
    #[command(flatten)]
    pub servers: ServerArgs,
}

/// Flags of `harness compare`.
#[derive(Debug, Clone, Default, Args)]
pub struct CompareArgs {
    /// Backends, models and batch sizes.
    #[command(flatten)]
    pub selection: Selection,
    /// Everything else.
    #[command(flatten)]
    pub common: Common,
}

/// Flags of `harness run`: one target, plus every load and output setting of `compare`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The backend, model and batch size.
    #[command(flatten)]
    pub target: Target,
    /// Everything else.
    #[command(flatten)]
    pub common: Common,
}

impl Command {
    /// The server flags of `compare` or `run`.
    fn servers_mut(&mut self) -> Option<&mut ServerArgs> {
        match self {
            Command::Compare(c) => Some(&mut c.common.servers),
            Command::Run(r) => Some(&mut r.common.servers),
            Command::Backends | Command::Schema | Command::Diff(_) => None,
        }
    }
}

/// Why the command line could not be read.
#[derive(Debug)]
pub enum ParseError {
    /// The parser's own message (also `--help` and `--version`).
    Clap(clap::Error),
    /// The config file is missing or not valid.
    File(HarnessError),
}

/// Parses a command line (the first item is the program name), with the settings of
/// its `--config` file put before its own flags.
pub fn parse<I, T>(args: I) -> Result<Cli, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // The subcommand is the first argument after the program name.
    if let (Some(sub), Some(path)) = (
        args.get(1).map(|s| s.to_string_lossy().into_owned()),
        file::config_path(args.get(2..).unwrap_or_default()),
    ) {
        let from_file = file::file_args(&path).map_err(ParseError::File)?;
        check_file(&sub, &path, &from_file.flags).map_err(ParseError::File)?;
        args.splice(2..2, from_file.flags.into_iter().map(OsString::from));
        let mut cli = parse_all(&args)?;
        // A backend's own table: the whole command line with the table's flags last.
        for (name, flags) in from_file.own {
            check_own(&path, &name, &flags).map_err(ParseError::File)?;
            let mut own_args = args.clone();
            own_args.extend(flags.into_iter().map(OsString::from));
            let mut own_cli = parse_all(&own_args)?;
            if let (Some(own), Some(servers)) =
                (own_cli.command.servers_mut(), cli.command.servers_mut())
            {
                servers.own.insert(name, own.options.clone());
            }
        }
        return Ok(cli);
    }
    parse_all(&args)
}

/// Parses a whole command line.
fn parse_all(args: &[OsString]) -> Result<Cli, ParseError> {
    let matches = Cli::command()
        .try_get_matches_from(args)
        .map_err(ParseError::Clap)?;
    Cli::from_arg_matches(&matches).map_err(ParseError::Clap)
}

/// Checks that a backend's own table holds server flags only.
fn check_own(path: &std::path::Path, name: &str, flags: &[String]) -> Result<(), HarnessError> {
    let cmd = crate::registry::BackendOptions::augment_args(clap::Command::new("own"))
        .no_binary_name(true);
    cmd.try_get_matches_from(flags).map(drop).map_err(|e| {
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default().to_string();
        HarnessError::Config(format!(
            "config file {} is not valid: table [{name}]: {}; a backend's table takes only \
             server options ({})",
            path.display(),
            first.strip_prefix("error: ").unwrap_or(&first),
            server_keys().join(", ")
        ))
    })
}

/// The server options a backend's table may set, spelled as keys.
fn server_keys() -> Vec<String> {
    crate::registry::BackendOptions::augment_args(clap::Command::new("own"))
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| l.replace('-', "_")))
        .collect()
}

/// Parses the file's flags alone, so that a bad key or value is blamed on the file.
fn check_file(sub: &str, path: &std::path::Path, flags: &[String]) -> Result<(), HarnessError> {
    let Some(cmd) = Cli::command().find_subcommand(sub).cloned() else {
        return Ok(()); // The parser reports an unknown subcommand.
    };
    let cmd = cmd.mut_args(|a| a.required(false)).no_binary_name(true);
    cmd.try_get_matches_from(flags).map(drop).map_err(|e| {
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default();
        HarnessError::Config(format!(
            "config file {} is not valid: {}",
            path.display(),
            first.strip_prefix("error: ").unwrap_or(first)
        ))
    })
}
