//! Pieces shared by the scenarios.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use futures_util::StreamExt as _;
use serde::Serialize;

use crate::target::Target;
use crate::ws::{ConnectError, ConnectOptions, WsConn};

/// How the connect phase went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectPhase {
    /// Connections attempted.
    pub attempted: usize,
    /// Connections upgraded.
    pub established: usize,
    /// Attempts that failed.
    pub failed: u64,
    /// HTTP status counts of refused upgrades.
    pub refused_status: BTreeMap<u16, u64>,
    /// Connections on which permessage-deflate was agreed (only offered with `--deflate`).
    pub deflate_negotiated: usize,
    /// Wall time of the phase, seconds.
    pub seconds: f64,
    /// The first few error messages.
    pub first_errors: Vec<String>,
}

/// Opens `n` connections, `concurrency` at a time. Connection `i` goes to
/// `targets[i % targets.len()]`, from `source_ips[i % len]` if given. Returns the connections
/// that succeeded, each with the index of its target, in order of `i`.
pub async fn connect_many(
    targets: &[Target],
    n: usize,
    opts: &ConnectOptions,
    concurrency: usize,
    source_ips: Option<&[IpAddr]>,
) -> (Vec<(usize, WsConn)>, ConnectPhase) {
    let t0 = Instant::now();
    let mut results: Vec<(usize, usize, Result<WsConn, ConnectError>)> =
        futures_util::stream::iter(0..n)
            .map(|i| {
                let ti = i % targets.len();
                let mut o = opts.clone();
                if let Some(ips) = source_ips.filter(|s| !s.is_empty()) {
                    o.source_ip = Some(ips[i % ips.len()]);
                }
                let target = &targets[ti];
                async move { (i, ti, WsConn::connect(target, &o).await) }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    results.sort_by_key(|(i, _, _)| *i);
    let mut phase = ConnectPhase {
        attempted: n,
        ..ConnectPhase::default()
    };
    let mut conns = Vec::with_capacity(n);
    for (_, ti, r) in results {
        match r {
            Ok(c) => conns.push((ti, c)),
            Err(e) => {
                phase.failed += 1;
                if let ConnectError::Status(s) = e {
                    *phase.refused_status.entry(s).or_default() += 1;
                }
                if phase.first_errors.len() < 5 {
                    phase.first_errors.push(e.to_string());
                }
            }
        }
    }
    phase.established = conns.len();
    phase.deflate_negotiated = conns.iter().filter(|(_, c)| c.deflate.is_some()).count();
    phase.seconds = t0.elapsed().as_secs_f64();
    (conns, phase)
}

/// Source addresses `127.0.0.2 ..= 127.0.0.(1 + count)`.
pub fn source_ips(count: usize) -> Vec<IpAddr> {
    (0..count.min(250))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ip_spread() {
        let ips = source_ips(3);
        assert_eq!(
            ips,
            vec![
                "127.0.0.2".parse::<IpAddr>().unwrap(),
                "127.0.0.3".parse().unwrap(),
                "127.0.0.4".parse().unwrap()
            ]
        );
        assert_eq!(source_ips(1000).len(), 250);
    }
}
