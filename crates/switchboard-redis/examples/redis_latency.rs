//! Publish-to-delivery latency across two instances through Redis.
//!
//! Instance A publishes to a room at a fixed rate; a WebSocket client of
//! instance B (over loopback TCP) receives each message. Latency runs from
//! the call to `Cluster::publish` on A to the moment the client decoded the
//! message: A → Redis PUBLISH → B's subscriber → B's hub → TCP → the
//! client. A second line measures from the moment each message was
//! *scheduled* instead, so that a publisher that fell behind counts against
//! itself (it includes tokio's 1 ms timer granularity). Everything runs in this one process, plus a private
//! `redis-server` on a free port (stopped by PID at the end) unless `--url`
//! is given.
//!
//! ```text
//! cargo run --release -p switchboard-redis --example redis_latency -- [--rates 1000,5000] [--seconds 5] [--url redis://127.0.0.1:PORT]
//! ```
//!
//! Bounded: each rate runs a 0.5 s warm-up plus `--seconds`, then waits at
//! most 2 s for stragglers (counted as lost).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use switchboard::broker::{Payload, Target};
use switchboard::testing::broker::TestNode;
use switchboard::ws::Message;
use switchboard_redis::{RedisBroker, RedisConfig};

const WARMUP: Duration = Duration::from_millis(500);

/// A private `redis-server`, killed by PID on drop.
struct PrivateRedis(Child, u16);

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> anyhow::Result<PrivateRedis> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("redis-server not on PATH (or pass --url)")?;
    let redis = PrivateRedis(child, port);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("redis-server did not listen on {port}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(redis)
}

struct Args {
    rates: Vec<u64>,
    seconds: u64,
    url: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        rates: vec![1000, 5000],
        seconds: 5,
        url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rates" => {
                args.rates = value.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "--seconds" => args.seconds = value.parse()?,
            "--url" => args.url = Some(value),
            other => bail!("unknown flag {other}"),
        }
    }
    if args.seconds == 0
        || args.seconds > 60
        || args.rates.iter().any(|r| !(1..=50_000).contains(r))
    {
        bail!("--seconds must be 1-60 and each rate 1-50000");
    }
    Ok(args)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn nanos_since(start: Instant) -> u64 {
    u64::try_from(Instant::now().saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

async fn run_rate(url: &str, rate: u64, seconds: u64) -> anyhow::Result<()> {
    let config = RedisConfig::new(url).prefix(format!("lat{rate}"));
    let a = TestNode::start(RedisBroker::new(config.clone())?).await;
    let b = TestNode::start(RedisBroker::new(config)?).await;
    let mut client = b.connect(&["lat"], None).await;

    let total = rate * (WARMUP.as_millis() as u64 + seconds * 1000) / 1000;
    let warmup_count = rate * WARMUP.as_millis() as u64 / 1000;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now() + Duration::from_millis(50);

    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let publisher = {
        let cluster = a.cluster.clone();
        let sent = Arc::clone(&sent);
        tokio::spawn(async move {
            let failures = Arc::new(AtomicU64::new(0));
            let mut pending = Vec::new();
            for seq in 0..total {
                let due = start + interval.mul_f64(seq as f64);
                tokio::time::sleep_until(due.into()).await;
                let cluster = cluster.clone();
                let failures = Arc::clone(&failures);
                let sent = Arc::clone(&sent);
                // Publishes overlap (the Redis connection pipelines them) so a
                // slow reply does not delay the next message's schedule.
                pending.push(tokio::spawn(async move {
                    sent[seq as usize].store(nanos_since(start), Ordering::Relaxed);
                    if cluster
                        .publish(Target::room("lat"), Payload::text(seq.to_string()))
                        .await
                        .is_err()
                    {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for task in pending {
                let _ = task.await;
            }
            failures.load(Ordering::Relaxed)
        })
    };

    let mut arrivals = Vec::with_capacity(total as usize);
    let mut received = 0u64;
    let deadline = start + WARMUP + Duration::from_secs(seconds) + Duration::from_secs(2);
    while received < total {
        let wait = deadline.saturating_duration_since(Instant::now());
        let message = match tokio::time::timeout(wait, client.socket.recv()).await {
            Ok(Ok(Message::Text(text))) => text,
            Ok(other) => bail!("unexpected: {other:?}"),
            Err(_) => break,
        };
        let seq: u64 = message.as_str().parse()?;
        arrivals.push((seq, nanos_since(start)));
        received += 1;
    }
    let failures = publisher.await?;
    let mut from_call = Vec::with_capacity(arrivals.len());
    let mut from_schedule = Vec::with_capacity(arrivals.len());
    for (seq, arrived) in arrivals.into_iter().filter(|(seq, _)| *seq >= warmup_count) {
        let called = sent[seq as usize].load(Ordering::Relaxed);
        from_call.push(Duration::from_nanos(arrived.saturating_sub(called)));
        let due = interval.mul_f64(seq as f64);
        from_schedule.push(Duration::from_nanos(arrived).saturating_sub(due));
    }
    if from_call.is_empty() {
        bail!("nothing measured at {rate}/s");
    }
    println!(
        "rate {rate:>5}/s  measured {:>6}  lost {}  publish errors {}",
        from_call.len(),
        total - received,
        failures
    );
    for (what, mut latencies) in [
        ("publish call -> client", from_call),
        ("schedule     -> client", from_schedule),
    ] {
        latencies.sort();
        println!(
            "    {what}: p50 {} ms  p90 {} ms  p99 {} ms  p99.9 {} ms  max {} ms",
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 90.0)),
            ms(percentile(&latencies, 99.0)),
            ms(percentile(&latencies, 99.9)),
            ms(*latencies.last().unwrap()),
        );
    }
    a.stop().await;
    b.stop().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let (_redis, url) = match &args.url {
        Some(url) => (None, url.clone()),
        None => {
            let redis = start_redis()?;
            let url = format!("redis://127.0.0.1:{}", redis.1);
            (Some(redis), url)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "publish-to-delivery latency, instance A -> Redis -> instance B -> WebSocket client; {} s per rate after a {} ms warm-up",
        args.seconds,
        WARMUP.as_millis()
    );
    for rate in &args.rates {
        runtime.block_on(run_rate(&url, *rate, args.seconds))?;
    }
    Ok(())
}
