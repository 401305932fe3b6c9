//! Choosing the candle device from `--device`.

use contract::BackendError;

/// The cargo feature that builds candle with CUDA.
pub const CUDA_FEATURE: &str = "adapter-candle/cuda";

/// Checks, before any thread starts, that `device` can be used by this build.
pub fn check(device: contract::Device) -> Result<(), BackendError> {
    match device {
        contract::Device::Cpu => Ok(()),
        contract::Device::Cuda(_) if candle_core::utils::cuda_is_available() => Ok(()),
        contract::Device::Cuda(n) => Err(BackendError::Unavailable {
            backend: crate::NAME.into(),
            reason: format!("cuda:{n} was requested but this build of candle has no CUDA support"),
            fix: format!(
                "on a host with the CUDA toolkit, build with `--features {CUDA_FEATURE}` \
                 (for the harness: `cargo run --release -p harness --features {CUDA_FEATURE} -- compare`)"
            ),
        }),
    }
}

/// Opens `device` for one executor (each CUDA executor gets its own stream).
pub fn open(device: contract::Device) -> Result<candle_core::Device, BackendError> {
    check(device)?;
    match device {
        contract::Device::Cpu => Ok(candle_core::Device::Cpu),
        contract::Device::Cuda(n) => {
            candle_core::Device::new_cuda(n).map_err(|e| BackendError::Unavailable {
                backend: crate::NAME.into(),
                reason: format!("candle cannot open cuda:{n}: {}", crate::load::one_line(&e)),
                fix: "check the device number with `nvidia-smi`, or use --device cpu".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_available() {
        assert!(check(contract::Device::Cpu).is_ok());
        assert!(matches!(
            open(contract::Device::Cpu),
            Ok(candle_core::Device::Cpu)
        ));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let e = check(contract::Device::Cuda(1)).unwrap_err();
        assert_eq!(e.kind(), "unavailable");
        let text = e.to_string();
        assert!(
            text.contains("cuda:1") && text.contains("--features adapter-candle/cuda"),
            "{text}"
        );
    }
}
