//! GPU use through NVML (`nvml-wrapper`): utilisation, memory in use and power of every
//! visible NVIDIA GPU. NVML is loaded at run time (`libnvidia-ml.so.1`, the driver's),
//! so building needs no GPU; without one, [`Gpus::open`] says why in one line and the
//! GPU fields of the results stay `None`.

use std::sync::Arc;

use nvml_wrapper::Nvml;

use super::{GpuReading, Probe, Reading};

/// The line printed once when no GPU can be read.
pub const NO_GPU: &str = "no NVIDIA GPU visible: GPU columns omitted";

/// The machine's NVIDIA GPUs, read through NVML.
#[derive(Clone)]
pub struct Gpus {
    nvml: Arc<Nvml>,
    count: u32,
}

impl Gpus {
    /// Loads NVML and counts the GPUs; `Err` with the reason when there is no driver,
    /// no library or no GPU.
    pub fn open() -> Result<Gpus, String> {
        let nvml = Nvml::builder()
            .lib_path(std::ffi::OsStr::new("libnvidia-ml.so.1"))
            .init()
            .or_else(|_| Nvml::init())
            .map_err(|e| format!("NVML: {e}"))?;
        let count = nvml.device_count().map_err(|e| format!("NVML: {e}"))?;
        if count == 0 {
            return Err("NVML sees no GPU".into());
        }
        Ok(Gpus {
            nvml: Arc::new(nvml),
            count,
        })
    }

    /// How many GPUs are read.
    pub fn count(&self) -> u32 {
        self.count
    }
}

impl Probe for Gpus {
    fn read(&mut self) -> Reading {
        let gpus = (0..self.count)
            .filter_map(|i| {
                let d = self.nvml.device_by_index(i).ok()?;
                Some(GpuReading {
                    util_pct: d.utilization_rates().ok()?.gpu as f64,
                    memory_bytes: d.memory_info().ok()?.used,
                    power_w: d.power_usage().ok().map(|mw| mw as f64 / 1000.0),
                })
            })
            .collect();
        Reading {
            gpus,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the real NVML when the machine has one; says it was skipped otherwise.
    #[test]
    fn reads_real_gpus_when_present() {
        match Gpus::open() {
            Ok(mut g) => {
                let r = g.read();
                assert_eq!(r.gpus.len(), g.count() as usize, "{r:?}");
                assert!(r.gpus.iter().all(|x| (0.0..=100.0).contains(&x.util_pct)));
            }
            Err(why) => println!("skipped: no NVML here ({why}); the GPU probe was not run"),
        }
    }
}
