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
    match input.dtype {
        DType::F32 => nest(&mut out, &input.shape, &input.to_f32()?),
        DType::I64 => nest(&mut out, &input.shape, &input.to_i64()?),
    }
    out.push('}');
    Ok(out.into_bytes())
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
