//! Choosing the libtorch device from `--device`.

use contract::BackendError;

/// The libtorch device for `device`, if this process can use it.
///
/// The torch wheel in `.venv` carries CUDA, so `cuda:N` works wherever libtorch sees
/// an NVIDIA GPU N; elsewhere it is unavailable, with the reason.
pub fn resolve(device: contract::Device) -> Result<tch::Device, BackendError> {
    match device {
        contract::Device::Cpu => Ok(tch::Device::Cpu),
        contract::Device::Cuda(n) => {
            let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
            if n < count {
                Ok(tch::Device::Cuda(n))
            } else {
                Err(BackendError::Unavailable {
                    backend: crate::NAME.into(),
                    reason: format!("cuda:{n} was requested but libtorch sees {count} CUDA device(s)"),
                    fix: "use --device cpu, or run on a host with an NVIDIA GPU and driver (the torch wheel in .venv has CUDA built in)".into(),
                })
            }
        }
    }
}

/// Waits for all work queued on `device` (a no-op on the CPU), so that the harness's
/// clock stops only when the outputs are really computed.
pub fn synchronize(device: tch::Device) {
    if let tch::Device::Cuda(n) = device {
        tch::Cuda::synchronize(n as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_and_missing_gpus_say_why() {
        assert_eq!(resolve(contract::Device::Cpu).unwrap(), tch::Device::Cpu);
        let n = usize::try_from(tch::Cuda::device_count()).unwrap();
        let e = resolve(contract::Device::Cuda(n)).unwrap_err();
        assert_eq!(e.kind(), "unavailable");
        let text = e.to_string();
        assert!(
            text.contains(&format!("cuda:{n} was requested")) && text.contains("--device cpu"),
            "{text}"
        );
        synchronize(tch::Device::Cpu);
    }
}
