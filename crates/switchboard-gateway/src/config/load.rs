//! Where the configuration comes from, in increasing precedence: the
//! defaults, the TOML file, `SWITCHBOARD_*` environment variables, flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::plan::Problems;
use super::units::{Secret, Size, Span};
use super::{BrokerKind, Config, LogFormat, TlsSection};

/// Values that the environment and the command line can set. Each one
/// replaces the file's value (flags replace the environment's).
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) workers: Option<usize>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) max_message_size: Option<Size>,
    pub(crate) max_fragments: Option<usize>,
    pub(crate) compression: Option<bool>,
    pub(crate) log_format: Option<LogFormat>,
    pub(crate) log_level: Option<String>,
    pub(crate) api_key: Option<Secret>,
    pub(crate) broker: Option<BrokerKind>,
    pub(crate) broker_url: Option<Secret>,
    pub(crate) instance_id: Option<String>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) restart_on_shutdown: Option<bool>,
    pub(crate) shutdown_timeout: Option<Span>,
    pub(crate) public: Option<bool>,
    pub(crate) allowed_hosts: Option<Vec<String>>,
    pub(crate) api_key_file: Option<PathBuf>,
    pub(crate) broker_url_file: Option<PathBuf>,
}

/// Every environment variable the gateway reads, with the key it sets
/// (`docs/configuration.md` has the same table).
pub(crate) const ENV_VARS: &[(&str, &str)] = &[
    ("SWITCHBOARD_CONFIG", "the config file (like --config)"),
    ("SWITCHBOARD_LISTEN", "server.listen"),
    ("SWITCHBOARD_WORKERS", "server.workers"),
    ("SWITCHBOARD_MAX_CONNECTIONS", "server.max_connections"),
    ("SWITCHBOARD_SHUTDOWN_TIMEOUT", "server.shutdown_timeout"),
    (
        "SWITCHBOARD_RESTART_ON_SHUTDOWN",
        "server.restart_on_shutdown",
    ),
    ("SWITCHBOARD_MAX_MESSAGE_SIZE", "limits.max_message_size"),
    ("SWITCHBOARD_MAX_FRAGMENTS", "limits.max_fragments"),
    ("SWITCHBOARD_COMPRESSION", "compression.enabled"),
    ("SWITCHBOARD_LOG_FORMAT", "log.format"),
    (
        "SWITCHBOARD_LOG_LEVEL",
        "log.level (RUST_LOG too, below it)",
    ),
    (
        "SWITCHBOARD_API_KEY",
        "api.keys (replaces the list with one key)",
    ),
    (
        "SWITCHBOARD_API_KEY_FILE",
        "api.keys_file (a file with keys, one per line)",
    ),
    ("SWITCHBOARD_PUBLIC", "server.public"),
    (
        "SWITCHBOARD_ALLOWED_HOSTS",
        "http.allowed_hosts (comma-separated)",
    ),
    ("SWITCHBOARD_BROKER", "broker.type"),
    ("SWITCHBOARD_BROKER_URL", "broker.url"),
    (
        "SWITCHBOARD_BROKER_URL_FILE",
        "broker.url_file (a file holding the URL)",
    ),
    ("SWITCHBOARD_INSTANCE_ID", "broker.instance_id"),
    ("SWITCHBOARD_TLS_CERT", "tls.cert"),
    ("SWITCHBOARD_TLS_KEY", "tls.key"),
];

/// The inputs of one load: the file, a snapshot of the environment, the flags.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    pub(crate) file: Option<PathBuf>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) flags: Overrides,
}

impl Sources {
    /// The process's environment, with `file` from `--config` (else `SWITCHBOARD_CONFIG`).
    pub(crate) fn from_process(file: Option<PathBuf>, flags: Overrides) -> Self {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("SWITCHBOARD_") || k == "RUST_LOG")
            .collect();
        Self { file, env, flags }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The config file to read: `--config`, else `SWITCHBOARD_CONFIG`.
    pub(crate) fn config_file(&self) -> Option<PathBuf> {
        self.file
            .clone()
            .or_else(|| self.var("SWITCHBOARD_CONFIG").map(PathBuf::from))
    }
}

/// Reads the file (if any), then applies the environment and the flags.
/// Values are parsed here; whether they make sense together is for
/// [`super::Plan::build`].
pub(crate) fn load(sources: &Sources) -> Result<Config, Problems> {
    let mut config = match sources.config_file() {
        Some(path) => parse_file(&path)?,
        None => Config::default(),
    };
    let env = env_overrides(sources)?;
    apply(&mut config, env, Origin::Env)?;
    apply(&mut config, sources.flags.clone(), Origin::Flags)?;
    Ok(config)
}

/// Parses a config file; errors name the file, the position and the key.
pub(crate) fn parse_file(path: &Path) -> Result<Config, Problems> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problems::one(path.display().to_string(), format!("cannot read: {e}")))?;
    parse_str(&text)
        .map_err(|(key, message)| Problems::one(format!("{}: {key}", path.display()), message))
}

/// Parses config text; an error is `(where, what)`: `where` is the key path
/// and the line, `what` says what is wrong.
pub(crate) fn parse_str(text: &str) -> Result<Config, (String, String)> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        let place = position(text, e.span());
        (place, e.message().to_owned())
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let place = position(text, inner.span());
        let key = if key == "." { String::new() } else { key };
        let place = match (key.is_empty(), place.is_empty()) {
            (true, _) => place,
            (false, true) => key,
            (false, false) => format!("{key} ({place})"),
        };
        (place, inner.message().to_owned())
    })
}

fn position(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}")
}

#[derive(Debug, Clone, Copy)]
enum Origin {
    Env,
    Flags,
}

fn env_overrides(sources: &Sources) -> Result<Overrides, Problems> {
    let mut problems = Problems::default();
    let get = |name: &str| -> Option<String> { sources.var(name).map(str::to_owned) };
    let mut out = Overrides::default();
    macro_rules! parsed {
        ($name:literal, $parse:expr) => {
            match get($name) {
                Some(raw) => match $parse(raw.as_str()) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        problems.push($name, e);
                        None
                    }
                },
                None => None,
            }
        };
    }
    out.listen = parsed!("SWITCHBOARD_LISTEN", |s: &str| s
        .parse::<SocketAddr>()
        .map_err(|_| format!(
            "invalid address {s:?}: use IP:PORT, such as 0.0.0.0:8080"
        )));
    out.workers = parsed!("SWITCHBOARD_WORKERS", number);
    out.max_connections = parsed!("SWITCHBOARD_MAX_CONNECTIONS", number);
    out.shutdown_timeout = parsed!("SWITCHBOARD_SHUTDOWN_TIMEOUT", Span::from_str);
    out.restart_on_shutdown = parsed!("SWITCHBOARD_RESTART_ON_SHUTDOWN", boolean);
    out.max_message_size = parsed!("SWITCHBOARD_MAX_MESSAGE_SIZE", Size::from_str);
    out.max_fragments = parsed!("SWITCHBOARD_MAX_FRAGMENTS", number);
    out.compression = parsed!("SWITCHBOARD_COMPRESSION", boolean);
    out.log_format = parsed!("SWITCHBOARD_LOG_FORMAT", |s: &str| match s {
        "plain" => Ok(LogFormat::Plain),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("unknown log format {s:?}: use plain or json")),
    });
    out.log_level = get("SWITCHBOARD_LOG_LEVEL").or_else(|| get("RUST_LOG"));
    out.api_key = get("SWITCHBOARD_API_KEY").map(Secret::new);
    out.broker = parsed!("SWITCHBOARD_BROKER", |s: &str| match s {
        "memory" => Ok(BrokerKind::Memory),
        "redis" => Ok(BrokerKind::Redis),
        _ => Err(format!("unknown broker {s:?}: use memory or redis")),
    });
    out.broker_url = get("SWITCHBOARD_BROKER_URL").map(Secret::new);
    out.instance_id = get("SWITCHBOARD_INSTANCE_ID");
    out.public = parsed!("SWITCHBOARD_PUBLIC", boolean);
    out.allowed_hosts = get("SWITCHBOARD_ALLOWED_HOSTS").map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect()
    });
    out.api_key_file = get("SWITCHBOARD_API_KEY_FILE").map(PathBuf::from);
    out.broker_url_file = get("SWITCHBOARD_BROKER_URL_FILE").map(PathBuf::from);
    out.tls_cert = get("SWITCHBOARD_TLS_CERT").map(PathBuf::from);
    out.tls_key = get("SWITCHBOARD_TLS_KEY").map(PathBuf::from);
    problems.into_result(out)
}

fn number(s: &str) -> Result<usize, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("invalid number {s:?}: use a whole number"))
}

fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("invalid boolean {s:?}: use true or false")),
    }
}

fn apply(config: &mut Config, o: Overrides, origin: Origin) -> Result<(), Problems> {
    let s = &mut config.server;
    set(&mut s.listen, o.listen);
    if o.workers.is_some() {
        s.workers = o.workers;
    }
    set(&mut s.max_connections, o.max_connections);
    set(&mut s.shutdown_timeout, o.shutdown_timeout);
    set(&mut s.restart_on_shutdown, o.restart_on_shutdown);
    set(&mut s.public, o.public);
    set(&mut config.http.allowed_hosts, o.allowed_hosts);
    if o.api_key_file.is_some() {
        config.api.keys_file = o.api_key_file;
    }
    if o.broker_url_file.is_some() {
        config.broker.url_file = o.broker_url_file;
    }
    set(&mut config.limits.max_message_size, o.max_message_size);
    if o.max_message_size.is_some() {
        // The flag sets "the largest message": frames follow it, as they
        // always have for `--max-message-size`.
        config.limits.max_frame_size = None;
    }
    set(&mut config.limits.max_fragments, o.max_fragments);
    set(&mut config.compression.enabled, o.compression);
    set(&mut config.log.format, o.log_format);
    set(&mut config.log.level, o.log_level);
    if let Some(key) = o.api_key {
        config.api.keys = vec![key];
    }
    set(&mut config.broker.kind, o.broker);
    if o.broker_url.is_some() {
        config.broker.url = o.broker_url;
    }
    if o.instance_id.is_some() {
        config.broker.instance_id = o.instance_id;
    }
    let (cert_name, key_name) = match origin {
        Origin::Env => ("SWITCHBOARD_TLS_CERT", "SWITCHBOARD_TLS_KEY"),
        Origin::Flags => ("--tls-cert", "--tls-key"),
    };
    match (&mut config.tls, o.tls_cert, o.tls_key) {
        (Some(tls), cert, key) => {
            set(&mut tls.cert, cert);
            set(&mut tls.key, key);
        }
        (None, Some(cert), Some(key)) => config.tls = Some(TlsSection { cert, key }),
        (None, Some(_), None) => {
            return Err(Problems::one(
                cert_name,
                format!("a certificate needs its key: set {key_name} too"),
            ));
        }
        (None, None, Some(_)) => {
            return Err(Problems::one(
                key_name,
                format!("a key needs its certificate: set {cert_name} too"),
            ));
        }
        (None, None, None) => {}
    }
    Ok(())
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(file: Option<PathBuf>, env: &[(&str, &str)], flags: Overrides) -> Sources {
        Sources {
            file,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            flags,
        }
    }

    fn temp_file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "switchboard-config-{}.toml",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let file = temp_file(
            "[server]\nlisten = \"127.0.0.1:1111\"\nmax_connections = 5\nshutdown_timeout = \"3s\"\n",
        );
        // Defaults only.
        let config = load(&sources(None, &[], Overrides::default())).unwrap();
        assert_eq!(config.server.listen.port(), 8080);
        // The file.
        let config = load(&sources(Some(file.clone()), &[], Overrides::default())).unwrap();
        assert_eq!(config.server.listen.port(), 1111);
        assert_eq!(config.server.max_connections, 5);
        // The environment beats the file.
        let env = [
            ("SWITCHBOARD_LISTEN", "127.0.0.1:2222"),
            ("SWITCHBOARD_MAX_CONNECTIONS", "6"),
        ];
        let config = load(&sources(Some(file.clone()), &env, Overrides::default())).unwrap();
        assert_eq!(config.server.listen.port(), 2222);
        assert_eq!(config.server.max_connections, 6);
        assert_eq!(config.server.shutdown_timeout, Span::secs(3));
        // Flags beat the environment.
        let flags = Overrides {
            listen: Some("127.0.0.1:3333".parse().unwrap()),
            ..Overrides::default()
        };
        let config = load(&sources(Some(file.clone()), &env, flags)).unwrap();
        assert_eq!(config.server.listen.port(), 3333);
        assert_eq!(config.server.max_connections, 6);
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn the_config_file_can_come_from_the_environment() {
        let file = temp_file("[server]\nlisten = \"127.0.0.1:4444\"\n");
        let path = file.display().to_string();
        let config = load(&sources(
            None,
            &[("SWITCHBOARD_CONFIG", &path)],
            Overrides::default(),
        ))
        .unwrap();
        assert_eq!(config.server.listen.port(), 4444);
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let env = [
            ("SWITCHBOARD_LISTEN", "nowhere"),
            ("SWITCHBOARD_COMPRESSION", "perhaps"),
        ];
        let problems = load(&sources(None, &env, Overrides::default())).unwrap_err();
        let text = problems.to_string();
        assert!(
            text.contains("SWITCHBOARD_LISTEN: invalid address \"nowhere\""),
            "{text}"
        );
        assert!(
            text.contains("SWITCHBOARD_COMPRESSION: invalid boolean"),
            "{text}"
        );
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let config = load(&sources(
            None,
            &[("SWITCHBOARD_API_KEY", ""), ("SWITCHBOARD_LISTEN", "")],
            Overrides::default(),
        ))
        .unwrap();
        assert!(config.api.keys.is_empty());
        assert_eq!(config.server.listen.port(), 8080);
    }

    #[test]
    fn a_certificate_without_a_key_is_refused() {
        let problems = load(&sources(
            None,
            &[("SWITCHBOARD_TLS_CERT", "/tmp/cert.pem")],
            Overrides::default(),
        ))
        .unwrap_err();
        assert!(
            problems
                .to_string()
                .contains("SWITCHBOARD_TLS_CERT: a certificate needs its key")
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_path_and_line() {
        let (place, message) =
            parse_str("[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n").unwrap_err();
        assert!(place.starts_with("server.listne"), "{place}");
        assert!(place.contains("line 3"), "{place}");
        assert!(message.contains("unknown field `listne`"), "{message}");

        let (place, message) = parse_str(
            "[[endpoints]]\npath = \"/a\"\nprotocol = \"echo\"\n[[endpoints]]\npath = \"/b\"\nprotocol = \"chat\"\n",
        )
        .unwrap_err();
        assert!(place.starts_with("endpoints[1].protocol"), "{place}");
        assert!(message.contains("unknown variant `chat`"), "{message}");

        let (place, message) = parse_str("[limits]\nmax_message_size = \"lots\"\n").unwrap_err();
        assert!(place.starts_with("limits.max_message_size"), "{place}");
        assert!(message.contains("invalid size"), "{message}");

        let (place, _) = parse_str("[server\n").unwrap_err();
        assert!(place.contains("line 1"), "{place}");
    }
}
