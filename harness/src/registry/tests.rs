//! Unit tests of the registry.

use super::*;

#[test]
fn a_backend_without_its_feature_says_how_to_build_it_in() {
    let e = not_compiled_in("tensorrt", "tensorrt");
    assert_eq!(e.kind(), "unavailable");
    assert_eq!(
        e.to_string(),
        "tensorrt is unavailable: not compiled in; to enable it: build with \
         `cargo run --release -p harness --features tensorrt -- compare`"
    );
    let e = libtorch_not_compiled_in().to_string();
    assert!(
        e.starts_with("libtorch is unavailable: not compiled in; to enable it: run scripts/setup")
            && e.contains(".cargo/config.toml"),
        "{e}"
    );
}

#[test]
fn libtorch_is_registered_with_or_without_its_feature() {
    assert!(names().contains(&LIBTORCH));
    let opts = OpenOptions {
        models: vec![],
        fixtures_dir: fixtures::default_dir(),
        workers: 1,
        intra_threads: 1,
        device: contract::Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    };
    let opened = open(LIBTORCH, &opts, &BackendOptions::default());
    if cfg!(servebench_libtorch) {
        let b = opened.unwrap();
        assert!(
            b.describe().engine.starts_with("libtorch 2.13.0"),
            "{:?}",
            b.describe()
        );
    } else {
        let e = opened.err().unwrap().to_string();
        assert!(
            e.contains("not compiled in") && e.contains("run scripts/setup"),
            "{e}"
        );
    }
}

fn common() -> OpenOptions {
    OpenOptions {
        models: vec!["text-cnn".into()],
        fixtures_dir: fixtures::default_dir(),
        workers: 1,
        intra_threads: 1,
        device: contract::Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    }
}

#[test]
fn an_unknown_name_says_which_names_exist() {
    let e = open("tensorrt@a", &common(), &BackendOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("tensorrt@a") && e.contains("candle, onnxruntime"),
        "{e}"
    );
}

#[cfg(all(feature = "flask", feature = "triton", feature = "tfserving"))]
#[test]
fn backend_options_parse_from_flags_and_files() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        options: BackendOptions,
    }
    use clap::Parser;
    let cli = Cli::try_parse_from([
        "x",
        "--triton-url",
        "http://127.0.0.1:9000/",
        "--triton-http-body",
        "json",
        "--dynamic-batching",
        "--tfserving-format",
        "columnar",
        "--flask-url",
        "http://127.0.0.1:8000",
    ])
    .unwrap();
    let o = cli.options;
    assert_eq!(o.triton.url.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(o.triton.http_body, adapter_triton::HttpBody::Json);
    assert!(o.triton.dynamic_batching);
    assert_eq!(o.tfserving.format, adapter_tfserving::RestFormat::Columnar);
    assert_eq!(o.flask.url.as_deref(), Some("http://127.0.0.1:8000"));
    let defaults = Cli::try_parse_from(["x"]).unwrap().options;
    assert_eq!(defaults, BackendOptions::default());
    assert_eq!(defaults.triton.http_body, adapter_triton::HttpBody::Binary);

    let e = Cli::try_parse_from(["x", "--triton-grpc-url", "127.0.0.1:8001"])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("--triton-grpc-url") && e.contains("http://127.0.0.1:8000"),
        "{e}"
    );
    assert!(Cli::try_parse_from(["x", "--triton-http-body", "xml"]).is_err());

    let json = serde_json::to_string(&o).unwrap();
    assert_eq!(serde_json::from_str::<BackendOptions>(&json).unwrap(), o);
    let file: BackendOptions =
        toml::from_str("[triton]\nhttp_body = \"json\"\n[tfserving]\nformat = \"row\"\n").unwrap();
    assert_eq!(file.triton.http_body, adapter_triton::HttpBody::Json);
    assert!(toml::from_str::<BackendOptions>("[triton]\nbody = \"json\"\n").is_err());
}

/// Two labels of one server backend, opened with different options, keep them
/// (opening with a URL connects to nothing yet).
#[cfg(feature = "triton")]
#[test]
fn two_labels_of_one_backend_carry_their_own_options() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = rt.enter();
    let with = |url: &str, body| BackendOptions {
        triton: adapter_triton::Options {
            url: Some(url.into()),
            grpc_url: Some(url.into()),
            http_body: body,
            dynamic_batching: false,
            metrics_url: None,
        },
        ..BackendOptions::default()
    };
    let a = with("http://127.0.0.1:1", adapter_triton::HttpBody::Json);
    let b = with("http://127.0.0.1:2", adapter_triton::HttpBody::Binary);
    for kind in [TRITON_HTTP, TRITON_GRPC] {
        let da = open(&format!("{kind}@a"), &common(), &a)
            .unwrap()
            .describe();
        let db = open(&format!("{kind}@b"), &common(), &b)
            .unwrap()
            .describe();
        assert_eq!(da.details["url"], "http://127.0.0.1:1");
        assert_eq!(db.details["url"], "http://127.0.0.1:2");
        assert_eq!(da.models, ["text-cnn"]);
        if kind == TRITON_HTTP {
            assert_eq!(da.details["http_body"], "json");
            assert_eq!(db.details["http_body"], "binary");
        }
    }
}

#[cfg(all(feature = "kserve", feature = "torchserve"))]
#[test]
fn torchserve_grpc_and_kserve_metrics_urls_parse_and_are_recorded() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        options: BackendOptions,
    }
    use clap::Parser;
    let o = Cli::try_parse_from([
        "x",
        "--torchserve-grpc-url",
        "http://127.0.0.1:7070/",
        "--kserve-metrics-url",
        "http://127.0.0.1:8082/metrics",
    ])
    .unwrap()
    .options;
    assert_eq!(
        o.torchserve.grpc_url.as_deref(),
        Some("http://127.0.0.1:7070")
    );
    assert_eq!(
        o.kserve.metrics_url.as_deref(),
        Some("http://127.0.0.1:8082/metrics")
    );
    let part = o.part("torchserve-grpc@a").unwrap();
    assert_eq!(part["grpc_url"], "http://127.0.0.1:7070");
    assert!(Cli::try_parse_from(["x", "--torchserve-grpc-url", "127.0.0.1:7070"]).is_err());
}
