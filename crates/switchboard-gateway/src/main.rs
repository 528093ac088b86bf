//! `switchboard`: the gateway binary.
//!
//! # Layout
//! - `cli`: the commands (`serve`, `config check`, `config example`).
//! - `config`: the TOML file, environment and flags, validated into a plan.
//! - `run`: the hub, the broker, the app, the listener, the shutdown.
//! - `endpoints`: the WebSocket endpoints (`echo`, `broadcast`, structured).
//! - `http`: the demo page, health, metrics and the `/api/v1` JSON API.
//! - `message`: the structured messages the API publishes.
//! - `proxy`: the backend proxy (connect, refresh, subscribe, rpc,
//!   disconnect and unsubscribe notifications), docs/proxy.md.
//! - `metrics`, `logging`, `shutdown`, `tls`, `state`: one concern each.

// No `unwrap` outside tests: a failure says what went wrong (`expect`)
// or is handled.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod cli;
mod config;
mod endpoints;
mod http;
mod logging;
mod message;
mod metrics;
mod proxy;
mod run;
mod shutdown;
mod state;
mod tls;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run(cli::Cli::parse_args())
}
