//! The fixture models in a Flask app behind Gunicorn, measured over HTTP/JSON.
//!
//! This is the "Flask" side of the classic TF Serving vs Flask study: the way many teams
//! serve a model. The app (`fixtures/flask_app/`) runs the very `model.onnx` the
//! in-process `onnxruntime` backend runs, with onnxruntime's Python wheel, so the
//! difference between the two is the serving stack: JSON, HTTP, Python, Gunicorn.
//!
//! # Design
//! - **Same body as TF Serving's REST API.** `POST /v1/models/<m>:predict` with
//!   `{"instances": [...]}`, answered by `{"predictions": [...]}`, so payload sizes match.
//!   The body of a batch is encoded once, in [`contract::Backend::prepare`], outside the
//!   timed region; `infer` only sends those bytes and parses the answer.
//! - **A managed server unless told otherwise.** Without a URL ([`Options::url`],
//!   `--flask-url`) the backend starts
//!   `gunicorn --workers N` (N the matched worker count; onnxruntime intra-op threads per
//!   worker from the same rule as the in-process engines) on a free loopback port, waits
//!   until every worker has loaded every model, and stops the server and all its workers
//!   when it is dropped ([`server`]). With a URL it uses that server and starts nothing.
//! - **Sync workers.** Gunicorn's default worker handles one request at a time and closes
//!   the connection after each answer, as the classic deployment does. The client keeps a
//!   keep-alive pool sized to the concurrency; against sync workers each request still
//!   opens a fresh loopback connection, and that cost is part of what is measured.
//! - **Errors by kind.** An unknown model (404), a bad input (400) and any other error
//!   status are counted with the table every server backend shares
//!   ([`support::status`]), with the app's `{"error": ...}` message.
//! - **Test hook.** When `SERVEBENCH_FLASK_PID_FILE` is set, the pids of the managed
//!   Gunicorn master and its workers are written there once it is ready (one line,
//!   master first), and its temporary directory on a second line, so tests can check
//!   that every one of them is gone afterwards.
#![deny(missing_docs)]

mod client;
pub mod codec;
pub mod server;

pub use client::FlaskBackend;

use std::collections::BTreeMap;
use std::sync::Arc;

use contract::{Backend, BackendError, Description, Device, OpenOptions, Protocol};
use serde::{Deserialize, Serialize};
use server::{ManagedServer, ServerConfig};
use support::pyenv;

/// Backend name in flags and results.
pub const NAME: &str = "flask";

/// Environment variable naming a file that receives the managed server's pids.
pub const PID_FILE_ENV: &str = "SERVEBENCH_FLASK_PID_FILE";

/// What only the Flask backend reads. With the `clap` feature, also its flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(feature = "clap", group(id = "flask"))]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Use the Flask app already serving at this URL (such as http://127.0.0.1:8000)
    /// instead of starting Gunicorn [default: start one with --workers workers].
    #[cfg_attr(
        feature = "clap",
        arg(id = "flask_url", long = "flask-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub url: Option<String>,
}

/// Opens the Flask backend: the server at `options.url` if given, else a Gunicorn
/// started here with `opts.workers` workers.
pub fn open(opts: &OpenOptions, options: &Options) -> Result<Arc<dyn Backend>, BackendError> {
    if let Device::Cuda(_) = opts.device {
        return Err(BackendError::Unavailable {
            backend: NAME.into(),
            reason: "the Flask app runs onnxruntime on the CPU only".into(),
            fix: "use --device cpu".into(),
        });
    }
    let (fixed, user) = fixtures::user_models(opts)?;
    let mut details = BTreeMap::new();
    details.insert("api".to_string(), "TF Serving REST JSON".to_string());
    details.insert("precision".to_string(), opts.precision.to_string());
    if let Some(url) = &options.url {
        if opts.precision != contract::Precision::Fp32 {
            return Err(BackendError::Unavailable {
                backend: NAME.into(),
                reason: format!(
                    "{} not measured: a Flask app given by URL serves the fixtures' model.onnx \
                     under their names",
                    opts.precision
                ),
                fix: "leave out --flask-url: the managed app loads the conversions".into(),
            });
        }
        details.insert("url".to_string(), url.clone());
        details.insert("server".to_string(), "existing".to_string());
        let description = Description {
            name: NAME.into(),
            engine: "flask app (existing server)".into(),
            protocol: Protocol::Http,
            device: opts.device.to_string(),
            workers: opts.workers,
            intra_threads: None,
            models: opts.models.clone(),
            served_by_test_peer: false,
            details,
        };
        return Ok(Arc::new(
            FlaskBackend::new(url, opts.workers, description, None)?.with_user_models(&user),
        ));
    }

    // The precision's ONNX files exist (else one sentence naming the missing file).
    fixtures::onnx_models(&opts.fixtures_dir, &fixed, opts.precision)?;
    let gunicorn = server::gunicorn().ok_or_else(|| BackendError::Unavailable {
        backend: NAME.into(),
        reason: format!("gunicorn is not installed in {}", pyenv::venv().display()),
        fix: format!(
            "{} (it installs flask, gunicorn and onnxruntime from requirements.txt)",
            pyenv::SETUP_HINT
        ),
    })?;
    let cfg = ServerConfig {
        gunicorn,
        app_dir: server::app_dir(),
        fixtures_dir: opts.fixtures_dir.clone(),
        models: opts.models.clone(),
        model_files: opts.model_files.clone(),
        precision: opts.precision,
        workers: opts.workers.max(1),
        intra_threads: opts.intra_threads.max(1),
        ready_timeout: server::READY_TIMEOUT,
    };
    let server = ManagedServer::start(&cfg)?;
    write_pid_file(&server);
    let url = format!("http://127.0.0.1:{}", server.port());
    details.insert("url".to_string(), url.clone());
    details.insert("server".to_string(), "managed".to_string());
    details.insert("worker_class".to_string(), "gunicorn sync".to_string());
    details.insert("inter_op_threads".to_string(), "1".to_string());
    let description = Description {
        name: NAME.into(),
        engine: format!("flask {}", versions()),
        protocol: Protocol::Http,
        device: opts.device.to_string(),
        workers: cfg.workers,
        intra_threads: Some(cfg.intra_threads),
        models: opts.models.clone(),
        served_by_test_peer: false,
        details,
    };
    Ok(Arc::new(
        FlaskBackend::new(&url, opts.workers, description, Some(server))?.with_user_models(&user),
    ))
}

fn write_pid_file(server: &ManagedServer) {
    if let Some(path) = std::env::var_os(PID_FILE_ENV) {
        let mut pids = vec![server.pid()];
        pids.extend_from_slice(server.worker_pids());
        let text: Vec<String> = pids.iter().map(u32::to_string).collect();
        let dir = server.state_dir().display();
        let _ = std::fs::write(path, format!("{}\n{dir}\n", text.join(" ")));
    }
}

/// `3.1.3, gunicorn 27.0.1, onnxruntime 1.31.1`, as installed in the environment.
fn versions() -> String {
    let Some(site) = pyenv::site_packages() else {
        return "(versions unknown)".into();
    };
    let version = |dist: &str| -> String {
        std::fs::read_dir(&site)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .find_map(|n| {
                n.strip_prefix(&format!("{dist}-"))?
                    .strip_suffix(".dist-info")
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "{}, gunicorn {}, onnxruntime {}",
        version("flask"),
        version("gunicorn"),
        version("onnxruntime")
    )
}
