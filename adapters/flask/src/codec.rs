//! The JSON bodies of TF Serving's REST API as the Flask app speaks them: `{"instances": [...]}` in,
//! `{"predictions": [...]}` out.

use std::fmt::Write;

use contract::{BackendError, DType, Tensor};
use serde::Deserialize;

/// Encodes one input tensor as `{"instances": [...]}`: one nested list per sample,
/// following the tensor's shape. Floats are written in their shortest exact form.
pub fn encode_instances(input: &Tensor) -> Result<Vec<u8>, BackendError> {
    if input.shape.is_empty() {
        return Err(BackendError::BadInput(format!(
            "tensor {} is a scalar; the predict API needs a batch dimension",
            input.name
        )));
    }
    let mut out = String::with_capacity(input.len() * 12 + 32);
    out.push_str("{\"instances\":");
    nest_tensor(&mut out, input)?;
    out.push('}');
    Ok(out.into_bytes())
}

/// Encodes the inputs of a user's model as TF Serving's columnar body,
/// `{"inputs": {"<name>": [...], ...}}`: every input by name, batch first.
pub fn encode_columnar(inputs: &[Tensor]) -> Result<Vec<u8>, BackendError> {
    let mut out = String::from("{\"inputs\":{");
    for (i, t) in inputs.iter().enumerate() {
        if t.shape.is_empty() {
            return Err(BackendError::BadInput(format!(
                "tensor {} is a scalar; the predict API needs a batch dimension",
                t.name
            )));
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(&t.name).expect("a string serialises"));
        out.push(':');
        nest_tensor(&mut out, t)?;
    }
    out.push_str("}}");
    Ok(out.into_bytes())
}

/// Decodes `{"outputs": {"<name>": [...], ...}}` into one tensor per `(name, dtype)`,
/// in that order, each shaped as its nesting.
pub fn decode_columnar(
    body: &[u8],
    outputs: &[(String, DType)],
) -> Result<Vec<Tensor>, BackendError> {
    let doc: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| BackendError::Protocol(format!("predict answer is not JSON: {e}")))?;
    let mut tensors = Vec::with_capacity(outputs.len());
    for (name, dtype) in outputs {
        let v = doc
            .get("outputs")
            .and_then(|o| o.get(name))
            .ok_or_else(|| {
                BackendError::Protocol(format!("predict answer has no output {name}"))
            })?;
        let mut shape = Vec::new();
        let mut at = v;
        while let Some(a) = at.as_array() {
            shape.push(a.len());
            match a.first() {
                Some(first) => at = first,
                None => break,
            }
        }
        let mut flat = Vec::new();
        flatten(v, &mut flat);
        if flat.len() != shape.iter().product::<usize>() {
            return Err(BackendError::Protocol(format!("output {name} is ragged")));
        }
        tensors.push(match dtype {
            DType::F32 => {
                let v: Vec<f32> = flat.iter().map(|&x| x as f32).collect();
                Tensor::from_f32(name, shape, &v)
            }
            DType::I64 => {
                let v: Vec<i64> = flat.iter().map(|&x| x as i64).collect();
                Tensor::from_i64(name, shape, &v)
            }
            DType::F16 => {
                let v: Vec<f32> = flat.iter().map(|&x| x as f32).collect();
                Tensor::from_f16(name, shape, &v)
            }
        });
    }
    Ok(tensors)
}

fn flatten(v: &serde_json::Value, out: &mut Vec<f64>) {
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        x => out.push(x.as_f64().unwrap_or(f64::NAN)),
    }
}

/// Appends `t`'s values as nested lists, following its shape.
fn nest_tensor(out: &mut String, t: &Tensor) -> Result<(), BackendError> {
    match t.dtype {
        DType::F32 => nest(out, &t.shape, &t.to_f32()?),
        DType::I64 => nest(out, &t.shape, &t.to_i64()?),
        DType::F16 => nest(out, &t.shape, &t.to_f64_lossy()),
    }
    Ok(())
}

fn nest<T: std::fmt::Display>(out: &mut String, shape: &[usize], values: &[T]) {
    out.push('[');
    match shape {
        [] => {}
        [_] => {
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{v}");
            }
        }
        [n, rest @ ..] => {
            let step = rest.iter().product::<usize>();
            for i in 0..*n {
                if i > 0 {
                    out.push(',');
                }
                nest(out, rest, &values[i * step..(i + 1) * step]);
            }
        }
    }
    out.push(']');
}

#[derive(Deserialize)]
struct Predictions {
    predictions: Vec<Vec<f32>>,
}

/// Decodes `{"predictions": [[...], ...]}` into one `[batch, classes]` f32 tensor.
pub fn decode_predictions(body: &[u8], batch: usize) -> Result<Tensor, BackendError> {
    let p: Predictions = serde_json::from_slice(body).map_err(|e| {
        BackendError::Protocol(format!("predict answer is not the expected JSON: {e}"))
    })?;
    let rows = p.predictions;
    if rows.len() != batch {
        return Err(BackendError::Protocol(format!(
            "{} predictions came back for a batch of {batch}",
            rows.len()
        )));
    }
    let classes = rows.first().map_or(0, Vec::len);
    if rows.iter().any(|r| r.len() != classes) {
        return Err(BackendError::Protocol(
            "prediction rows have different lengths".into(),
        ));
    }
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    let bytes: Vec<u8> = flat.iter().flat_map(|v| v.to_le_bytes()).collect();
    Tensor::new(
        fixtures::OUTPUT_NAME,
        DType::F32,
        vec![batch, classes],
        bytes.into(),
    )
    .map_err(|e| BackendError::Protocol(format!("predict answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_nested_instances() {
        let t = Tensor::from_f32("x", vec![2, 1, 2], &[1.0, -0.5, 0.1, 3.0]);
        let body = String::from_utf8(encode_instances(&t).unwrap()).unwrap();
        assert_eq!(body, r#"{"instances":[[[1,-0.5]],[[0.1,3]]]}"#);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["instances"][1][0][0].as_f64().unwrap() as f32, 0.1f32);
        let t = Tensor::from_i64("ids", vec![1, 3], &[7, 0, 4999]);
        let body = String::from_utf8(encode_instances(&t).unwrap()).unwrap();
        assert_eq!(body, r#"{"instances":[[7,0,4999]]}"#);
    }

    #[test]
    fn columnar_round_trip() {
        let a = Tensor::from_f32("a", vec![2, 2], &[1.0, -0.5, 0.25, 3.0]);
        let b = Tensor::from_i64("b", vec![2, 1], &[7, 8]);
        let body = String::from_utf8(encode_columnar(&[a, b]).unwrap()).unwrap();
        assert_eq!(
            body,
            r#"{"inputs":{"a":[[1,-0.5],[0.25,3]],"b":[[7],[8]]}}"#
        );
        let answer = br#"{"outputs": {"y": [[1.5, 2]], "n": [[3]]}}"#;
        let out = decode_columnar(
            answer,
            &[("y".into(), DType::F16), ("n".into(), DType::I64)],
        )
        .unwrap();
        assert_eq!(out[0].shape, vec![1, 2]);
        assert_eq!(out[0].to_f64_lossy(), vec![1.5, 2.0]);
        assert_eq!(out[1].to_i64().unwrap(), vec![3]);
    }

    #[test]
    fn decodes_predictions_exactly() {
        let x = 0.123_456_79f32;
        let body = format!(r#"{{"predictions": [[{}, 2.0], [-1e-7, 0]]}}"#, x as f64);
        let t = decode_predictions(body.as_bytes(), 2).unwrap();
        assert_eq!(t.shape, vec![2, 2]);
        assert_eq!(t.to_f32().unwrap(), vec![x, 2.0, -1e-7, 0.0]);
        let e = decode_predictions(body.as_bytes(), 3).unwrap_err();
        assert_eq!(e.kind(), "protocol");
        assert!(decode_predictions(b"{\"predictions\": [[1], [1, 2]]}", 2).is_err());
    }
}
