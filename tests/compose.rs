//! docker-compose.yml validates offline, the matched worker count reaches every server,
//! and the published ports are the ones `--stack compose` uses.
//!
//! No Docker engine runs here: Debian's `docker-compose` (1.29, installed by
//! `scripts/setup`) checks the file and prints it resolved (`config`), which needs no
//! engine. The resolved text is read per service.

use std::path::Path;
use std::process::Command;

fn compose(args: &[&str], workers: Option<&str>) -> (bool, String, String) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml");
    let mut cmd = Command::new("docker-compose");
    cmd.arg("-f").arg(&file).args(args);
    cmd.env_remove("SERVEBENCH_WORKERS");
    if let Some(w) = workers {
        cmd.env("SERVEBENCH_WORKERS", w);
    }
    let out = cmd
        .output()
        .expect("docker-compose runs (scripts/setup installs Debian's docker-compose)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lines of one service in `docker-compose config` output (two-space indented
/// `name:` up to the next service).
fn service<'a>(config: &'a str, name: &str) -> Vec<&'a str> {
    let head = format!("  {name}:");
    let mut lines = config.lines().skip_while(|l| *l != head);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no service {name} in:\n{config}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with("    ") || l.is_empty()))
        .collect()
}

#[test]
fn the_compose_file_validates() {
    let (ok, so, se) = compose(&["config", "-q"], None);
    assert!(ok, "docker-compose config -q failed:\n{so}\n{se}");
}

#[test]
fn the_worker_count_reaches_every_server() {
    for workers in ["3", "5"] {
        let (ok, config, se) = compose(&["config"], Some(workers));
        assert!(ok, "{se}");
        let tfs = service(&config, "tfserving").join("\n");
        assert!(
            tfs.contains(&format!("--rest_api_num_threads={workers}"))
                && tfs.contains(&format!("--tensorflow_session_parallelism={workers}")),
            "tfserving:\n{tfs}"
        );
        for name in [
            "triton",
            "triton-tensorrt-fp32",
            "triton-tensorrt-fp16",
            "flask",
            "mlserver",
            "torchserve",
        ] {
            let s = service(&config, name).join("\n");
            assert!(
                s.contains(&format!("SERVEBENCH_WORKERS: '{workers}'")),
                "{name}:\n{s}"
            );
        }
        // Each server turns the variable into its own setting.
        let triton = service(&config, "triton").join(" ");
        assert!(
            triton.contains("count: $${SERVEBENCH_WORKERS} kind: KIND_GPU"),
            "{triton}"
        );
        let flask = service(&config, "flask").join(" ");
        assert!(
            flask.contains("--workers $${SERVEBENCH_WORKERS}"),
            "{flask}"
        );
    }
    // Unset, it is 1.
    let (_, config, _) = compose(&["config"], None);
    assert!(config.contains("--rest_api_num_threads=1"), "{config}");
}

/// The TensorRT Tritons serve the fixtures' TensorRT repositories (profile `tensorrt`,
/// not started by default), each with its own GPU instance count and engine cache.
#[test]
fn the_tensorrt_tritons_serve_the_generated_tensorrt_repositories() {
    let (ok, config, se) = compose(&["config"], Some("2"));
    assert!(ok, "{se}");
    for (name, variant) in [
        (
            "triton-tensorrt-fp32",
            fixtures::triton::Variant::TensorRtFp32,
        ),
        (
            "triton-tensorrt-fp16",
            fixtures::triton::Variant::TensorRtFp16,
        ),
    ] {
        // Long command lines wrap in the output: compare words.
        let lines = service(&config, name).join(" ");
        let s = lines.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            s.contains(&format!("SERVEBENCH_REPOSITORY: {}", variant.name()))
                && s.contains("/fixtures/triton/$${SERVEBENCH_REPOSITORY}")
                && s.contains("count: $${SERVEBENCH_WORKERS} kind: KIND_GPU")
                && s.contains("- tensorrt")
                && s.contains(&format!("{}:rw", fixtures::triton::TENSORRT_ENGINE_CACHE)),
            "{name}:\n{s}"
        );
    }
}

#[test]
fn tf_serving_exposes_the_metrics_the_harness_scrapes() {
    let (ok, config, se) = compose(&["config"], None);
    assert!(ok, "{se}");
    let tfs = service(&config, "tfserving").join("\n");
    assert!(
        tfs.contains("--monitoring_config_file=/config/monitoring.config")
            && tfs.contains("fixtures/tfserving/monitoring.config:/config/monitoring.config:ro"),
        "tfserving:\n{tfs}"
    );
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tfserving/monitoring.config");
    let text = std::fs::read_to_string(file).unwrap();
    let path = harness::config::COMPOSE_TFSERVING_METRICS
        .strip_prefix("http://127.0.0.1:8501")
        .expect("on TF Serving's REST port");
    assert!(
        text.contains("enable: true") && text.contains(&format!("path: \"{path}\"")),
        "{text}"
    );
}

#[test]
fn gpu_servers_reserve_a_gpu_and_every_port_is_on_loopback() {
    let (ok, config, se) = compose(&["config"], None);
    assert!(ok, "{se}");
    for name in [
        "tfserving",
        "triton",
        "triton-tensorrt-fp32",
        "triton-tensorrt-fp16",
    ] {
        let s = service(&config, name).join("\n");
        assert!(
            s.contains("driver: nvidia") && s.contains("- gpu"),
            "{name}:\n{s}"
        );
    }
    let mut ports = 0;
    let mut in_ports = false;
    for l in config.lines() {
        if l.trim_start() == "ports:" {
            in_ports = true;
        } else if in_ports && l.trim_start().starts_with("- ") {
            ports += 1;
            assert!(l.contains("- 127.0.0.1:"), "published beyond loopback: {l}");
        } else {
            in_ports = false;
        }
    }
    assert_eq!(ports, 17, "{config}");
}

/// The compose service that serves a backend of `--stack compose`.
fn service_of(backend: &str) -> &'static str {
    match backend.split('-').next().unwrap() {
        "kserve" => "mlserver",
        "flask" => "flask",
        "triton" => "triton",
        "tfserving" => "tfserving",
        "torchserve" => "torchserve",
        other => panic!("no compose service for {other}"),
    }
}

#[test]
fn every_url_of_the_compose_stack_is_a_port_its_service_publishes() {
    let (ok, config, se) = compose(&["config"], None);
    assert!(ok, "{se}");
    let metrics = [
        ("triton", harness::config::COMPOSE_TRITON_METRICS),
        ("mlserver", harness::config::COMPOSE_MLSERVER_METRICS),
    ];
    let tensorrt = harness::config::COMPOSE_TRITON_LABELS.iter().flat_map(|t| {
        [
            (t.service, t.http),
            (t.service, t.grpc),
            (t.service, t.metrics),
        ]
    });
    let urls = harness::config::COMPOSE_URLS
        .iter()
        .map(|&(backend, url)| (service_of(backend), url))
        .chain(metrics)
        .chain(tensorrt);
    for (name, url) in urls {
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("{url} is not a loopback URL"));
        let published = format!("- 127.0.0.1:{port}:");
        let s = service(&config, name).join("\n");
        assert!(
            s.contains(&published),
            "{name} does not publish {url}:\n{s}"
        );
    }
}
