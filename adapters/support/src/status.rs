//! The one table from a server's answer to the kind of a failed request.
//!
//! Every server backend (flask, triton-http, triton-grpc, tfserving-rest,
//! tfserving-grpc) counts failures with it, so `error_kinds` of two backends can be
//! compared:
//!
//! | the server answered | HTTP | gRPC | kind |
//! |---|---|---|---|
//! | it does not serve the model | 404 | `NOT_FOUND` | `unknown_model` |
//! | the input has the wrong shape or type | 400 (Triton too) | `INVALID_ARGUMENT` | `bad_input` |
//! | its deadline passed | 408, 504 | `DEADLINE_EXCEEDED` | `timeout` |
//! | anything else | other 4xx, 5xx | any other code (`INTERNAL`, `UNAVAILABLE`, ...) | `server` |
//!
//! Failures without an answer are not in the table: the client's own deadline is
//! `timeout`, a refused or reset connection `transport` ([`crate::http`], [`crate::grpc`]).

use contract::BackendError;

/// What a server's error answer means, whatever the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The server does not serve the model asked for.
    UnknownModel,
    /// The request's tensors do not fit the model.
    BadInput,
    /// The server gave up on the request's deadline.
    DeadlineExceeded,
    /// Any other failure on the server's side.
    Server,
}

/// The meaning of an HTTP error status.
pub fn http(status: u16) -> Answer {
    match status {
        404 => Answer::UnknownModel,
        400 => Answer::BadInput,
        // Request Timeout, and Gateway Timeout from a proxy in front of the server.
        408 | 504 => Answer::DeadlineExceeded,
        _ => Answer::Server,
    }
}

/// gRPC's `INVALID_ARGUMENT`.
pub const GRPC_INVALID_ARGUMENT: i32 = 3;
/// gRPC's `DEADLINE_EXCEEDED`.
pub const GRPC_DEADLINE_EXCEEDED: i32 = 4;
/// gRPC's `NOT_FOUND`.
pub const GRPC_NOT_FOUND: i32 = 5;

/// The meaning of a gRPC status code (its number, as the wire carries it).
pub fn grpc(code: i32) -> Answer {
    match code {
        GRPC_NOT_FOUND => Answer::UnknownModel,
        GRPC_INVALID_ARGUMENT => Answer::BadInput,
        GRPC_DEADLINE_EXCEEDED => Answer::DeadlineExceeded,
        _ => Answer::Server,
    }
}

/// Who answered and what was asked: the words of an error message.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The server, as messages name it (`Triton`, `TF Serving`, `the Flask app`).
    pub server: &'a str,
    /// The model the request was for.
    pub model: &'a str,
    /// The client's request deadline in milliseconds (for a server's
    /// `DEADLINE_EXCEEDED`).
    pub deadline_ms: u64,
}

/// The counted error for an answer `status` (`"404"`, `"NotFound"`) with the server's
/// own `message`.
pub fn error(answer: Answer, ctx: Context<'_>, status: &str, message: String) -> BackendError {
    let server = ctx.server;
    match answer {
        Answer::UnknownModel => BackendError::UnknownModel(format!(
            "{} ({server} answered {status}: {message})",
            ctx.model
        )),
        Answer::BadInput => {
            BackendError::BadInput(format!("{server} answered {status}: {message}"))
        }
        Answer::DeadlineExceeded => BackendError::Timeout(ctx.deadline_ms),
        Answer::Server => BackendError::Server {
            status: status.into(),
            message,
        },
    }
}

/// The counted error for an HTTP error status.
pub fn http_error(ctx: Context<'_>, status: u16, message: String) -> BackendError {
    error(http(status), ctx, &status.to_string(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Context<'static> = Context {
        server: "S",
        model: "m",
        deadline_ms: 7,
    };

    #[test]
    fn the_table() {
        // (HTTP status, gRPC code, kind): the rows of the module's table.
        let rows: [(Option<u16>, Option<i32>, &str); 14] = [
            (Some(404), Some(GRPC_NOT_FOUND), "unknown_model"),
            (Some(400), Some(GRPC_INVALID_ARGUMENT), "bad_input"),
            (Some(408), Some(GRPC_DEADLINE_EXCEEDED), "timeout"),
            (Some(504), None, "timeout"),    // Gateway Timeout
            (Some(500), Some(13), "server"), // INTERNAL
            (Some(503), Some(14), "server"), // UNAVAILABLE, answered by the server
            (Some(401), Some(16), "server"), // UNAUTHENTICATED
            (Some(403), Some(7), "server"),  // PERMISSION_DENIED
            (Some(405), Some(12), "server"), // UNIMPLEMENTED
            (Some(410), Some(1), "server"),  // CANCELLED
            (Some(409), Some(10), "server"), // ABORTED
            (Some(429), Some(8), "server"),  // RESOURCE_EXHAUSTED
            (Some(502), Some(2), "server"),  // UNKNOWN
            (Some(413), Some(11), "server"), // OUT_OF_RANGE (an answer too large)
        ];
        for (status, code, kind) in rows {
            if let Some(s) = status {
                assert_eq!(http_error(CTX, s, "x".into()).kind(), kind, "HTTP {s}");
            }
            if let Some(c) = code {
                assert_eq!(
                    error(grpc(c), CTX, "code", "x".into()).kind(),
                    kind,
                    "gRPC {c}"
                );
            }
        }
    }

    #[test]
    fn messages_keep_the_servers_words() {
        let e = http_error(CTX, 404, "no such model".into());
        assert_eq!(
            e.to_string(),
            "model m (S answered 404: no such model) is not loaded by this backend"
        );
        let e = error(Answer::BadInput, CTX, "InvalidArgument", "shape".into());
        assert_eq!(
            e.to_string(),
            "bad input: S answered InvalidArgument: shape"
        );
        let e = http_error(CTX, 500, "boom".into());
        assert_eq!(e.to_string(), "server answered 500: boom");
        let e = error(
            Answer::DeadlineExceeded,
            CTX,
            "DeadlineExceeded",
            "x".into(),
        );
        assert_eq!(e.to_string(), "request timed out after 7 ms");
    }
}
