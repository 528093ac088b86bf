//! Latency histograms and readings of the server process from `/proc`.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram in nanoseconds (1 ns .. 60 s, 3 significant digits).
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Latency(Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"))
    }

    /// Records one value in nanoseconds (clamped to the bounds).
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        self.0.saturating_record(ns.max(1));
    }

    /// Records a duration.
    #[inline]
    pub fn record(&mut self, d: Duration) {
        self.record_ns(d.as_nanos().min(u128::from(u64::MAX)) as u64);
    }

    /// Adds another histogram.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so this cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Percentiles in microseconds.
    pub fn summary(&self) -> LatencySummary {
        let us = |ns: u64| ns as f64 / 1000.0;
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.0.len(),
            mean_us: self.0.mean() / 1000.0,
            p50_us: us(self.0.value_at_quantile(0.50)),
            p90_us: us(self.0.value_at_quantile(0.90)),
            p99_us: us(self.0.value_at_quantile(0.99)),
            p999_us: us(self.0.value_at_quantile(0.999)),
            max_us: us(self.0.max()),
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Maximum.
    pub max_us: f64,
}

impl LatencySummary {
    /// One-line human form.
    pub fn human(&self) -> String {
        if self.count == 0 {
            return "no samples".to_owned();
        }
        format!(
            "p50 {} | p90 {} | p99 {} | p99.9 {} | max {} (n={})",
            fmt_us(self.p50_us),
            fmt_us(self.p90_us),
            fmt_us(self.p99_us),
            fmt_us(self.p999_us),
            fmt_us(self.max_us),
            self.count
        )
    }
}

/// Formats microseconds with a sensible unit.
pub fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

/// Formats a rate with thousands separators.
pub fn fmt_rate(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Ticks per second of `/proc/<pid>/stat` times.
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&v: &u64| v > 0)
        .unwrap_or(100)
}

/// utime + stime of a process (all threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> std::io::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_cpu(&s).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "unparsable /proc/<pid>/stat",
        )
    })
}

/// Parses utime + stime out of a `/proc/<pid>/stat` line.
pub fn parse_stat_cpu(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses; fields after the last ')'
    // start with field 3 (state). utime is field 14, stime field 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A field of `/proc/<pid>/status` in KiB (e.g. `VmRSS`, `RssAnon`).
pub fn status_kib(pid: u32, field: &str) -> std::io::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_kib_field(&s, field).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no {field} in /proc/{pid}/status"),
        )
    })
}

/// A `Name:   123 kB` field of `/proc/meminfo` in KiB.
pub fn meminfo_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_kib_field(&s, field)
}

/// Finds `field:` at the start of a line and parses its value in kB.
pub fn parse_kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Server CPU over a measurement window, sampled by the generator.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerCpu {
    /// utime + stime spent by the server(s) in the window, seconds.
    pub cpu_seconds: f64,
    /// Wall time of the window, seconds.
    pub wall_seconds: f64,
    /// cpu_seconds / wall_seconds (1.0 = one core fully busy).
    pub utilisation: f64,
}

/// Samples server CPU at two points in time.
#[derive(Debug, Clone)]
pub struct CpuSampler {
    pids: Vec<u32>,
    start_ticks: u64,
    start: std::time::Instant,
    ticks_per_sec: u64,
}

impl CpuSampler {
    /// Starts sampling the given processes (none: returns `None`).
    pub fn start(pids: &[u32]) -> Option<CpuSampler> {
        if pids.is_empty() {
            return None;
        }
        let mut total = 0;
        for &p in pids {
            total += cpu_ticks(p).ok()?;
        }
        Some(CpuSampler {
            pids: pids.to_vec(),
            start_ticks: total,
            start: std::time::Instant::now(),
            ticks_per_sec: clock_ticks(),
        })
    }

    /// CPU used since `start`.
    pub fn finish(&self) -> Option<ServerCpu> {
        let mut total = 0;
        for &p in &self.pids {
            total += cpu_ticks(p).ok()?;
        }
        let wall = self.start.elapsed().as_secs_f64();
        let cpu = total.saturating_sub(self.start_ticks) as f64 / self.ticks_per_sec as f64;
        Some(ServerCpu {
            cpu_seconds: cpu,
            wall_seconds: wall,
            utilisation: if wall > 0.0 { cpu / wall } else { 0.0 },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing() {
        let line = "1234 (my (odd) srv) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 100 18446744073709551615";
        assert_eq!(parse_stat_cpu(line), Some(325));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn status_parsing() {
        let s = "Name:\tx\nVmPeak:\t  1000 kB\nVmRSS:\t    5120 kB\nRssAnon:\t  4096 kB\n";
        assert_eq!(parse_kib_field(s, "VmRSS"), Some(5120));
        assert_eq!(parse_kib_field(s, "RssAnon"), Some(4096));
        assert_eq!(parse_kib_field(s, "VmSwap"), None);
    }

    #[test]
    fn own_process_readable() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        assert!(status_kib(pid, "VmRSS").unwrap() > 0);
    }

    #[test]
    fn histogram_summary() {
        let mut h = Latency::new();
        for i in 1..=1000u64 {
            h.record_ns(i * 1000);
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_us - 500.0).abs() < 2.0, "{}", s.p50_us);
        assert!((s.p99_us - 990.0).abs() < 2.0, "{}", s.p99_us);
        assert_eq!(fmt_rate(1234567.4), "1,234,567");
        assert_eq!(fmt_rate(12.0), "12");
    }
}
