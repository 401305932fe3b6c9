//! End to end: the measurement machinery through the real binary on the real engines
//! (candle and ONNX Runtime in process): a concurrency sweep, a Poisson open loop, an
//! A/A comparison of one backend against itself, `harness run` and `--format csv`.

mod common;

use common::{harness, has_ratio_row, result_files, schema_errors, text};

/// One harness run at a time: runs measure latency, and two of them sharing the 2 cores
/// would make each other's drift (the A/A check failed that way).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the harness with `args` plus a private results directory, one run at a time;
/// returns the results document and stdout.
fn run_ok(args: &[&str]) -> (serde_json::Value, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--quiet", "--results-dir", dir.path().to_str().unwrap()]);
    let out = harness(&all);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let files = result_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    (doc, stdout)
}

fn rows<'a>(doc: &'a serde_json::Value, backend: &str) -> Vec<&'a serde_json::Value> {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["backend"] == backend)
        .collect()
}

#[test]
fn concurrency_sweep_on_two_engines() {
    let (doc, stdout) = run_ok(&[
        "compare",
        "--backends",
        "candle,onnxruntime",
        "--models",
        "resnet18",
        "--small-batches",
        "1",
        "--large-batches-resnet",
        "1",
        "--concurrency",
        "1,2",
        "--trials",
        "1",
        "--time-budget",
        "4s",
        // One request a window at least, as before: the slowest points (candle
        // at large batches, seconds a request in a debug build) keep the suite short.
        "--min-requests",
        "1",
        "--duration",
        "0.2",
    ]);
    for backend in ["candle", "onnxruntime"] {
        let r = rows(&doc, backend);
        let mut levels: Vec<u64> = r
            .iter()
            .map(|r| r["concurrency"].as_u64().unwrap())
            .collect();
        levels.sort();
        levels.dedup();
        assert_eq!(levels, [1, 2], "{backend}");
        for r in r {
            assert_eq!(r["errors"], 0, "{r}");
            assert!(r["request_rate"].is_null(), "{r}");
            let m = &r["measurement"];
            // `--trials 1` asks for one round, but an interval needs two.
            assert!(m["trials"].as_u64().unwrap() >= 2, "{r}");
            assert!(m["windows"].as_u64().unwrap() >= 1, "{r}");
            assert!(m["total_requests"].as_u64().unwrap() >= r["requests"].as_u64().unwrap());
            let l = &r["latency_ms"];
            let (p50, p80, p99) = (
                l["p50"].as_f64().unwrap(),
                l["p80"].as_f64().unwrap(),
                l["p99"].as_f64().unwrap(),
            );
            assert!(p50 > 0.0 && p50 <= p80 && p80 <= p99, "{r}");
            assert_eq!(l["samples"], r["requests"], "{r}");
            // Exact slowest vs the histogram's 3 significant digits.
            assert!(l["slowest"]["n1"].as_f64().unwrap() >= p99 * 0.998, "{r}");
            assert_eq!(l["slowest"]["n1"], l["max"], "{r}");
        }
    }
    // Every onnxruntime point has a ratio with an interval around it.
    let ratios = doc["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), rows(&doc, "onnxruntime").len());
    for r in ratios {
        let (lo, hi) = (
            r["ci_low"].as_f64().unwrap(),
            r["ci_high"].as_f64().unwrap(),
        );
        assert!(lo > 0.0 && lo <= hi, "{r}");
        // What more rounds it needs is recorded (2 rounds at least ran).
        assert!(r["rounds_to_target"].as_u64().is_some(), "{r}");
    }
    // Under the ratio tables, how many ratios reached the target, as the JSON says.
    let met = ratios.iter().filter(|r| r["target_met"] == true).count();
    let summary = format!("Precision: {met} of {} ratios within ±", ratios.len());
    assert!(stdout.contains(&summary), "no {summary:?} in:\n{stdout}");
    assert!(stdout.contains("c=2"), "{stdout}");
    assert!(
        stdout.contains(" ["),
        "no interval in the ratio cells:\n{stdout}"
    );
    // The default (narrow) tails table: the slowest requests are in the JSON (checked
    // above), in report.md and with --wide.
    assert!(stdout.contains("latency tails in ms"), "{stdout}");
    assert!(stdout.contains("--wide: all tails"), "{stdout}");
}

#[test]
fn poisson_open_loop_on_two_engines() {
    let (doc, _) = run_ok(&[
        "compare",
        "--backends",
        "candle,onnxruntime",
        "--models",
        "resnet18",
        "--small-batches",
        "1",
        "--large-batches-resnet",
        "1",
        "--request-rate",
        "8",
        "--arrival",
        "poisson",
        "--trials",
        "1",
        "--time-budget",
        "4s",
        "--duration",
        "0.5",
    ]);
    for backend in ["candle", "onnxruntime"] {
        for r in rows(&doc, backend) {
            assert_eq!(r["request_rate"], 8.0, "{r}");
            assert_eq!(r["arrival"], "poisson", "{r}");
            assert!(r["concurrency"].is_null(), "{r}");
            assert_eq!(r["load"], "8/s poisson", "{r}");
            let m = &r["measurement"];
            assert!(m["sends"].as_u64().unwrap() >= 1, "{r}");
            let late = m["late_fraction"].as_f64().unwrap();
            let flags: Vec<&str> = r["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            // The late-sends flag is set exactly when more than 1 % started late; the
            // client is idle at 8 sends/s, and nothing is dropped.
            assert_eq!(flags.contains(&"late-sends"), late > 0.01, "{r}");
            assert!(!flags.contains(&"client-bound"), "{r}");
            assert_eq!(m["dropped_sends"], 0, "{r}");
            assert!(
                m["p99_lag_ms"].as_f64().unwrap() <= m["max_lag_ms"].as_f64().unwrap() + 1e-3,
                "{r}"
            );
            assert_eq!(r["errors"], 0, "{r}");
            assert!(r["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{r}");
        }
    }
    let config_loads = &doc["config"]["loads"];
    assert_eq!(
        config_loads[0]["open"]["arrival"], "poisson",
        "{config_loads}"
    );
}

/// One backend against itself, as two instances under two labels. A single 95 % interval
/// that must contain 1.0 fails by design one run in twenty (and more often when the two
/// instances land differently on a busy machine), so this test does not ask for it. It
/// fails only when the harness is confidently wrong: the ratio itself lies outside
/// [`AA_RATIO`], or the interval lies wholly above or below [`AA_MARGIN`] (a difference
/// of more than 10 % claimed with 95 % confidence between two copies of one engine).
/// How often intervals exclude 1.0 is a property to measure over many runs, in a bench.
const AA_RATIO: (f64, f64) = (0.8, 1.25);
/// See [`AA_RATIO`].
const AA_MARGIN: (f64, f64) = (0.9, 1.1);

#[test]
fn a_backend_against_itself_is_equivalent() {
    let (doc, stdout) = run_ok(&[
        "compare",
        "--backends",
        "candle@a,candle@b",
        "--models",
        "text-cnn",
        "--small-batches",
        "1",
        "--large-batches",
        "1",
        "--trials",
        "3",
        "--time-budget",
        "8s",
        "--duration",
        "0.3",
    ]);
    assert_eq!(doc["baseline"], "candle@a");
    let ratios = doc["ratios"].as_array().unwrap();
    assert!(!ratios.is_empty());
    for r in ratios {
        assert_eq!(r["backend"], "candle@b");
        let (ratio, lo, hi) = (
            r["p50_ratio"].as_f64().unwrap(),
            r["ci_low"].as_f64().unwrap(),
            r["ci_high"].as_f64().unwrap(),
        );
        assert!(
            AA_RATIO.0 <= ratio && ratio <= AA_RATIO.1,
            "A/A ratio outside {AA_RATIO:?}: {r}"
        );
        assert!(
            lo <= AA_MARGIN.1 && hi >= AA_MARGIN.0,
            "A/A interval claims a difference beyond {AA_MARGIN:?}: {r}"
        );
    }
    for r in rows(&doc, "candle@b") {
        assert!(r["measurement"]["trials"].as_u64().unwrap() >= 3, "{r}");
    }
    assert!(has_ratio_row(&stdout, "candle@b"), "{stdout}");
}

#[test]
fn single_target_run_prints_one_table_and_csv_has_perf_analyzer_columns() {
    let (doc, stdout) = run_ok(&[
        "run",
        "--backend",
        "candle",
        "--model",
        "text-cnn",
        "--batch",
        "2",
        "--concurrency",
        "1,2",
        "--trials",
        "1",
        "--time-budget",
        "4s",
        "--duration",
        "0.1",
    ]);
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{results:#?}");
    assert!(results.iter().all(|r| r["batch_size"] == 2));
    assert_eq!(stdout.matches("latency tails").count(), 1, "{stdout}");
    assert!(!stdout.contains("small batches"), "{stdout}");

    let (_, csv) = run_ok(&[
        "run",
        "--backend",
        "candle",
        "--model",
        "text-cnn",
        "--batch",
        "1",
        "--request-rate",
        "50",
        "--trials",
        "1",
        "--time-budget",
        "4s",
        "--duration",
        "0.2",
        "--format",
        "csv",
    ]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "Request Rate");
    for col in [
        "Inferences/Second",
        "p50 latency",
        "p99 latency",
        "Avg latency",
    ] {
        assert!(header.contains(&col), "{header:?}");
    }
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(row.len(), header.len());
    assert_eq!(row[0], "50");
    let p50: f64 = row[header.iter().position(|h| *h == "p50 latency").unwrap()]
        .parse()
        .unwrap();
    assert!(p50 > 0.0, "{row:?}");
}
