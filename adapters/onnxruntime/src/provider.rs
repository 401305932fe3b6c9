//! The execution provider every session of the backend runs on (`--ort-provider`).
//!
//! The CPU provider is in every ONNX Runtime library. CUDA and TensorRT are only in a
//! GPU build (the `onnxruntime-gpu` wheel, or NVIDIA's builds), and only work on a host
//! with the CUDA (and TensorRT) libraries. A provider the loaded library does not have is
//! refused when the backend opens, in one sentence naming it and what the library has;
//! a provider that is there is registered with `error_on_failure`, so a session whose
//! provider fails to start is a load error, never a silent fall-back to the CPU.

use contract::{BackendError, Device};
use ort::ep::{ExecutionProvider, ExecutionProviderDispatch};
use serde::{Deserialize, Serialize};

use crate::NAME;

/// What only the onnxruntime backend reads. With the `clap` feature, also its flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(feature = "clap", group(id = "onnxruntime"))]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Execution provider of the onnxruntime backend: cpu, or cuda / tensorrt with a GPU
    /// build of ONNX Runtime (ORT_DYLIB_PATH to onnxruntime-gpu's libonnxruntime.so) and
    /// --device cuda:N.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "ort_provider",
            long = "ort-provider",
            value_name = "ORT_PROVIDER",
            value_enum,
            default_value_t = Provider::Cpu
        )
    )]
    pub provider: Provider,
}

/// An ONNX Runtime execution provider (`cpu`, `cuda`, `tensorrt` in flags and files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// ONNX Runtime's own CPU kernels (every build has them).
    #[default]
    Cpu,
    /// NVIDIA CUDA (a GPU build of ONNX Runtime).
    Cuda,
    /// NVIDIA TensorRT, with CUDA for what TensorRT does not take (a GPU build).
    Tensorrt,
}

/// Every provider, in the order messages list them.
pub const PROVIDERS: [Provider; 3] = [Provider::Cpu, Provider::Cuda, Provider::Tensorrt];

impl Provider {
    /// `cpu`, `cuda` or `tensorrt`, as flags and files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::Tensorrt => "tensorrt",
        }
    }

    /// ONNX Runtime's own name, such as `TensorrtExecutionProvider` (recorded in results).
    pub fn ort_name(self) -> &'static str {
        match self {
            Provider::Cpu => ort::ep::CPU::NAME,
            Provider::Cuda => ort::ep::CUDA::NAME,
            Provider::Tensorrt => ort::ep::TensorRT::NAME,
        }
    }

    /// Whether the loaded library was built with this provider (the library must be
    /// loaded first: [`crate::load_library`]).
    pub fn is_available(self) -> bool {
        let found = match self {
            Provider::Cpu => return true,
            Provider::Cuda => ort::ep::CUDA::is_available(),
            Provider::Tensorrt => ort::ep::TensorRT::is_available(),
        };
        found.unwrap_or(false)
    }

    /// What a session registers, in order: nothing for the CPU (ONNX Runtime's
    /// default); CUDA on `device`; TensorRT with CUDA after it for the nodes TensorRT
    /// does not take (ONNX Runtime's recommended order). Each fails the session when it
    /// cannot be registered.
    pub(crate) fn dispatch(self, device: usize) -> Vec<ExecutionProviderDispatch> {
        let id = i32::try_from(device).unwrap_or(i32::MAX);
        let cuda = || ort::ep::CUDA::default().with_device_id(id).build();
        let eps = match self {
            Provider::Cpu => vec![],
            Provider::Cuda => vec![cuda()],
            Provider::Tensorrt => vec![
                ort::ep::TensorRT::default().with_device_id(id).build(),
                cuda(),
            ],
        };
        eps.into_iter().map(|e| e.error_on_failure()).collect()
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The CUDA device a provider runs on, or why the provider cannot run with `device`
/// in the library at `library` (loaded).
pub(crate) fn check(
    provider: Provider,
    device: Device,
    library: &std::path::Path,
) -> Result<usize, BackendError> {
    let unavailable = |reason: String, fix: String| BackendError::Unavailable {
        backend: NAME.into(),
        reason,
        fix,
    };
    if !provider.is_available() {
        let has: Vec<&str> = PROVIDERS
            .iter()
            .filter(|p| p.is_available())
            .map(|p| p.name())
            .collect();
        return Err(unavailable(
            format!(
                "--ort-provider {provider} is not available in the ONNX Runtime library {}, which \
                 offers: {}",
                library.display(),
                has.join(", ")
            ),
            format!(
                "use --ort-provider {}, or on a GPU host set ORT_DYLIB_PATH to the \
                 libonnxruntime.so of an onnxruntime-gpu install with CUDA{}",
                has.join(" or --ort-provider "),
                if provider == Provider::Tensorrt {
                    " and TensorRT"
                } else {
                    ""
                }
            ),
        ));
    }
    match (provider, device) {
        (Provider::Cpu, Device::Cpu) => Ok(0),
        (Provider::Cpu, Device::Cuda(_)) => Err(unavailable(
            format!("--device {device} needs a GPU execution provider, and --ort-provider is cpu"),
            "give --ort-provider cuda or tensorrt (with a GPU build of ONNX Runtime), or use \
             --device cpu"
                .into(),
        )),
        (_, Device::Cuda(n)) => Ok(n),
        (_, Device::Cpu) => Err(unavailable(
            format!("--ort-provider {provider} runs on a GPU, and --device is cpu"),
            "give --device cuda:N too".into(),
        )),
    }
}
