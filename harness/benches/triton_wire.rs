//! What each Triton protocol costs the client: ResNet-50 at batch 8, against the real
//! managed `tritonserver` (Python backend, onnxruntime) on loopback.
//!
//! For HTTP with JSON tensors, HTTP with binary tensors and gRPC (`raw_input_contents`):
//! - **bytes on the wire per request**, request + response, counted by a byte-counting
//!   TCP relay between the client and the server (HTTP headers and HTTP/2 framing
//!   included);
//! - **client CPU time per request**: this process's user + system CPU time
//!   (`getrusage`) over a run of sequential requests, without the relay, divided by the
//!   number of requests. Encoding happens once, outside (as in `compare`); decoding the
//!   answer is included.
//!
//! Not a timed test: it prints a table. Run with
//! `cargo bench -p harness --bench triton_wire` (after `scripts/setup`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapter_triton::server::{Install, ManagedTriton, ServerConfig, READY_TIMEOUT};
use adapter_triton::{HttpBody, Options};
use contract::{Backend, Device, OpenOptions};
use fixtures::ModelId;

/// The harness binary's allocator, so that the client is timed as it runs there.
#[global_allocator]
static ALLOCATOR: harness::alloc::LineAligned = harness::alloc::LineAligned;

const BATCH: usize = 8;
const WARMUP: usize = 2;
const REQUESTS: usize = 10;

/// A TCP relay from a local port to `upstream`, counting bytes each way.
struct Relay {
    port: u16,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

impl Relay {
    fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (u, d) = (up.clone(), down.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    u.clone(),
                );
                pump(server, client, d.clone());
            }
        });
        Relay { port, up, down }
    }

    fn total(&self) -> u64 {
        self.up.load(Ordering::SeqCst) + self.down.load(Ordering::SeqCst)
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, count: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    count.fetch_add(n as u64, Ordering::SeqCst);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn open(name: &str, url: String, body: HttpBody) -> Arc<dyn Backend> {
    let options = Options {
        url: Some(url.clone()),
        grpc_url: Some(url),
        http_body: body,
        dynamic_batching: false,
        metrics_url: None,
    };
    let opts = OpenOptions {
        models: vec![ModelId::Resnet50.name().into()],
        fixtures_dir: fixtures::default_dir(),
        workers: 1,
        intra_threads: contract::default_intra_threads(1),
        device: Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    };
    if name == adapter_triton::HTTP_NAME {
        adapter_triton::open_http(&opts, &options).unwrap()
    } else {
        adapter_triton::open_grpc(&opts, &options).unwrap()
    }
}

struct Row {
    name: &'static str,
    wire_bytes: f64,
    cpu_ms: f64,
    latency_ms: f64,
}

async fn measure(name: &'static str, backend: &'static str, body: HttpBody, port: u16) -> Row {
    let input = fixtures::inputs::batch(ModelId::Resnet50, BATCH, 3);
    // Bytes: a few requests through the relay, on a fresh connection.
    let relay = Relay::start(port);
    let b = open(backend, format!("http://127.0.0.1:{}", relay.port), body);
    let req = b.prepare("resnet50", vec![input.clone()]).unwrap();
    b.infer(&req).await.unwrap(); // connection set-up
    let before = relay.total();
    for _ in 0..3 {
        b.infer(&req).await.unwrap();
    }
    let wire_bytes = (relay.total() - before) as f64 / 3.0;
    drop(b);

    // CPU: sequential requests straight to the server.
    let b = open(backend, format!("http://127.0.0.1:{port}"), body);
    let req = b.prepare("resnet50", vec![input]).unwrap();
    for _ in 0..WARMUP {
        b.infer(&req).await.unwrap();
    }
    let (cpu0, t0) = (cpu_time(), Instant::now());
    for _ in 0..REQUESTS {
        let out = b.infer(&req).await.unwrap();
        assert_eq!(out[0].shape, vec![BATCH, 1000]);
    }
    let cpu = cpu_time() - cpu0;
    Row {
        name,
        wire_bytes,
        cpu_ms: cpu.as_secs_f64() * 1e3 / REQUESTS as f64,
        latency_ms: t0.elapsed().as_secs_f64() * 1e3 / REQUESTS as f64,
    }
}

fn main() {
    harness::alloc::keep_freed_memory();
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing to skip on.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = fixtures::default_dir();
    fixtures::ensure(&dir, &[ModelId::Resnet50], fixtures::DEFAULT_SEED).unwrap();
    let server = ManagedTriton::start(&ServerConfig {
        install: Install::find().expect("nvidia-pytriton in .venv-triton: run scripts/setup"),
        fixtures_dir: dir,
        models: vec![ModelId::Resnet50],
        user_models: vec![],
        instances: 1,
        intra_threads: contract::default_intra_threads(1),
        dynamic_batching: false,
        precision: Default::default(),
        conversions: false,
        ready_timeout: READY_TIMEOUT,
    })
    .unwrap();
    let port_of = |url: String| -> u16 { url.rsplit(':').next().unwrap().parse().unwrap() };
    let (http, grpc) = (port_of(server.http_url()), port_of(server.grpc_url()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        vec![
            measure(
                "HTTP, JSON tensors",
                adapter_triton::HTTP_NAME,
                HttpBody::Json,
                http,
            )
            .await,
            measure(
                "HTTP, binary tensors",
                adapter_triton::HTTP_NAME,
                HttpBody::Binary,
                http,
            )
            .await,
            measure(
                "gRPC, raw_input_contents",
                adapter_triton::GRPC_NAME,
                HttpBody::Binary,
                grpc,
            )
            .await,
        ]
    });
    println!(
        "\nResNet-50, batch {BATCH}, Triton 2.51 (managed, Python backend), {REQUESTS} sequential requests"
    );
    println!("| protocol | bytes on the wire per request | client CPU ms per request | mean latency ms |");
    println!("|---|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.0} ({:.2} MB) | {:.2} | {:.0} |",
            r.name,
            r.wire_bytes,
            r.wire_bytes / 1e6,
            r.cpu_ms,
            r.latency_ms
        );
    }
    drop(server);
}
