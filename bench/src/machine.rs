//! The machine the figures were measured on: CPU model (from `/proc/cpuinfo`), cores.

use serde::Serialize;

/// CPU model, logical cores, OS and memory.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// `model name` from `/proc/cpuinfo` (or "unknown").
    pub(crate) cpu_model: String,
    /// Logical cores available to this process.
    pub(crate) cores: usize,
    /// Total memory in MiB from `/proc/meminfo` (0 if unknown).
    pub(crate) memory_mib: u64,
    /// `std::env::consts::OS`/`ARCH`.
    pub(crate) os: String,
}

impl Machine {
    /// Reads the machine description.
    pub(crate) fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .map_or(0, |kib| kib / 1024);
        Self {
            cpu_model,
            cores,
            memory_mib,
            os: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// Peak resident set size (`VmHWM`) of process `pid` in KiB, if readable.
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// CPU time (user + system, all threads) process `pid` has used so far, in seconds, if
/// readable: fields 14 and 15 of `/proc/PID/stat`, in clock ticks.
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it never do.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / clock_ticks_per_sec())
}

/// `getconf CLK_TCK` (100 on every Linux this bench has met, the fallback).
fn clock_ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}
