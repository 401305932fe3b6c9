//! The gRPC pieces every gRPC backend (Triton, TF Serving) needs: a channel with the
//! client's deadlines, and a [`tonic::Status`] as a counted error. Behind the `grpc`
//! feature.

use contract::BackendError;
use tonic::transport::{Channel, Endpoint};

use crate::status::{self, Context};
use crate::Deadlines;

/// The largest answer message a gRPC client decodes: one tensor of the most bytes a
/// tensor may hold ([`contract::MAX_TENSOR_BYTES`]) and room for its envelope. A server
/// sending more gets the client's `OutOfRange` status (counted as an error), not the
/// harness's memory.
pub const MAX_ANSWER_BYTES: usize = contract::MAX_TENSOR_BYTES + (1 << 20);

/// A channel to `url` (such as `http://127.0.0.1:8001`): one HTTP/2 connection, made on
/// first use, with `deadlines` for connecting and for every request. Must be called
/// inside a tokio runtime (the lazy channel spawns its connection task there); outside
/// one it is an error, not a panic.
pub fn channel(url: &str, deadlines: Deadlines) -> Result<Channel, BackendError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(BackendError::Transport(format!(
            "{url}: a gRPC backend must be opened inside a tokio runtime"
        )));
    }
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| BackendError::Transport(format!("{url} is not a gRPC URL: {e}")))?
        .timeout(deadlines.request)
        .connect_timeout(deadlines.connect);
    Ok(endpoint.connect_lazy())
}

/// A failed call to `url` as a counted error. The client's own deadline is `timeout`; a
/// status the client made from a failed connection (it carries the transport error as
/// its source) is `transport`, naming the innermost cause; a status the server sent is
/// looked up in [`status::grpc`].
pub fn status_error(url: &str, ctx: Context<'_>, s: &tonic::Status) -> BackendError {
    if client_deadline(s) {
        return BackendError::Timeout(ctx.deadline_ms);
    }
    if std::error::Error::source(s).is_some() {
        return BackendError::Transport(format!("{url}: {}", cause(s)));
    }
    status::error(
        status::grpc(s.code() as i32),
        ctx,
        &format!("{:?}", s.code()),
        s.message().to_string(),
    )
}

/// True for the status tonic makes when the channel's request deadline passes.
/// Also the connection attempt timing out (`--request-timeout`'s connect deadline): an
/// I/O `TimedOut` anywhere in the status's causes, as reqwest's `is_timeout` counts it
/// for HTTP, so both protocols call the same failure `timeout`.
fn client_deadline(s: &tonic::Status) -> bool {
    if matches!(
        s.code(),
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
    ) && s.message().contains("Timeout expired")
    {
        return true;
    }
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// The innermost cause of a status (connection refused, ...), or its message.
fn cause(s: &tonic::Status) -> String {
    let mut cause = s.message().to_string();
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        cause = e.to_string();
        source = e.source();
    }
    cause
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Context<'static> = Context {
        server: "S",
        model: "m",
        deadline_ms: 9,
    };

    #[test]
    fn statuses_from_the_server_follow_the_table() {
        for (s, kind) in [
            (
                tonic::Status::not_found("Servable not found"),
                "unknown_model",
            ),
            (
                tonic::Status::invalid_argument("unexpected shape"),
                "bad_input",
            ),
            (tonic::Status::internal("boom"), "server"),
            (tonic::Status::unavailable("draining"), "server"),
            (tonic::Status::deadline_exceeded("too slow"), "timeout"),
            (
                tonic::Status::deadline_exceeded("Timeout expired"),
                "timeout",
            ),
        ] {
            assert_eq!(status_error("u", CTX, &s).kind(), kind, "{s:?}");
        }
        let e = status_error("u", CTX, &tonic::Status::invalid_argument("shape 599"));
        assert!(e.to_string().contains("InvalidArgument: shape 599"), "{e}");
    }

    #[test]
    fn a_connection_that_times_out_is_a_timeout_and_a_refused_one_is_transport() {
        use std::io::{Error, ErrorKind};
        let timed_out = tonic::Status::from_error(Box::new(Error::new(
            ErrorKind::TimedOut,
            "tcp connect timed out",
        )));
        assert_eq!(status_error("u", CTX, &timed_out).kind(), "timeout");
        let refused =
            tonic::Status::from_error(Box::new(Error::new(ErrorKind::ConnectionRefused, "no")));
        assert_eq!(status_error("u", CTX, &refused).kind(), "transport");
    }

    #[test]
    fn a_channel_outside_a_runtime_is_an_error_not_a_panic() {
        let e = channel("http://127.0.0.1:1", Deadlines::default()).unwrap_err();
        assert!(e.to_string().contains("inside a tokio runtime"), "{e}");
    }
}
