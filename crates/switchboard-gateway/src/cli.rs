//! The command line: `serve`, `config check`, `config example`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{self, BrokerKind, LogFormat, Overrides, Plan, Secret, Size, Sources, Span};

/// Exit status for a configuration that does not check.
const CONFIG_ERROR: u8 = 2;

/// Switchboard: a real-time WebSocket gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway. Settings: flags > SWITCHBOARD_* environment > the
    /// config file > defaults (docs/configuration.md).
    Serve(Box<ServeArgs>),
    /// Check or print configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a config file as `serve --config FILE` would (with the
    /// SWITCHBOARD_* environment applied, unless --no-env): every problem is
    /// reported with its key. Exit status 0 when it checks, 2 otherwise.
    Check {
        /// The file to check.
        file: PathBuf,
        /// Ignore SWITCHBOARD_* environment variables.
        #[arg(long)]
        no_env: bool,
    },
    /// Print a fully commented example config with every key and its default.
    Example,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The config file (TOML). Default: SWITCHBOARD_CONFIG, else none.
    #[arg(long, short = 'c')]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub(crate) listen: Option<SocketAddr>,
    /// Largest inbound message (and frame): bytes, or 64KiB, 1MiB [default: 1MiB].
    #[arg(long)]
    pub(crate) max_message_size: Option<Size>,
    /// Most frames one inbound message may be split into [default: 128].
    #[arg(long)]
    pub(crate) max_fragments: Option<usize>,
    /// Turn permessage-deflate off (it is on when the client offers it).
    #[arg(long)]
    pub(crate) no_compression: bool,
    /// Most connections open at once [default: 100000].
    #[arg(long)]
    pub(crate) max_connections: Option<usize>,
    /// Worker threads [default: one per core].
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Log format.
    #[arg(long, value_enum)]
    pub(crate) log_format: Option<LogFormat>,
    /// Log filter: info, debug, switchboard=debug,info [default: info].
    #[arg(long)]
    pub(crate) log_level: Option<String>,
    /// Broker: memory (one instance) or redis (several) [default: memory].
    #[arg(long, value_enum)]
    pub(crate) broker: Option<BrokerKind>,
    /// Redis URL for --broker redis. Prefer SWITCHBOARD_BROKER_URL when it
    /// holds a password (flags show in `ps`).
    #[arg(long)]
    pub(crate) broker_url: Option<String>,
    /// This instance's name in the cluster [default: random].
    #[arg(long)]
    pub(crate) instance_id: Option<String>,
    /// Serve wss:// with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Close clients with 1012 (restart) instead of 1001 on SIGTERM/SIGINT.
    #[arg(long)]
    pub(crate) restart_on_shutdown: bool,
    /// Apply the rules of a gateway reachable from other hosts although it
    /// listens on loopback (a reverse proxy on this host forwards to it):
    /// API key required, /metrics behind the key, no demo page.
    #[arg(long)]
    pub(crate) public: bool,
    /// How long shutdown waits for clients to drain: 10s, 500ms [default: 10s].
    #[arg(long)]
    pub(crate) shutdown_timeout: Option<Span>,
}

impl ServeArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            workers: self.workers,
            max_connections: self.max_connections,
            max_message_size: self.max_message_size,
            max_fragments: self.max_fragments,
            compression: self.no_compression.then_some(false),
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            api_key: None,
            broker: self.broker,
            broker_url: self.broker_url.clone().map(Secret::new),
            instance_id: self.instance_id.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            restart_on_shutdown: self.restart_on_shutdown.then_some(true),
            shutdown_timeout: self.shutdown_timeout,
            public: self.public.then_some(true),
            ..Overrides::default()
        }
    }
}

impl Cli {
    /// Parses the command line; `serve --help` lists the environment
    /// variables.
    pub(crate) fn parse_args() -> Self {
        let mut env_help =
            String::from("Environment variables (between the config file and the flags):\n");
        for (name, key) in config::ENV_VARS {
            env_help.push_str(&format!("  {name:<32} {key}\n"));
        }
        let command =
            Self::command().mut_subcommand("serve", |serve| serve.after_long_help(env_help));
        let matches = command.get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

pub(crate) fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Command::Config(ConfigCommand::Check { file, no_env }) => check(&file, no_env),
    }
}

fn check(file: &Path, no_env: bool) -> ExitCode {
    let sources = if no_env {
        Sources {
            file: Some(file.to_owned()),
            ..Sources::default()
        }
    } else {
        Sources::from_process(Some(file.to_owned()), Overrides::default())
    };
    let plan = config::load(&sources).and_then(|config| Plan::build(&config));
    match plan {
        Ok(plan) => {
            let env = if no_env {
                ""
            } else {
                " (with the SWITCHBOARD_* environment)"
            };
            println!("{}: ok{env}", file.display());
            let scheme = if plan.tls.is_some() { "wss" } else { "ws" };
            println!("  listen: {scheme}://{}", plan.listen);
            for endpoint in &plan.endpoints {
                match &endpoint.kind {
                    config::EndpointKind::Broadcast { room } => {
                        println!("  endpoint: {} (broadcast to room {room})", endpoint.path);
                    }
                    kind => println!("  endpoint: {} ({})", endpoint.path, kind.name()),
                }
            }
            let broker = match &plan.broker {
                config::BrokerPlan::Memory => "memory".to_owned(),
                config::BrokerPlan::Redis { url, .. } => format!("redis at {url}"),
            };
            println!("  broker: {broker}");
            println!("  {}", plan.history.summary());
            println!("  {}", plan.presence.summary());
            let api = match (plan.api.enabled, plan.api.keys.len()) {
                (false, _) => "off".to_owned(),
                (true, 0) => "on, no API key (loopback only)".to_owned(),
                (true, n) => format!("on, {n} API key(s)"),
            };
            println!("  http api: {api}");
            println!(
                "  {}",
                plan.exposure
                    .summary(plan.listen, plan.api.enabled, plan.api.keys.len())
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{}: invalid configuration", file.display());
            for line in problems.to_string().lines() {
                eprintln!("  {line}");
            }
            ExitCode::from(CONFIG_ERROR)
        }
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let sources = Sources::from_process(args.config.clone(), args.overrides());
    let plan = match config::load(&sources).and_then(|config| Plan::build(&config)) {
        Ok(plan) => plan,
        Err(problems) => {
            eprintln!("switchboard: invalid configuration, not starting:");
            for line in problems.to_string().lines() {
                eprintln!("  {line}");
            }
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    if let Err(e) = crate::logging::init(&plan.log) {
        eprintln!("switchboard: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    if args.broker_url.as_deref().is_some_and(has_password) {
        tracing::warn!(
            "--broker-url holds a password, which any user of this machine can read in the \
             process list: use SWITCHBOARD_BROKER_URL or SWITCHBOARD_BROKER_URL_FILE (or \
             broker.url_file) instead"
        );
    }
    raise_fd_limit();
    let workers = plan
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    // One worker (one core, or `server.workers = 1`): a current-thread
    // runtime does the same work without cross-thread scheduling.
    let mut runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    runtime.enable_all();
    let result = runtime
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(crate::run::run(plan)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "gateway failed");
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether a URL carries a password (`scheme://user:password@host` or
/// `scheme://:password@host`).
fn has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// Each connection is a file descriptor; the usual soft limit of 1024 is far
/// below what a gateway holds.
fn raise_fd_limit() {
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get()
        && soft < hard
    {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
}
