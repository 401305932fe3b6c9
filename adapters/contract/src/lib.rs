//! The adapter contract: what every servebench backend implements.
//!
//! servebench compares very different ways of serving a model (an engine linked into
//! the process, a Python web app, an inference server over HTTP or gRPC) on identical
//! workloads. The only way to make those numbers comparable is to measure every one of
//! them through the same narrow interface, with the same clock. That interface is the
//! [`Backend`] trait.
//!
//! # The contract in one paragraph
//! A backend is opened once per run with the models it must serve and the matched
//! worker count ([`OpenOptions`]). The harness then asks it to [`Backend::describe`]
//! itself, waits for [`Backend::health`], converts each batch into a [`Prepared`]
//! request **outside** the timed region ([`Backend::prepare`]: this is where an HTTP
//! adapter encodes its body, once per batch), and calls [`Backend::infer`] with it.
//! **One request is one `infer` call**; the harness starts its clock right before the
//! call and stops it when the future resolves. `infer` resolves only when every output
//! is back in host memory, so an asynchronous device (CUDA) must synchronise before
//! returning. The backend owns nothing of the batch: it borrows the prepared request and
//! returns freshly allocated outputs.
//!
//! # In-process engines
//! Engines such as ONNX Runtime, libtorch and candle are blocking. They never run on the
//! async runtime: [`BlockingPool`] puts N engine instances on N dedicated OS threads (N is
//! the matched worker count) and feeds them through a channel. Adapters for such engines
//! implement the small synchronous [`Engine`] trait and let [`EngineBackend`] do the rest.
//!
//! # Servers
//! What server adapters share beyond this contract (managed processes, the HTTP and gRPC
//! clients, the one table from HTTP status / gRPC code to error kind) lives in the
//! `adapter-support` crate; this crate holds the trait and its types only.
//!
//! # Errors
//! A failed request is data: [`BackendError::kind`] names the kind of failure so the
//! harness can count it, and the message says what went wrong in one sentence.
#![deny(missing_docs)]

mod backend;
mod blocking;
mod error;
mod precision;
mod tensor;

pub use backend::{
    Backend, Description, Device, OpenOptions, Prepared, Protocol, ServedBy, ServerStats,
};
pub use blocking::{BlockingPool, Engine, EngineBackend};
pub use error::BackendError;
pub use precision::Precision;
pub use tensor::{byte_size, DType, Tensor, MAX_TENSOR_BYTES};

/// Intra-op threads per worker (an engine's executor, a server's worker or model
/// instance) when the user did not choose: the machine's cores but one, shared evenly
/// among the `workers`, at least one.
///
/// One core is left to the load generator, which runs on the same host: when an
/// engine's team of threads fills every core, the client's thread and the team's own
/// threads take turns, and each request waits for whichever thread the machine put off.
/// On 2 cores onnxruntime's text-CNN batch 1 p50 was 3.92 ms with 2 threads against 1.56
/// ms with 1, and libtorch's OpenMP team made its windows vary several times more than
/// the other engines'. On many cores the one left out costs little.
pub fn default_intra_threads(workers: usize) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cores.saturating_sub(1) / workers.max(1)).max(1)
}
