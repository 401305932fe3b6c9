//! What servebench's server adapters share, written once.
//!
//! The `contract` crate holds the [`contract::Backend`] trait and its types only. Every
//! adapter that talks to a server (Flask, Triton, TF Serving) also needs the same
//! machinery around it, and copies of that machinery drift: ours did, and the same gRPC
//! failure was counted as `server` by one backend and `bad_input` by another. So it
//! lives here, once:
//! - [`status`]: **the one table** from an HTTP status or a gRPC code to the kind of a
//!   [`contract::BackendError`], used by every server backend;
//! - [`http`] (feature `http`): the HTTP client, one exchange with error mapping, and
//!   the `{"error": ...}` body reader;
//! - [`grpc`] (feature `grpc`): the channel with connect and request deadlines, and a
//!   [`tonic::Status`] as a counted error;
//! - [`metrics`] (feature `metrics`): a server's Prometheus metrics endpoint, scraped
//!   and read as the counters of one model;
//! - [`process`] (feature `process`): managed server processes (own process group,
//!   free loopback ports, readiness with a deadline and a cancel flag, stop on drop);
//! - [`pyenv`]: the project's Python environment;
//! - [`url`]: checking a server URL given on the command line;
//! - [`payload_or`]: the encoding a request was prepared with, or a fresh one.
//!
//! The features keep an in-process adapter free of a network stack: without features
//! this crate pulls neither an HTTP stack nor tonic.
#![deny(missing_docs)]

#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "process")]
pub mod process;
pub mod pyenv;
pub mod status;
#[cfg(feature = "http")]
pub mod timer;
pub mod url;

use std::any::Any;
use std::time::Duration;

use contract::{Prepared, Tensor};

/// How long a client waits: to open a connection, and for a whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Longest a connection may take to open.
    pub connect: Duration,
    /// Longest a single request may take before it counts as a timeout.
    pub request: Duration,
}

impl Default for Deadlines {
    /// 5 s to connect, 300 s per request (a batch of 1000 ResNet-50 images on a slow
    /// CPU server takes minutes).
    fn default() -> Self {
        Deadlines {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(300),
        }
    }
}

impl Deadlines {
    /// The request deadline in whole milliseconds, as [`contract::BackendError::Timeout`]
    /// carries it.
    pub fn request_ms(&self) -> u64 {
        self.request.as_millis() as u64
    }

    /// The words of an error about a request for `model` to `server` (`Triton`, `TF
    /// Serving`, `the Flask app`) under these deadlines.
    pub fn context<'a>(&self, server: &'a str, model: &'a str) -> status::Context<'a> {
        status::Context {
            server,
            model,
            deadline_ms: self.request_ms(),
        }
    }
}

/// The encoding `request` was prepared with (its payload of type `T`), or, for a request
/// prepared elsewhere, `encode(model, inputs)`.
pub fn payload_or<T, E>(
    request: &Prepared,
    encode: impl FnOnce(&str, &[Tensor]) -> Result<T, E>,
) -> Result<T, E>
where
    T: Any + Clone + Send + Sync,
{
    match request.payload::<T>() {
        Some(p) => Ok(p.clone()),
        None => encode(request.model(), request.inputs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_payload_is_used_else_encoded() {
        let t = Tensor::from_f32("x", vec![1], &[1.0]);
        let plain = Prepared::new("m", vec![t.clone()]);
        let encoded: Result<String, ()> = payload_or(&plain, |m, i| Ok(format!("{m}:{}", i.len())));
        assert_eq!(encoded.unwrap(), "m:1");
        let prepared = plain.with_payload(String::from("body"));
        let kept: Result<String, ()> = payload_or(&prepared, |_, _| unreachable!());
        assert_eq!(kept.unwrap(), "body");
    }
}
