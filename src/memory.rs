//! How much memory a run will need, checked against what the machine (or
//! `ulimit -v`) leaves, so that a run too large is refused with one line
//! before it starts, rather than killed by the kernel or aborted by an
//! allocator half-way through.

use anyhow::{Result, bail};
use tch::Device;

use crate::config::Experiment;

const F32: u64 = 4;

/// Bytes still available to this process on `device`, if it can be read.
pub fn available(device: Device) -> Option<u64> {
    match device {
        Device::Cuda(_) => crate::device::cuda_free_memory(),
        _ => [
            proc_number("/proc/meminfo", "MemAvailable:").map(|kb| kb * 1024),
            address_space_left(),
        ]
        .into_iter()
        .flatten()
        .min(),
    }
}

/// The number that follows `key` on its line of a /proc file.
fn proc_number(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// What `ulimit -v` (RLIMIT_AS) leaves beyond the address space in use.
fn address_space_left() -> Option<u64> {
    // The soft limit, as the kernel reports it ("unlimited" when none).
    let limit = proc_number("/proc/self/limits", "Max address space")?;
    let used = proc_number("/proc/self/status", "VmSize:")? * 1024;
    Some(limit.saturating_sub(used))
}

/// The sizes memory grows with: rows, features, training rows, the widest
/// layer, Dense layers, rows per step.
fn sizes(e: &Experiment) -> (u64, u64, u64, u64, u64, u64) {
    let t = e.train_len() as u64;
    (
        e.samples as u64,
        e.features as u64,
        t,
        e.units.max(e.features) as u64,
        e.hidden_layers as u64 + 1,
        (e.batch_size as u64).min(t),
    )
}

/// Bytes one run of `e` needs beyond what libtorch itself takes: the data
/// as drawn (float64) and on the device (float32), the epoch's shuffled
/// copy and logits, one step's activations and the validation pass.
pub fn train_bytes(e: &Experiment) -> u64 {
    let (n, f, t, width, h, b) = sizes(e);
    let data = n * (f + 1) * (8 + 8 + F32);
    let epoch = t * (f + 1) * F32 + t * 8 + 6 * t * F32;
    let step = 8 * b * width * h * F32;
    let val = 4 * (n - t) * width * F32;
    data + epoch + step + val + 8 * e.parameters() as u64 * F32
}

/// Bytes one replica of a sweep needs: its share of every batched tensor,
/// including the per-replica products `[rows, in, out]` of each layer.
pub fn replica_bytes(e: &Experiment) -> u64 {
    let (n, f, t, width, h, b) = sizes(e);
    let data = 3 * n * (f + 1) * F32;
    let epoch = t * (f + 1) * F32 + t * (4 + 8) + 4 * t * F32;
    let step = 4 * b * width * width * F32 + 8 * b * width * h * F32;
    let val = 2 * (n - t) * width * width * F32;
    data + epoch + step + val + 8 * e.parameters() as u64 * F32
}

/// One seed's data as drawn, before it joins its batch.
pub fn draw_bytes(e: &Experiment) -> u64 {
    e.samples as u64 * (e.features as u64 + 1) * 8
}

pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Refuses a run needing more than `device` has left; `lower` names the
/// settings that shrink it.
pub fn check(need: u64, device: Device, lower: &str) -> Result<()> {
    // A quarter more for the allocator's slack and libtorch's own temporaries.
    let need = need + need / 4;
    if let Some(free) = available(device)
        && need > free
    {
        bail!(
            "this run needs about {} of memory on {} and {} is available; lower {lower}",
            gib(need),
            crate::device::name(device),
            gib(free)
        );
    }
    Ok(())
}
