//! `presence-kill`: the time from SIGKILL of a gateway to the last leave event its
//! connections cause on another gateway (docs/protocol.md "Presence", "Crashes";
//! docs/scaling.md "Leases and dead instances").
//!
//! Two gateways share one Redis. A watcher subscribes on the survivor with `join_leave`; N
//! anonymous clients subscribe (with `join_leave`) on the victim, and the watcher's N join
//! events name their connections. Then the generator sends SIGKILL to `--kill-pid` (a process
//! the caller started: bench/run passes the victim's PID) and times the watcher's leave events
//! for those connections: first and last. Anonymous members leave at once when the instance
//! is declared dead (no grace), so the last leave measures the lease bound.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::presence::ProtoClient;
use crate::target::Target;

/// `presence-kill` settings.
#[derive(Debug, Clone)]
pub struct KillConfig {
    /// The victim's structured endpoint.
    pub victim: Target,
    /// The survivor's structured endpoint.
    pub survivor: Target,
    /// The victim's PID (SIGKILL is sent to it).
    pub kill_pid: u32,
    /// Clients on the victim.
    pub clients: usize,
    /// The channel (with presence and join/leave events).
    pub channel: String,
    /// Longest wait for the joins, and for the leaves after the kill.
    pub timeout: Duration,
    /// The gateways' `lease_ttl` (for the report only).
    pub lease_ttl: Duration,
}

/// `presence-kill` result.
#[derive(Debug, Clone, Serialize)]
pub struct KillReport {
    /// Always `"presence-kill"`.
    pub scenario: &'static str,
    /// Victim endpoint.
    pub victim: String,
    /// Survivor endpoint.
    pub survivor: String,
    /// Clients on the victim.
    pub clients: usize,
    /// Channel.
    pub channel: String,
    /// The configured lease.
    pub lease_ttl_s: f64,
    /// Leaves the watcher got for the victim's connections.
    pub leaves: usize,
    /// SIGKILL → first leave, seconds.
    pub kill_to_first_leave_s: Option<f64>,
    /// SIGKILL → last leave, seconds (`None` if not all arrived within the timeout).
    pub kill_to_last_leave_s: Option<f64>,
    /// Target: under 10 s.
    pub target_met: bool,
}

impl KillReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let f = |v: Option<f64>| v.map_or("never".to_owned(), |s| format!("{s:.2} s"));
        format!(
            "presence-kill victim {} → watcher on {} — {} clients on {}, lease_ttl {:.0} s\n  leaves received {}/{}; SIGKILL → first leave {}, → last leave {} (target < 10 s: {})\n",
            self.victim,
            self.survivor,
            self.clients,
            self.channel,
            self.lease_ttl_s,
            self.leaves,
            self.clients,
            f(self.kill_to_first_leave_s),
            f(self.kill_to_last_leave_s),
            if self.target_met { "met" } else { "NOT met" },
        )
    }
}

/// The `(event, connection)` of a join or leave `EVENT` on `channel`.
fn presence_event<'a>(v: &'a Value, channel: &str) -> Option<(&'a str, &'a str)> {
    let p = &v["payload"];
    if v["type"] != "EVENT" || p["channel"] != channel {
        return None;
    }
    Some((p["event"].as_str()?, p["data"]["connection"].as_str()?))
}

/// Runs `presence-kill`.
pub async fn run(cfg: KillConfig) -> anyhow::Result<KillReport> {
    let mut watcher = ProtoClient::connect(&cfg.survivor, Duration::from_secs(5)).await?;
    watcher.subscribe(&cfg.channel, true).await?;
    let mut clients = Vec::with_capacity(cfg.clients);
    for _ in 0..cfg.clients {
        let mut c = ProtoClient::connect(&cfg.victim, Duration::from_secs(5)).await?;
        c.subscribe(&cfg.channel, true).await?;
        clients.push(c);
    }
    let mut victims = HashSet::new();
    tokio::time::timeout(cfg.timeout, async {
        while victims.len() < cfg.clients {
            let v = watcher.next_json().await?;
            if let Some(("switchboard.join", conn)) = presence_event(&v, &cfg.channel) {
                victims.insert(conn.to_owned());
            }
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "the watcher saw {} of {} joins within {:?}",
            victims.len(),
            cfg.clients,
            cfg.timeout
        )
    })??;
    // Let the victim renew its lease at least once with everyone in place.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(cfg.kill_pid.to_string())
        .status()?;
    anyhow::ensure!(status.success(), "kill -KILL {} failed", cfg.kill_pid);
    drop(clients);
    let mut left = HashSet::new();
    let mut first = None;
    let mut last = None;
    let _ = tokio::time::timeout(cfg.timeout, async {
        while left.len() < victims.len() {
            let v = watcher.next_json().await?;
            if let Some(("switchboard.leave", conn)) = presence_event(&v, &cfg.channel)
                && victims.contains(conn)
                && left.insert(conn.to_owned())
            {
                let t = killed.elapsed().as_secs_f64();
                first.get_or_insert(t);
                if left.len() == victims.len() {
                    last = Some(t);
                }
            }
        }
        anyhow::Ok(())
    })
    .await;
    watcher.conn.abort();
    Ok(KillReport {
        scenario: "presence-kill",
        victim: cfg.victim.url(),
        survivor: cfg.survivor.url(),
        clients: cfg.clients,
        channel: cfg.channel.clone(),
        lease_ttl_s: cfg.lease_ttl.as_secs_f64(),
        leaves: left.len(),
        kill_to_first_leave_s: first,
        kill_to_last_leave_s: last,
        target_met: last.is_some_and(|s| s < 10.0),
    })
}
