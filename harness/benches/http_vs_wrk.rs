//! The harness's HTTP client against `wrk`, on the same fast local keep-alive server.
//!
//! The server (on 127.0.0.1, in a process of its own) answers every request with the same
//! fixed text-CNN-batch-1 predictions, from one thread per connection, so what is timed is
//! the client: the harness's closed loop driving the real Flask backend (the HTTP client of
//! `adapters/support` that every HTTP backend uses, encoding the real text-CNN batch-1
//! input once, decoding every answer), and `wrk` POSTing the very same body (captured by
//! the server from the harness's first request). The server is this bench's binary
//! started again with `HTTP_VS_WRK_SERVER` set, because no client shares its server's
//! process: while it ran as threads of the harness's process, the shared address space
//! made every request at c=64 cost both sides more CPU than under wrk (the server's
//! threads clearing freshly faulted pages), a cost of the bench, not of the client.
//! Runs alternate harness / wrk, 3 s each, at concurrency 1, 8 and 64 (or
//! `HTTP_VS_WRK_CONCURRENCY`, for example `1`), over rounds (4, or `HTTP_VS_WRK_ROUNDS`)
//! with the order swapped every other round, so drift on a loaded machine hits both
//! alike. Target: harness/wrk req/s >= 1.0 everywhere and the p50 at c=1 within 5 % of
//! wrk's.
//!
//! Each run also prints CPU time per request, which explains the rates: on 2 cores the
//! server and the client share the machine, so a client that costs more leaves the
//! server less. The client's: the harness's is the on-CPU time of its load threads
//! (where the load tasks and the HTTP client run), wrk's its process's (getrusage of
//! the waited child); each with the part spent in user space, where the two differ most
//! (the kernel's share is the same sockets' work). The server's: its process's CPU time
//! (`clock_getcpuclockid`), the same server under either client.
//!
//! The machine is part of the measurement: on 2 cores the server, wrk (or the harness)
//! and anything else running share them, so run it on an idle machine and read the
//! summary, not one round.
//!
//! `cargo bench -p harness --bench http_vs_wrk`. Needs `wrk` on PATH (scripts/setup
//! installs it; `apt-get install -y wrk`): without it the bench says so and skips.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Once};

use contract::{Backend, Description, Protocol};
use fixtures::ModelId;
use harness::load::{closed_loop, threads::LOAD_THREAD_NAME, Window};

mod cpu_time;

/// The harness binary's allocator, so that the client is timed as it runs there.
#[global_allocator]
static ALLOCATOR: harness::alloc::LineAligned = harness::alloc::LineAligned;

/// Seconds each side runs at each concurrency.
const SECONDS: f64 = 3.0;
/// Concurrencies compared; `HTTP_VS_WRK_CONCURRENCY` (`1,8,64`) changes them.
const CONCURRENCY: [usize; 3] = [1, 8, 64];
/// Rounds, each odd one swapping which side goes first; `HTTP_VS_WRK_ROUNDS` changes it.
const ROUNDS: usize = 4;
/// The fixed answer: text-CNN batch-1 logits as the Flask app writes them.
const ANSWER: &str = r#"{"predictions": [[0.123456789, -0.987654321]]}"#;

/// Set in the server's environment: the process serves instead of measuring.
const SERVER_ENV: &str = "HTTP_VS_WRK_SERVER";

fn main() {
    if std::env::var_os(SERVER_ENV).is_some() {
        return server_process();
    }
    harness::alloc::keep_freed_memory();
    if Command::new("wrk").arg("--version").output().is_err() {
        println!(
            "http_vs_wrk: skipped: wrk is not installed (apt-get install -y wrk, or scripts/setup)"
        );
        return;
    }
    if cfg!(debug_assertions) {
        println!("http_vs_wrk: built without optimisation (--profile dev): the harness side is far slower than a release build; these figures say nothing about the target");
    }
    let rounds = match std::env::var("HTTP_VS_WRK_ROUNDS") {
        Ok(v) => {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    eprintln!("http_vs_wrk: HTTP_VS_WRK_ROUNDS={v:?} is not a whole number of rounds above 0");
                    std::process::exit(2);
                }
            }
        }
        Err(_) => ROUNDS,
    };
    let levels = match std::env::var("HTTP_VS_WRK_CONCURRENCY") {
        Ok(v) => match concurrency_levels(&v) {
            Some(levels) => levels,
            None => {
                eprintln!("http_vs_wrk: HTTP_VS_WRK_CONCURRENCY={v:?} is not a comma-separated list of concurrencies above 0 (for example 1,8,64)");
                std::process::exit(2);
            }
        },
        Err(_) => CONCURRENCY.to_vec(),
    };
    let mut server = Server::start();
    let base = format!("http://127.0.0.1:{}", server.port);
    // Named as the harness names its client threads, whose CPU time it counts.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name(harness::load::cpu::CLIENT_THREAD_NAME)
        .enable_all()
        .build()
        .expect("runtime");
    // One worker: before the pool was sized to the requests in flight, the pool kept
    // only `--workers` idle connections.
    let backend: Arc<dyn Backend> =
        Arc::new(adapter_flask::FlaskBackend::new(&base, 1, description(), None).expect("client"));
    let input = fixtures::inputs::batch(ModelId::TextCnn, 1, fixtures::DEFAULT_SEED);
    let request = Arc::new(
        backend
            .prepare(ModelId::TextCnn.name(), vec![input])
            .expect("prepare"),
    );
    runtime
        .block_on(backend.infer(&request))
        .expect("the fixed answer decodes");
    let sent = server.first_body();
    let script = wrk_script(&sent);
    let url = format!("{base}/v1/models/{}:predict", ModelId::TextCnn.name());

    println!(
        "http_vs_wrk: {} B request, {} B answer, {SECONDS} s per run, rounds {rounds} (interleaved)",
        sent.len(),
        ANSWER.len()
    );
    let mut sums: Vec<(Run, Run)> = levels.iter().map(|_| Default::default()).collect();
    let mut ratios: Vec<Vec<f64>> = levels.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (k, &c) in levels.iter().enumerate() {
            let harness_run = || {
                let (server0, user0) = (server.cpu(), load_threads_user());
                let m = runtime.block_on(closed_loop(
                    backend.clone(),
                    request.clone(),
                    c,
                    Window::Duration {
                        seconds: SECONDS,
                        min_requests: 0,
                    },
                ));
                assert_eq!(m.failed(), 0, "harness errors: {:?}", m.error_messages);
                let per_request = 1e6 / m.ok().max(1) as f64;
                let user = load_threads_user().saturating_sub(user0);
                Run {
                    rps: m.throughput(),
                    p50: m.histogram.value_at_quantile(0.5) as f64,
                    cpu_us: m.client_cpu_s.unwrap_or(f64::NAN) * per_request,
                    user_us: user.as_secs_f64() * per_request,
                    server_cpu_us: server.cpu().saturating_sub(server0).as_secs_f64() * per_request,
                }
            };
            let (h, w) = if round % 2 == 0 {
                let h = harness_run();
                (h, wrk(&url, &script, c, &server))
            } else {
                let w = wrk(&url, &script, c, &server);
                (harness_run(), w)
            };
            println!(
                "round {round} c={c:<2} harness {:>6.0} req/s p50 {:>3.0} us {} | wrk {:>6.0} req/s p50 {:>3.0} us {} | ratio {:.2}",
                h.rps, h.p50, h.cpu(1.0), w.rps, w.p50, w.cpu(1.0), h.rps / w.rps
            );
            ratios[k].push(h.rps / w.rps);
            sums[k].0.add(&h);
            sums[k].1.add(&w);
        }
    }
    println!("summary (sums over rounds): harness/wrk req/s and p50; mean CPU µs per request of the client (its user-space part) + the server");
    for (k, (&c, (h, w))) in levels.iter().zip(&sums).enumerate() {
        let n = rounds as f64;
        println!(
            "c={c:<3} req/s ratio {:.2} {}  p50 ratio {:.2}  harness {}  wrk {}",
            h.rps / w.rps,
            interval(&ratios[k]),
            h.p50 / w.p50,
            h.cpu(n),
            w.cpu(n)
        );
    }
}

/// `1,8,64`: the concurrencies to compare, each above 0; `None` for anything else.
fn concurrency_levels(v: &str) -> Option<Vec<usize>> {
    v.split(',')
        .map(|c| c.trim().parse::<usize>().ok().filter(|&c| c > 0))
        .collect()
}

/// `[lo, hi]`: the 95 % interval of the geometric mean of the rounds' ratios (a t
/// interval on their logarithms; the rounds are independent, so drift between them is
/// in it), and their median. The median too because a run on this machine now and then
/// lands in a state where the same server answers half as fast again (either client,
/// whichever side of the pair it hits), and one such round moves the mean far more than
/// what the clients themselves differ by.
fn interval(ratios: &[f64]) -> String {
    let n = ratios.len();
    if n < 2 {
        return "[one round]".into();
    }
    let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
    let mean = logs.iter().sum::<f64>() / n as f64;
    let var = logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = harness::stats::paired::t975(n - 1) * (var / n as f64).sqrt();
    let median = harness::stats::median(ratios);
    format!(
        "(rounds: {:.2} [{:.2}, {:.2}], median {median:.2})",
        mean.exp(),
        (mean - half).exp(),
        (mean + half).exp()
    )
}

/// What one run of one client gave: req/s, p50 (µs), and CPU time per request (µs): the
/// client's, its user-space part, and the server's.
#[derive(Default)]
struct Run {
    rps: f64,
    p50: f64,
    cpu_us: f64,
    user_us: f64,
    server_cpu_us: f64,
}

impl Run {
    fn add(&mut self, other: &Run) {
        self.rps += other.rps;
        self.p50 += other.p50;
        self.cpu_us += other.cpu_us;
        self.user_us += other.user_us;
        self.server_cpu_us += other.server_cpu_us;
    }

    /// `cpu 7.1 (user 1.6) + 7.7 us/req`, of a sum over `n` runs.
    fn cpu(&self, n: f64) -> String {
        format!(
            "cpu {:.1} (user {:.1}) + {:.1} us/req",
            self.cpu_us / n,
            self.user_us / n,
            self.server_cpu_us / n
        )
    }
}

fn description() -> Description {
    Description {
        name: "flask".into(),
        engine: "fixed-answer test server".into(),
        protocol: Protocol::Http,
        device: "cpu".into(),
        workers: 1,
        intra_threads: None,
        models: vec![ModelId::TextCnn.name().to_string()],
        served_by_test_peer: true,
        details: Default::default(),
    }
}

/// The fixed-answer server's process, killed when this is dropped (and ending by itself
/// when its stdin closes, should this process die first).
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    port: u16,
    clock: cpu_time::ProcessClock,
}

impl Server {
    /// Starts this binary again as the server and reads the port it listens on.
    fn start() -> Server {
        let exe = std::env::current_exe().expect("this bench's path");
        let mut child = Command::new(exe)
            .env(SERVER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the server process starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let port = read_line(&mut stdout)
            .parse()
            .expect("the server prints its port");
        let clock = cpu_time::ProcessClock::of(child.id()).expect("the server's CPU clock");
        Server {
            child,
            stdout,
            port,
            clock,
        }
    }

    /// The first request body the server read (it prints it as one line).
    fn first_body(&mut self) -> Vec<u8> {
        read_line(&mut self.stdout).into_bytes()
    }

    /// CPU time of the server's process so far.
    fn cpu(&self) -> std::time::Duration {
        self.clock.time()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_line(from: &mut impl BufRead) -> String {
    let mut line = String::new();
    from.read_line(&mut line).expect("the server's stdout");
    line.trim_end().to_string()
}

/// The server process: prints its port, serves, prints the first request body as one
/// line, and exits when its stdin closes.
fn server_process() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("{}", listener.local_addr().unwrap().port());
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || connection(stream));
    }
}

/// Answers every request of one keep-alive connection until the client closes it; the
/// first body of all, over every connection, goes to stdout.
fn connection(stream: TcpStream) {
    static FIRST_BODY: Once = Once::new();
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
    let mut line = String::new();
    loop {
        let mut length = 0usize;
        // Request line and headers.
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        FIRST_BODY.call_once(|| {
            assert!(!body.contains(&b'\n'), "a one-line JSON body");
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&body).and_then(|()| out.write_all(b"\n"));
            let _ = out.flush();
        });
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// A wrk Lua script POSTing `body` as JSON.
fn wrk_script(body: &[u8]) -> tempfile::TempPath {
    let text = std::str::from_utf8(body).expect("a JSON body");
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [==[{text}]==]\n"
    );
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(lua.as_bytes()).expect("write script");
    f.into_temp_path()
}

/// User-space CPU time of the harness's load threads so far.
fn load_threads_user() -> std::time::Duration {
    cpu_time::threads_named_split(LOAD_THREAD_NAME).user
}

/// wrk's req/s, p50 (µs) and CPU per request at `c` connections for [`SECONDS`].
fn wrk(url: &str, script: &tempfile::TempPath, c: usize, server: &Server) -> Run {
    let (cpu0, server0) = (cpu_time::children(), server.cpu());
    let out = Command::new("wrk")
        .args([
            "--latency",
            "-t",
            &c.min(2).to_string(),
            "-c",
            &c.to_string(),
        ])
        .args(["-d", &format!("{}s", SECONDS as u64)])
        .arg("-s")
        .arg(script.as_os_str())
        .arg(url)
        .output()
        .expect("wrk runs");
    let cpu = cpu_time::children().since(cpu0);
    let server = server.cpu().saturating_sub(server0);
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let p50 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("50%"))
        .map(|v| micros(v.trim()))
        .unwrap_or_else(|| panic!("no 50% line in wrk's output:\n{text}"));
    // "  123456 requests in 3.00s, 12.34MB read"
    let requests: f64 = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    Run {
        rps,
        p50,
        cpu_us: (cpu.user + cpu.system).as_secs_f64() * 1e6 / requests.max(1.0),
        user_us: cpu.user.as_secs_f64() * 1e6 / requests.max(1.0),
        server_cpu_us: server.as_secs_f64() * 1e6 / requests.max(1.0),
    }
}

/// wrk's `123.45us`, `1.23ms` or `1.01s`, in µs.
fn micros(v: &str) -> f64 {
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e6)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().expect("a wrk duration") * scale
}
