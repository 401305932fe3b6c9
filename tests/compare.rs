//! End to end: `harness compare --quick` through the real binary, on the real engines
//! (candle and ONNX Runtime), with its JSON checked against the published schema and
//! read back through the results types.

mod common;

use common::{harness, has_ratio_row, result_files, schema_errors, text, widest_line};

#[test]
fn quick_compare_measures_both_backends_on_both_models() {
    let out_dir = tempfile::tempdir().unwrap();
    let json_path = out_dir.path().join("extra").join("run.json");
    let out = harness(&[
        "compare",
        "--quick",
        "--time-budget",
        "10s",
        // One request a window at least, as before: the slowest points (candle
        // at large batches, seconds a request in a debug build) keep the suite short.
        "--min-requests",
        "1",
        "--quiet",
        "--backends",
        "candle,onnxruntime",
        "--models",
        "text-cnn,resnet18",
        "--results-dir",
        out_dir.path().to_str().unwrap(),
        "--json",
        json_path.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    // The terminal shows one table per model and batch class, with ratio columns.
    for title in [
        "text-cnn, small batches",
        "text-cnn, large batches",
        "resnet18, small batches",
        "resnet18, large batches",
    ] {
        assert!(stdout.contains(title), "missing {title:?} in:\n{stdout}");
    }
    assert!(has_ratio_row(&stdout, "onnxruntime"), "{stdout}");
    // The tables and the prose fit 120 columns (the closing line that names the files
    // is wrapped at spaces; these paths are short).
    assert!(
        widest_line(&stdout) <= 120,
        "wider than 120 columns:\n{stdout}"
    );

    // The results directory and --json hold the same complete document.
    let files = result_files(out_dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let extra: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(doc, extra);
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");

    // Both backends agree with the reference on both models, and were both measured.
    let agreement = doc["agreement"].as_array().unwrap();
    assert_eq!(agreement.len(), 2, "{agreement:#?}");
    for a in agreement {
        assert_eq!(a["backend"], "onnxruntime");
        assert_eq!(a["reference"], "candle");
        assert_eq!(a["passed"], true, "{a}");
        assert_eq!(a["top1_agreement"], 1.0, "{a}");
    }
    let results = doc["results"].as_array().unwrap();
    let config = &doc["config"];
    for backend in ["candle", "onnxruntime"] {
        for model in ["text-cnn", "resnet18"] {
            let large = if model == "text-cnn" {
                "large_batches"
            } else {
                "large_batches_resnet"
            };
            for list in ["small_batches", large] {
                // A table is a view: the rows whose batch size is in its list.
                let batches = config[list].as_array().unwrap();
                let rows: Vec<_> = results
                    .iter()
                    .filter(|r| {
                        r["backend"] == backend
                            && r["model"] == model
                            && batches.contains(&r["batch_size"])
                    })
                    .collect();
                assert_eq!(rows.len(), batches.len(), "{backend} {model} {list}");
                for r in rows {
                    assert_eq!(r["errors"], 0, "{r}");
                    assert!(r["requests"].as_u64().unwrap() >= 2, "{r}");
                    let l = &r["latency_ms"];
                    let (p50, p99) = (l["p50"].as_f64().unwrap(), l["p99"].as_f64().unwrap());
                    assert!(p50 > 0.0 && p50 <= p99, "{r}");
                }
            }
        }
    }
    // Batch 1 is in both lists of both models, and still one measured row each.
    for backend in ["candle", "onnxruntime"] {
        for model in ["text-cnn", "resnet18"] {
            let ones = results
                .iter()
                .filter(|r| r["backend"] == backend && r["model"] == model && r["batch_size"] == 1)
                .count();
            assert_eq!(ones, 1, "{backend} {model}");
        }
    }
    // Every onnxruntime point has one ratio against the baseline (candle, listed first).
    assert_eq!(doc["baseline"], "candle");
    let ratios = doc["ratios"].as_array().unwrap();
    let ort_points = results
        .iter()
        .filter(|r| r["backend"] == "onnxruntime")
        .count();
    assert_eq!(ratios.len(), ort_points);
    // The effective settings and engine versions are recorded.
    for b in doc["backends"].as_array().unwrap() {
        assert_eq!(b["workers"], 1, "{b}");
        assert!(b["intra_threads"].as_u64().unwrap() >= 1, "{b}");
    }
    let engines = &doc["system"]["engines"];
    assert!(
        engines["onnxruntime"]
            .as_str()
            .unwrap()
            .starts_with("onnxruntime 1."),
        "{engines}"
    );
    assert!(engines["candle"].as_str().unwrap().starts_with("candle "));

    // The document reads back into the results types and writes out the same.
    let typed: harness::results::Results = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), doc);
    // And the report renders from what was read back.
    assert!(harness::report::markdown(&typed).contains("text-cnn, small batches"));

    // A run diffed with itself has no regression, from the window samples it keeps.
    assert!(results
        .iter()
        .all(|r| !r["window_histograms"].as_array().unwrap().is_empty()));
    let a = files[0].to_str().unwrap();
    let out = harness(&["diff", a, json_path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("No regression"), "{stdout}");
    assert!(!stdout.contains("(no samples)"), "{stdout}");

    report_html_renders_in_chromium(&files[0].with_file_name("report.html"));
}

/// report.html is self-contained and shows its plots in headless Chromium (when it is
/// installed: scripts/setup installs it); a screenshot goes to the test's output.
fn report_html_renders_in_chromium(html: &std::path::Path) {
    let page = std::fs::read_to_string(html).unwrap();
    for needle in [
        "<svg",
        "latency-throughput",
        "distribution",
        "ratios",
        "<table",
        "<h2>Cold start</h2>",
        "<table class=\"cold-start\">",
    ] {
        assert!(page.contains(needle), "{needle} missing from report.html");
    }
    // Self-contained: nothing is fetched from anywhere.
    for external in ["src=\"http", "href=\"http", "<script src", "<link "] {
        assert!(!page.contains(external), "report.html loads {external}");
    }
    let chromium = ["chromium", "chromium-browser"].into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(chromium) = chromium else {
        println!("skipped: chromium is not installed (scripts/setup installs it); report.html was not rendered");
        return;
    };
    let url = format!("file://{}", html.display());
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
    ];
    let dom = std::process::Command::new(chromium)
        .args(flags)
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    // The rendered DOM holds every kind of plot, each an inline SVG.
    for kind in ["latency-throughput", "distribution", "ratios"] {
        let figures = dom.matches(&format!("class=\"plot {kind}\"><svg")).count();
        assert!(figures >= 1, "no {kind} plot in the rendered DOM");
    }
    assert!(dom.contains("text-cnn") && dom.contains("onnxruntime"));
    // The cold start table, one row per backend.
    let cold = dom
        .split("<table class=\"cold-start\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("a cold start table in the rendered DOM");
    for backend in ["candle", "onnxruntime"] {
        assert!(cold.contains(&format!(">{backend}</td>")), "{cold}");
    }
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html.png");
    let out = std::process::Command::new(chromium)
        .args(flags)
        .arg(format!("--screenshot={}", shot.display()))
        .args(["--window-size=1280,2400", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("report.html screenshot: {}", shot.display());
}

/// `--workers 1,2`: the engine is opened once per count, every point is measured at
/// both, and the grid is printed within 120 columns.
#[test]
fn a_worker_grid_measures_each_count() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = harness(&[
        "compare",
        "--quick",
        "--quiet",
        "--time-budget",
        "2s",
        "--duration",
        "20ms",
        "--trials",
        "2",
        "--backends",
        "onnxruntime",
        "--reference",
        "onnxruntime",
        "--models",
        "text-cnn",
        "--small-batches",
        "1",
        "--large-batches",
        "1",
        "--workers",
        "1,2",
        "--results-dir",
        out_dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let page = common::unwrapped(&stdout);
    for needle in [
        "With 1 workers (worker grid 1, 2)",
        "With 2 workers (worker grid 1, 2)",
        "text-cnn, worker grid: CPU %",
        "text-cnn, worker grid: latency in ms",
    ] {
        assert!(page.contains(needle), "{needle:?} missing:\n{stdout}");
    }
    let page: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("Results: "))
        .collect();
    assert!(widest_line(&page.join("\n")) <= 120, "{stdout}");

    let files = result_files(out_dir.path());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert!(schema_errors(&doc).is_empty(), "{:?}", schema_errors(&doc));
    assert_eq!(doc["config"]["worker_counts"], serde_json::json!([1, 2]));
    // The engine was opened at each count, and says so.
    let opened: Vec<_> = doc["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["workers"].as_u64().unwrap()))
        .collect();
    assert_eq!(opened, [("onnxruntime", 1), ("onnxruntime", 2)]);
    // Each count measured the point, at the load that follows it.
    let rows: Vec<_> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["workers"].as_u64().unwrap(), r["load"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [(1, "c=1"), (2, "c=2")]);
}
