//! Compose device requests → a plan → edits.
//!
//! Inputs are what compose-go normalizes a service to (reference D.6):
//! `gpus:` and `deploy.resources.reservations.devices[]` as
//! [`DeviceRequest`]s, and CDI names from `devices:`. The mapping follows
//! D.7: a GPU request goes through the host's `nvidia.com/gpu` CDI spec
//! when there is one (`count: all` → `=all`, `count: N` → the first N
//! index names, `device_ids` → those names), else through driver discovery
//! ([`NvidiaHost`]); a host with neither has no GPU for the service.

use std::path::Path;

use super::cdi::{QualifiedName, Registry};
use super::nvidia::{parse_capabilities, GpuSelection, NvidiaHost};
use super::{Applied, CdiError, DeviceError, NodeStat, NvidiaError};
use crate::devices::cdi::edits::Merger;
use crate::spec::model::{DeviceRequest, Service};
use crate::spec::syntax::devices::DeviceEntry;

/// The CDI kind NVIDIA's generated specs use.
pub const NVIDIA_GPU_KIND: &str = "nvidia.com/gpu";

/// What a host offers: its CDI specs and its NVIDIA driver, if any.
#[derive(Debug)]
pub struct HostDevices {
    pub cdi: Registry,
    pub nvidia: Option<NvidiaHost>,
}

impl HostDevices {
    /// Loads `/etc/cdi` and `/var/run/cdi` and looks for the driver, all
    /// under `root`.
    pub fn discover(root: &Path, stat: NodeStat) -> Result<HostDevices, NvidiaError> {
        Ok(HostDevices {
            cdi: Registry::load_default(root),
            nvidia: NvidiaHost::discover(root, stat)?,
        })
    }

    fn has_nvidia_gpus(&self) -> bool {
        self.nvidia.as_ref().is_some_and(|n| !n.gpus.is_empty())
    }
}

/// One step of a service's device plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Fully-qualified CDI names, all defined by loaded specs.
    /// `capabilities` are those of the GPU request they stand for (empty
    /// for plain `devices:` entries and `driver: cdi`).
    Cdi {
        names: Vec<String>,
        capabilities: Vec<String>,
    },
    /// NVIDIA GPUs through driver discovery.
    Nvidia {
        selection: GpuSelection,
        capabilities: Vec<String>,
    },
}

/// A service's device requests as compose gives them: `gpus:` and device
/// reservations, and the CDI names among `devices:`.
pub fn service_requests(service: &Service) -> (Vec<DeviceRequest>, Vec<String>) {
    let mut requests = service.gpus.as_ref().map(|g| g.requests()).unwrap_or_default();
    if let Some(reservations) = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref())
    {
        requests.extend(reservations.devices.iter().cloned());
    }
    let cdi = service
        .devices
        .iter()
        .filter_map(|d| match d {
            DeviceEntry::Cdi(name) => Some(name.clone()),
            DeviceEntry::Path(_) => None,
        })
        .collect();
    (requests, cdi)
}

/// Decides how each request is met on `host`, checking that everything
/// named exists, so that a missing GPU fails at plan time naming the
/// service.
pub fn plan(
    service: &str,
    requests: &[DeviceRequest],
    cdi_devices: &[String],
    host: &HostDevices,
) -> Result<Vec<Resolved>, DeviceError> {
    let cdi_err = |source: CdiError| DeviceError::Cdi {
        service: service.to_owned(),
        source,
    };
    let nvidia_err = |source: NvidiaError| DeviceError::Nvidia {
        service: service.to_owned(),
        source,
    };
    let mut plan = Vec::new();
    for request in requests {
        match request.driver.as_deref().map(str::trim) {
            Some("cdi") => plan.push(cdi_request(service, request, host)?),
            None | Some("nvidia") | Some("") => {
                let is_gpu = request.driver.as_deref().map(str::trim) == Some("nvidia")
                    || request.capabilities.iter().any(|c| c == "gpu" || c == "nvidia");
                if !is_gpu {
                    return Err(DeviceError::UnsupportedCapabilities {
                        service: service.to_owned(),
                        capabilities: request.capabilities.join(", "),
                    });
                }
                parse_capabilities(&request.capabilities).map_err(nvidia_err)?;
                let selection = GpuSelection::from_request(request.count, &request.device_ids).map_err(nvidia_err)?;
                plan.push(gpu_request(service, selection, &request.capabilities, host)?);
            }
            Some(other) => {
                return Err(DeviceError::UnsupportedDriver {
                    service: service.to_owned(),
                    driver: other.to_owned(),
                })
            }
        }
    }
    let mut names = Vec::new();
    for name in cdi_devices {
        let qualified = QualifiedName::parse(name).map_err(cdi_err)?;
        // `devices: [nvidia.com/gpu=0]` on a host with the driver but no
        // generated spec: what the spec would have said, by discovery.
        if qualified.kind() == NVIDIA_GPU_KIND && !host.cdi.has_kind(NVIDIA_GPU_KIND) && host.has_nvidia_gpus() {
            let selection = match qualified.name.as_str() {
                "all" => GpuSelection::All,
                id => GpuSelection::Ids(vec![id.to_owned()]),
            };
            plan.push(Resolved::Nvidia {
                selection,
                capabilities: vec!["gpu".into()],
            });
            continue;
        }
        host.cdi.resolve(name).map_err(cdi_err)?;
        names.push(qualified.to_string());
    }
    if !names.is_empty() {
        plan.push(Resolved::Cdi {
            names,
            capabilities: Vec::new(),
        });
    }
    Ok(plan)
}

/// `driver: cdi`: `device_ids` are fully-qualified names; no count, no
/// options (moby `daemon/cdi.go`).
fn cdi_request(service: &str, request: &DeviceRequest, host: &HostDevices) -> Result<Resolved, DeviceError> {
    let fail = |reason: &str| DeviceError::CdiRequest {
        service: service.to_owned(),
        reason: reason.to_owned(),
    };
    if !request.options.is_empty() {
        return Err(fail("takes no options"));
    }
    if request.device_ids.is_empty() {
        return Err(fail(
            "needs device_ids, as fully-qualified CDI names (vendor.com/class=name); count is not supported",
        ));
    }
    for name in &request.device_ids {
        host.cdi.resolve(name).map_err(|source| DeviceError::Cdi {
            service: service.to_owned(),
            source,
        })?;
    }
    Ok(Resolved::Cdi {
        names: request.device_ids.clone(),
        capabilities: Vec::new(),
    })
}

fn gpu_request(
    service: &str,
    selection: GpuSelection,
    capabilities: &[String],
    host: &HostDevices,
) -> Result<Resolved, DeviceError> {
    let registry = &host.cdi;
    if !registry.has_kind(NVIDIA_GPU_KIND) {
        if host.has_nvidia_gpus() {
            return Ok(Resolved::Nvidia {
                selection,
                capabilities: capabilities.to_vec(),
            });
        }
        // A broken nvidia spec explains the missing GPU better than NoGpu.
        if registry
            .errors()
            .iter()
            .any(|b| b.kind.as_deref() == Some(NVIDIA_GPU_KIND))
        {
            if let Err(source) = registry.resolve(&format!("{NVIDIA_GPU_KIND}=all")) {
                return Err(DeviceError::Cdi {
                    service: service.to_owned(),
                    source,
                });
            }
        }
        return Err(DeviceError::NoGpu {
            service: service.to_owned(),
        });
    }
    let qualify = |name: &str| format!("{NVIDIA_GPU_KIND}={name}");
    let mut indices: Vec<(u64, String)> = registry
        .device_names(NVIDIA_GPU_KIND)
        .into_iter()
        .filter_map(|n| n.parse::<u64>().ok().map(|i| (i, n)))
        .collect();
    indices.sort();
    let names: Vec<String> = match selection {
        GpuSelection::All if registry.device_names(NVIDIA_GPU_KIND).iter().any(|n| n == "all") => vec![qualify("all")],
        GpuSelection::All => indices.iter().map(|(_, n)| qualify(n)).collect(),
        GpuSelection::Count(n) => {
            let wanted = usize::try_from(n).unwrap_or(usize::MAX);
            if wanted > indices.len() {
                return Err(DeviceError::Nvidia {
                    service: service.to_owned(),
                    source: NvidiaError::NotEnoughGpus {
                        wanted: n,
                        found: indices.len(),
                    },
                });
            }
            indices.iter().take(wanted).map(|(_, n)| qualify(n)).collect()
        }
        GpuSelection::Ids(ids) => ids.iter().map(|id| qualify(id.trim())).collect(),
    };
    if names.is_empty() {
        return Err(DeviceError::NoGpu {
            service: service.to_owned(),
        });
    }
    for name in &names {
        registry.resolve(name).map_err(|source| DeviceError::Cdi {
            service: service.to_owned(),
            source,
        })?;
    }
    Ok(Resolved::Cdi {
        names,
        capabilities: capabilities.to_vec(),
    })
}

/// The edits of a plan, merged: every CDI name in one injection (so spec
/// edits apply once), every discovery request as one GPU set, and any
/// disagreement between them an error naming both sides.
pub fn apply(service: &str, plan: &[Resolved], host: &HostDevices, stat: NodeStat) -> Result<Applied, DeviceError> {
    let cdi_err = |source: CdiError| DeviceError::Cdi {
        service: service.to_owned(),
        source,
    };
    let nvidia_err = |source: NvidiaError| DeviceError::Nvidia {
        service: service.to_owned(),
        source,
    };
    let mut names: Vec<String> = Vec::new();
    let mut gpu_caps: Vec<String> = Vec::new();
    let mut selections: Vec<&GpuSelection> = Vec::new();
    for step in plan {
        match step {
            Resolved::Cdi { names: n, capabilities } => {
                names.extend(n.iter().cloned());
                gpu_caps.extend(capabilities.iter().cloned());
            }
            Resolved::Nvidia {
                selection,
                capabilities,
            } => {
                selections.push(selection);
                gpu_caps.extend(capabilities.iter().cloned());
            }
        }
    }
    let mut merger = Merger::new();
    if !names.is_empty() {
        merger
            .add("CDI devices", host.cdi.apply(&names, stat).map_err(cdi_err)?)
            .map_err(cdi_err)?;
    }
    if let Some(selection) = union(&selections) {
        let nvidia = host.nvidia.as_ref().ok_or_else(|| DeviceError::NoGpu {
            service: service.to_owned(),
        })?;
        let edits = nvidia.edits(&selection, &gpu_caps).map_err(nvidia_err)?;
        merger.add("NVIDIA driver discovery", edits).map_err(cdi_err)?;
    } else if !gpu_caps.is_empty() {
        // Informational under CDI (the spec's mounts decide the libraries),
        // but images and tools read it.
        let (_, value) = parse_capabilities(&gpu_caps).map_err(nvidia_err)?;
        let env = Applied {
            env: vec![format!("NVIDIA_DRIVER_CAPABILITIES={value}")],
            ..Applied::default()
        };
        merger.add("GPU request capabilities", env).map_err(cdi_err)?;
    }
    Ok(merger.finish())
}

/// Several discovery requests as one: any `all` wins; counts take the
/// largest; ids and counts together become the union of ids.
fn union(selections: &[&GpuSelection]) -> Option<GpuSelection> {
    let (first, rest) = selections.split_first()?;
    if rest.is_empty() {
        return Some((*first).clone());
    }
    if selections.iter().any(|s| **s == GpuSelection::All) {
        return Some(GpuSelection::All);
    }
    let max_count = selections
        .iter()
        .filter_map(|s| match s {
            GpuSelection::Count(n) => Some(*n),
            _ => None,
        })
        .max();
    let mut ids: Vec<String> = Vec::new();
    for s in selections {
        if let GpuSelection::Ids(list) = s {
            ids.extend(list.iter().cloned());
        }
    }
    match (max_count, ids.is_empty()) {
        (Some(n), true) => Some(GpuSelection::Count(n)),
        (count, _) => {
            ids.extend((0..count.unwrap_or(0)).map(|i| i.to_string()));
            let mut seen = std::collections::BTreeSet::new();
            ids.retain(|id| seen.insert(id.clone()));
            Some(GpuSelection::Ids(ids))
        }
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
