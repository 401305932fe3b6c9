//! `--stack compose`: the published ports of docker-compose.yml's services, as the URLs of
//! the server backends that no flag or file gave one.

use crate::cli::Stack;
use crate::registry::BackendOptions;

/// Published ports of docker-compose.yml's services, as `--stack compose` uses them.
pub const COMPOSE_URLS: [(&str, &str); 9] = [
    ("flask", "http://127.0.0.1:8080"),
    ("triton-http", "http://127.0.0.1:8000"),
    ("triton-grpc", "http://127.0.0.1:8001"),
    ("tfserving-rest", "http://127.0.0.1:8501"),
    ("tfserving-grpc", "http://127.0.0.1:8500"),
    ("kserve-v2-http", "http://127.0.0.1:8090"),
    ("kserve-v2-grpc", "http://127.0.0.1:8091"),
    ("torchserve-rest", "http://127.0.0.1:8180"),
    ("torchserve-grpc", "http://127.0.0.1:7070"),
];

/// Triton's published metrics port in docker-compose.yml, scraped with `--stack compose`.
pub const COMPOSE_TRITON_METRICS: &str = "http://127.0.0.1:8002/metrics";

/// TF Serving's monitoring endpoint in docker-compose.yml (on its REST port, turned on
/// by `fixtures/tfserving/monitoring.config`), scraped with `--stack compose`.
pub const COMPOSE_TFSERVING_METRICS: &str = "http://127.0.0.1:8501/monitoring/prometheus/metrics";

/// MLServer's published metrics port in docker-compose.yml (the `kserve-v2-*` backends'
/// server there), scraped with `--stack compose`.
pub const COMPOSE_MLSERVER_METRICS: &str = "http://127.0.0.1:8092/metrics";

/// `options` with the compose services' published ports as the URLs no flag gave, when
/// the servers run in the compose stack.
pub(super) fn compose_urls(mut o: BackendOptions, stack: Stack) -> BackendOptions {
    if stack != Stack::Compose {
        return o;
    }
    let url = |name: &str| {
        COMPOSE_URLS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, u)| u.to_string())
    };
    #[cfg(feature = "flask")]
    {
        o.flask.url = o.flask.url.or_else(|| url("flask"));
    }
    #[cfg(feature = "triton")]
    {
        o.triton.url = o.triton.url.or_else(|| url("triton-http"));
        o.triton.grpc_url = o.triton.grpc_url.or_else(|| url("triton-grpc"));
        o.triton.metrics_url = o
            .triton
            .metrics_url
            .or_else(|| Some(COMPOSE_TRITON_METRICS.to_string()));
    }
    #[cfg(feature = "tfserving")]
    {
        o.tfserving.url = o.tfserving.url.or_else(|| url("tfserving-rest"));
        o.tfserving.grpc_url = o.tfserving.grpc_url.or_else(|| url("tfserving-grpc"));
        o.tfserving.metrics_url = o
            .tfserving
            .metrics_url
            .or_else(|| Some(COMPOSE_TFSERVING_METRICS.to_string()));
    }
    #[cfg(feature = "kserve")]
    {
        o.kserve.url = o.kserve.url.or_else(|| url("kserve-v2-http"));
        o.kserve.grpc_url = o.kserve.grpc_url.or_else(|| url("kserve-v2-grpc"));
        o.kserve.metrics_url = o
            .kserve
            .metrics_url
            .or_else(|| Some(COMPOSE_MLSERVER_METRICS.to_string()));
    }
    #[cfg(feature = "torchserve")]
    {
        o.torchserve.url = o.torchserve.url.or_else(|| url("torchserve-rest"));
        o.torchserve.grpc_url = o.torchserve.grpc_url.or_else(|| url("torchserve-grpc"));
    }
    let _ = url;
    o
}
