//! Memory and CPU of a process from /proc/<pid>/status and /proc/<pid>/stat.

use serde::Serialize;

use crate::error::{Error, Result, io};

/// One reading of a process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Resident set size now, KiB (VmRSS).
    pub rss_kib: u64,
    /// Peak resident set size since the process started, KiB (VmHWM).
    pub hwm_kib: u64,
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
}

impl Sample {
    pub fn read(pid: u32, ticks_per_second: f64) -> Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(io(format!("reading /proc/{pid}/status")))?;
        let kib = |key: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| Error::Process(format!("/proc/{pid}/status has no {key}")))
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(io(format!("reading /proc/{pid}/stat")))?;
        Ok(Self {
            rss_kib: kib("VmRSS:")?,
            hwm_kib: kib("VmHWM:")?,
            cpu_seconds: cpu_ticks(&stat)
                .ok_or_else(|| Error::Process(format!("cannot parse /proc/{pid}/stat")))?
                as f64
                / ticks_per_second,
        })
    }
}

/// utime + stime (fields 14 and 15). The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, index 11 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (USER_HZ): `getconf CLK_TCK`, else Linux's 100.
pub fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_ticks_past_odd_command_names() {
        let stat = "42 (k8s (op) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1 0 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("garbage"), None);
    }
}
