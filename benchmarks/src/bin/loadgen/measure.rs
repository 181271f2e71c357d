//! What the load generator reads about processes from /proc: CPU time and RSS.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// User + system CPU seconds of a process, from /proc.
pub fn cpu_seconds(pid: &str) -> f64 {
    let (user, sys) = cpu_user_sys(pid);
    user + sys
}

/// User and system CPU seconds of a process, apart, from /proc.
pub fn cpu_user_sys(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) / 100.0, ticks(12) / 100.0)
}

/// Resident set size of a process in bytes, from /proc (0 if unreadable).
pub fn rss_bytes(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU time of the server and of the load generator, and wall time, from a start.
pub struct Cpu {
    server: String,
    server0: f64,
    own0: f64,
    wall0: Instant,
}

impl Cpu {
    /// Starts counting now.
    pub fn start(server: &str) -> Cpu {
        Cpu {
            server: server.to_owned(),
            server0: cpu_seconds(server),
            own0: cpu_seconds("self"),
            wall0: Instant::now(),
        }
    }

    /// (wall, server cpu, loadgen cpu) seconds since start.
    pub fn read(&self) -> (f64, f64, f64) {
        (
            self.wall0.elapsed().as_secs_f64(),
            cpu_seconds(&self.server) - self.server0,
            cpu_seconds("self") - self.own0,
        )
    }
}

/// The highest RSS of a process seen by a background sampler (a local task reading
/// /proc every `every`), so that a peak between two explicit readings is not missed.
pub struct PeakRss {
    peak: Rc<Cell<u64>>,
    running: Rc<Cell<bool>>,
}

impl PeakRss {
    /// Starts sampling `pid` on the current `LocalSet`.
    pub fn start(pid: &str, every: Duration) -> PeakRss {
        let peak = Rc::new(Cell::new(rss_bytes(pid)));
        let running = Rc::new(Cell::new(true));
        let (p, r, pid) = (peak.clone(), running.clone(), pid.to_owned());
        tokio::task::spawn_local(async move {
            while r.get() {
                p.set(p.get().max(rss_bytes(&pid)));
                tokio::time::sleep(every).await;
            }
        });
        PeakRss { peak, running }
    }

    /// The peak so far.
    pub fn peak(&self) -> u64 {
        self.peak.get()
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.running.set(false);
    }
}

/// The value at quantile `q` (0..=1) of sorted nanosecond samples, in microseconds.
pub fn quantile_us(sorted_nanos: &[u64], q: f64) -> f64 {
    let last = sorted_nanos.len().saturating_sub(1);
    let at = ((sorted_nanos.len() as f64 * q) as usize).min(last);
    sorted_nanos.get(at).copied().unwrap_or(0) as f64 / 1000.0
}
