//! Logs: `tracing` to stderr, plain or JSON, filtered by `log.level`.
//!
//! Nothing the gateway logs carries a credential: configs are logged
//! through their redacting `Debug` forms, HTTP requests by route template
//! (no raw path, no query, no headers), broker URLs without their user
//! and password, and the framework never logs request URIs, query strings
//! or credential headers (docs/security.md, Logging).

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, LogSection};

/// Installs the subscriber: the log output, filtered by `log.level`.
/// (Metrics never read logs: refused handshakes are counted through the
/// engine's refusal hook.)
pub(crate) fn init(log: &LogSection) -> anyhow::Result<()> {
    let filter = EnvFilter::builder().parse(&log.level)?;
    let output = match log.format {
        LogFormat::Plain => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(output.with_filter(filter))
        .try_init()?;
    Ok(())
}
