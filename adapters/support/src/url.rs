//! Checking the URL of a server given on the command line or in a file.

/// `url` if it is `http://` with a host and a port (a path may follow), without a
/// trailing slash; else why not, in one sentence. Usable as a clap value parser.
/// `https://` is refused: the HTTP and gRPC clients are built without TLS (a TLS stack
/// would double the build of the dependency tree for servers that, in a benchmark, sit
/// on the same host or network).
pub fn server_url(url: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "{url:?} is not valid ({why}); give an http:// URL with a host and a port, \
             such as http://127.0.0.1:8000"
        ))
    };
    if url.starts_with("https://") {
        return bad("https:// is not supported: the clients are built without TLS");
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return bad("not http://");
    };
    if url.contains(char::is_whitespace) {
        return bad("it contains white space");
    }
    let authority = rest.split('/').next().unwrap_or("");
    let Some((host, port)) = authority.rsplit_once(':') else {
        return bad("no port");
    };
    if host.is_empty() || host == "[" {
        return bad("no host");
    }
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return bad("the port is not a number from 1 to 65535");
    }
    Ok(url.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_need_a_scheme_a_host_and_a_port() {
        for (good, want) in [
            ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
            ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
            (
                "http://triton.example:8443/base/",
                "http://triton.example:8443/base",
            ),
            ("http://[::1]:8500", "http://[::1]:8500"),
        ] {
            assert_eq!(server_url(good).as_deref(), Ok(want), "{good}");
        }
        for bad in [
            "127.0.0.1:8000",
            "grpc://x:1",
            "https://x:8443",
            "http://",
            "http://x",
            "http://:8000",
            "http:// x:1",
            "http://x:port",
            "http://x:0",
            "https://x",
        ] {
            let e = server_url(bad).unwrap_err();
            assert!(
                e.contains("is not valid") && e.contains("http://127.0.0.1:8000"),
                "{bad}: {e}"
            );
        }
    }
}
