//! Property tests of every answer decoder (issue 16): whatever a server sends, decoding
//! returns a tensor or a counted error, never panics, and never allocates what the answer
//! merely declares (a huge shape, binary size or broadcast).
//!
//! Inputs are structure-aware (documents and messages of the right form with hostile
//! shapes, lengths, datatypes and values, then bytes mutated) as well as raw bytes. A
//! counting global allocator records the largest single allocation each case makes on
//! its thread; it must stay proportional to the answer's own size (or, for TF Serving's
//! one-value broadcast, within [`contract::MAX_TENSOR_BYTES`]).
//!
//! `cargo test` runs [`DEFAULT_CASES`] cases per decoder from a fixed seed (seconds);
//! `SERVEBENCH_FUZZ_CASES=N` runs N cases per decoder from a random seed (the long run).
//! Each decoder prints its executions and time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use prost::Message;
use serde_json::{json, Value};

use adapter_tfserving::grpc::proto::tensorflow as tf;
use adapter_triton::grpc::proto as kserve;

/// Cases per decoder in a plain `cargo test`.
const DEFAULT_CASES: u32 = 2000;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, noting the largest single request on each thread.
struct Counting;

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        note(new);
        System.realloc(p, l, new)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `decode` on `input`, failing the case when the largest allocation it made
/// passes `limit`.
fn bounded<T>(limit: usize, decode: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    LARGEST.with(|c| c.set(0));
    let out = decode();
    let largest = LARGEST.with(Cell::get);
    prop_assert!(
        largest <= limit,
        "one allocation of {largest} bytes (limit {limit})"
    );
    Ok(out)
}

/// What a decoder of an answer of `len` bytes may allocate at once: a JSON document
/// costs a few tens of bytes per input byte as values.
fn proportional(len: usize) -> usize {
    64 * len + (1 << 20)
}

/// Runs `cases` of `strategy` through `check`, then prints the executions and time.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let long = std::env::var("SERVEBENCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    let config = Config {
        cases: long.unwrap_or(DEFAULT_CASES),
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut runner = match long {
        Some(_) => TestRunner::new(config),
        None => TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha)),
    };
    let executions = Cell::new(0u64);
    let start = Instant::now();
    let result = runner.run(&strategy, |v| {
        executions.set(executions.get() + 1);
        check(v)
    });
    eprintln!(
        "fuzz {name}: {} executions in {:.2} s",
        executions.get(),
        start.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// A dimension: mostly small, sometimes hostile (huge, at a power of two, the maximum).
fn dim() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..5,
        1 => any::<u64>(),
        1 => (20u32..64).prop_map(|b| 1u64 << b),
        1 => Just(u64::MAX),
    ]
}

/// A signed dimension as protobuf carries it (negative ones included).
fn signed_dim() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0i64..5,
        1 => any::<i64>(),
        1 => (20u32..63).prop_map(|b| 1i64 << b),
        1 => Just(-1i64),
    ]
}

/// A JSON number: ordinary, huge, tiny or integral.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (-1e3f64..1e3).prop_map(|x| json!(x)),
        1 => any::<i64>().prop_map(|x| json!(x)),
        1 => any::<u64>().prop_map(|x| json!(x)),
        1 => Just(json!(1e308)),
        1 => Just(json!(-5e-324)),
    ]
}

/// Any small JSON value, leaning to nested arrays of numbers (ragged ones included).
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        6 => number(),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => "[a-z]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            4 => prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            1 => prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A nested array of numbers of a regular shape: the form a server should answer.
fn regular() -> impl Strategy<Value = Value> {
    prop::collection::vec(0usize..4, 1..4).prop_flat_map(|shape| {
        let n: usize = shape.iter().product();
        prop::collection::vec(-10f32..10.0, n).prop_map(move |v| nest(&shape, &v))
    })
}

fn nest(shape: &[usize], v: &[f32]) -> Value {
    match shape.split_first() {
        None => json!(v.first().copied().unwrap_or(0.0)),
        Some((&n, rest)) => {
            let step: usize = rest.iter().product();
            Value::Array(
                (0..n)
                    .map(|i| nest(rest, &v[(i * step).min(v.len())..]))
                    .collect(),
            )
        }
    }
}

/// Bytes of `doc` with a few bytes replaced and perhaps cut short.
fn mutated(doc: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = doc.len().max(1);
    (
        prop::collection::vec((0..len, any::<u8>()), 0..4),
        prop::option::of(0..len + 1),
    )
        .prop_map(move |(edits, cut)| {
            let mut d = doc.clone();
            for (i, b) in edits {
                if i < d.len() {
                    d[i] = b;
                }
            }
            if let Some(c) = cut {
                d.truncate(c);
            }
            d
        })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..96)
}

#[test]
fn flask_predictions() {
    let doc = prop_oneof![
        2 => (regular(), any::<bool>()).prop_map(|(v, _)| json!({ "predictions": v })),
        2 => value().prop_map(|v| json!({ "predictions": v })),
        1 => value(),
    ];
    let body = prop_oneof![
        4 => doc.prop_map(|d| serde_json::to_vec(&d).unwrap()),
        1 => bytes(),
    ];
    fuzz("flask JSON", (body, 0usize..6), |(body, batch)| {
        let r = bounded(proportional(body.len()), || {
            adapter_flask::codec::decode_predictions(&body, batch)
        })?;
        if let Err(e) = r {
            prop_assert_eq!(e.kind(), "protocol");
        }
        Ok(())
    });
}

#[test]
fn tfserving_rest_json() {
    let doc = prop_oneof![
        2 => regular().prop_map(|v| json!({ "predictions": v })),
        2 => value().prop_map(|v| json!({ "predictions": v })),
        1 => value().prop_map(|v| json!({ "outputs": v })),
        1 => prop::collection::btree_map("[a-z]{1,3}", value(), 0..3)
            .prop_map(|m| json!({ "outputs": m })),
        1 => prop::collection::vec(prop::collection::btree_map("[a-z]{1,2}", value(), 0..2), 0..4)
            .prop_map(|rows| json!({ "predictions": rows })),
        1 => value(),
    ];
    let body = prop_oneof![
        5 => doc.prop_map(|d| serde_json::to_vec(&d).unwrap()),
        1 => bytes(),
    ];
    fuzz("tfserving REST JSON", body, |body| {
        let r = bounded(proportional(body.len()), || {
            adapter_tfserving::json::decode(&body, "logits")
        })?;
        if let Err(e) = r {
            prop_assert_eq!(e.kind(), "protocol");
        }
        Ok(())
    });
}

/// One output of a KServe v2 JSON header: good, partial or hostile.
fn kserve_output() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("FP32"), Just("INT64"), Just("BYTES"), Just("")],
        prop::collection::vec(dim(), 0..4),
        prop::option::of(prop::collection::vec(number(), 0..8)),
        prop::option::of(dim()),
    )
        .prop_map(|(dt, shape, data, size)| {
            let mut o = json!({"name": "logits", "datatype": dt, "shape": shape});
            if let Some(d) = data {
                o["data"] = Value::Array(d);
            }
            if let Some(n) = size {
                o["parameters"] = json!({ "binary_data_size": n });
            }
            o
        })
}

#[test]
fn triton_http_json_and_binary() {
    let answer = (
        prop::collection::vec(kserve_output(), 0..3),
        prop::collection::vec(any::<u8>(), 0..64),
        prop_oneof![
            3 => Just(None::<u64>),
            1 => dim().prop_map(Some),
        ],
    )
        .prop_flat_map(|(outputs, tail, declared)| {
            let head = serde_json::to_vec(&json!({ "outputs": outputs })).unwrap();
            let split = head.len();
            let mut body = head;
            body.extend_from_slice(&tail);
            (mutated(body), Just(split), Just(declared), any::<bool>())
        });
    let input = prop_oneof![
        5 => answer.prop_map(|(body, split, declared, binary)| {
            // The header length the server sent: the real one, none (JSON), or any.
            let header = match (binary, declared) {
                (_, Some(d)) => Some(usize::try_from(d).unwrap_or(usize::MAX)),
                (true, None) => Some(split),
                (false, None) => None,
            };
            (body, header)
        }),
        1 => (bytes(), prop::option::of(0usize..128)),
    ];
    fuzz(
        "triton HTTP (KServe v2 JSON and binary)",
        input,
        |(body, header)| {
            let r = bounded(proportional(body.len()), || {
                adapter_triton::codec::decode(&body, header)
            })?;
            if let Err(e) = r {
                prop_assert_eq!(e.kind(), "protocol");
            }
            Ok(())
        },
    );
}

#[test]
fn triton_http_statistics() {
    let stat = (any::<u64>(), any::<u64>()).prop_map(|(c, n)| json!({"count": c, "ns": n}));
    let model = prop::collection::vec(stat, 5).prop_map(|s| {
        json!({"name": "m", "version": "1", "inference_stats": {
            "success": s[0], "queue": s[1], "compute_input": s[2],
            "compute_infer": s[3], "compute_output": s[4]}})
    });
    let body = prop_oneof![
        4 => prop::collection::vec(model, 0..4)
            .prop_map(|m| serde_json::to_vec(&json!({ "model_stats": m })).unwrap()),
        1 => bytes(),
    ];
    fuzz("triton HTTP statistics", body, |body| {
        let r = bounded(proportional(body.len()), || {
            adapter_triton::codec::decode_stats(&body, "m")
        })?;
        if let Err(e) = r {
            prop_assert_eq!(e.kind(), "protocol");
        }
        Ok(())
    });
}

#[test]
fn triton_grpc_protobuf() {
    let output = (
        prop_oneof![Just("FP32"), Just("INT64"), Just("BYTES")],
        prop::collection::vec(signed_dim(), 0..4),
    )
        .prop_map(
            |(dt, shape)| kserve::model_infer_response::InferOutputTensor {
                name: "logits".into(),
                datatype: dt.into(),
                shape,
                ..Default::default()
            },
        );
    let message = (
        prop::collection::vec(output, 0..3),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 0..3),
    )
        .prop_map(|(outputs, raw)| kserve::ModelInferResponse {
            model_name: "m".into(),
            outputs,
            raw_output_contents: raw.into_iter().map(Bytes::from).collect(),
            ..Default::default()
        });
    let wire = prop_oneof![
        4 => message.prop_flat_map(|m| mutated(m.encode_to_vec())),
        1 => bytes(),
    ];
    fuzz("triton gRPC protobuf", wire, |wire| {
        let r = bounded(proportional(wire.len()), || {
            kserve::ModelInferResponse::decode(wire.as_slice()).map(adapter_triton::grpc::decode)
        })?;
        if let Ok(Err(e)) = r {
            prop_assert_eq!(e.kind(), "protocol");
        }
        Ok(())
    });
}

#[test]
fn tfserving_grpc_protobuf() {
    let proto = (
        prop_oneof![
            Just(tf::DataType::DtFloat as i32),
            Just(tf::DataType::DtInt64 as i32),
            any::<i32>()
        ],
        prop::option::of(prop::collection::vec(signed_dim(), 0..4)),
        prop::collection::vec(any::<f32>(), 0..4),
        prop::collection::vec(any::<i64>(), 0..4),
        prop::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(
            |(dtype, dims, float_val, int64_val, content)| tf::TensorProto {
                dtype,
                tensor_shape: dims.map(|d| tf::TensorShapeProto {
                    dim: d
                        .into_iter()
                        .map(|size| tf::tensor_shape_proto::Dim {
                            size,
                            name: String::new(),
                        })
                        .collect(),
                    unknown_rank: false,
                }),
                float_val,
                int64_val,
                tensor_content: content.into(),
                ..Default::default()
            },
        );
    let message = prop::collection::btree_map("[a-z]{1,3}", proto, 0..3).prop_map(|m| {
        tf::serving::PredictResponse {
            outputs: m.into_iter().collect(),
            ..Default::default()
        }
    });
    let wire = prop_oneof![
        4 => message.prop_flat_map(|m| mutated(m.encode_to_vec())),
        1 => bytes(),
    ];
    fuzz("tfserving gRPC protobuf", wire, |wire| {
        // One value may stand for a whole tensor (TensorFlow's broadcast): bounded by the
        // largest tensor the harness accepts, not by the answer's size.
        let limit = proportional(wire.len()) + contract::MAX_TENSOR_BYTES;
        let r = bounded(limit, || {
            tf::serving::PredictResponse::decode(wire.as_slice())
                .map(adapter_tfserving::grpc::decode)
        })?;
        if let Ok(Err(e)) = r {
            prop_assert_eq!(e.kind(), "protocol");
        }
        Ok(())
    });
}

/// A datatype of a frame's header: servebench's, or one it refuses.
fn frame_datatype() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("FP32"), Just("INT64"), Just("FP16"), Just("BYTES")]
}

/// A frame of `head` (JSON), the bytes `tail` and a declared header length that is
/// the real one or any, then mutated.
fn framed(head: Value, tail: Vec<u8>, declared: Option<u64>) -> impl Strategy<Value = Vec<u8>> {
    let head = serde_json::to_vec(&head).unwrap();
    let n = declared.unwrap_or(head.len() as u64);
    let mut body = n.to_le_bytes().to_vec();
    body.extend_from_slice(&head);
    body.extend_from_slice(&tail);
    mutated(body)
}

/// A servebench tensor frame of either form: one tensor (a fixture's) or several named
/// tensors (a user's model's), each header of hostile shapes and datatypes, any tail,
/// and a declared header length that is the real one or any.
fn tensor_frame() -> impl Strategy<Value = Vec<u8>> {
    let tail = || prop::collection::vec(any::<u8>(), 0..64);
    let one = (
        prop::collection::vec(dim(), 0..4),
        frame_datatype(),
        tail(),
        prop::option::of(any::<u64>()),
    )
        .prop_flat_map(|(shape, dt, tail, declared)| {
            framed(json!({"shape": shape, "datatype": dt}), tail, declared)
        });
    let tensor = (
        prop_oneof![Just("a"), Just("b"), Just("")],
        prop::collection::vec(dim(), 0..4),
        frame_datatype(),
    )
        .prop_map(|(name, shape, dt)| json!({"name": name, "shape": shape, "datatype": dt}));
    let named = (
        prop::collection::vec(tensor, 0..4),
        tail(),
        prop::option::of(any::<u64>()),
    )
        .prop_flat_map(|(tensors, tail, declared)| {
            framed(json!({ "tensors": tensors }), tail, declared)
        });
    prop_oneof![3 => one, 3 => named, 1 => bytes()]
}

#[test]
fn torchserve_rest_frame() {
    fuzz("torchserve REST frame", tensor_frame(), |body| {
        let body = Bytes::from(body);
        let r = bounded(proportional(body.len()), || {
            adapter_torchserve::codec::decode_any(&body, "logits")
        })?;
        if let Err(e) = r {
            prop_assert_eq!(e.kind(), "protocol");
        }
        Ok(())
    });
}

#[test]
fn torchserve_grpc_protobuf() {
    use adapter_torchserve::grpc::proto::PredictionResponse;
    let wire = prop_oneof![
        4 => tensor_frame().prop_flat_map(|frame| {
            let m = PredictionResponse { prediction: frame.into() };
            mutated(m.encode_to_vec())
        }),
        1 => bytes(),
    ];
    fuzz("torchserve gRPC protobuf", wire, |wire| {
        let r = bounded(proportional(wire.len()), || {
            PredictionResponse::decode(wire.as_slice()).map(adapter_torchserve::grpc::decode)
        })?;
        if let Ok(Err(e)) = r {
            prop_assert_eq!(e.kind(), "protocol");
        }
        Ok(())
    });
}
