//! The documentation's gateway configurations and `switchboard config`
//! commands, run with the real binary: every TOML block checks, the
//! documented commands run, and the documented outputs are what the binary
//! prints.

mod support;

use std::path::PathBuf;

use support::shell::Shell;
use switchboard_docs::markdown::{all_blocks, tagged};

/// What the documented configurations take from the environment.
const ENV: &[(&str, &str)] = &[
    (
        "JWT_SECRET",
        "a documentation secret of at least thirty-two bytes",
    ),
    ("SWITCHBOARD_API_KEY", "docs-api-key-0123456789"),
    (
        "SWITCHBOARD_PROXY_SECRET",
        "a-proxy-secret-of-32-characters!",
    ),
];

/// The Redis URL of the configurations that say `url from SWITCHBOARD_BROKER_URL`
/// (`config check` builds the broker without connecting).
const BROKER_URL: &str = "redis://127.0.0.1:6379";

/// A fresh directory for one test's files.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-docs-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn shell_in(dir: &std::path::Path) -> Shell {
    ENV.iter()
        .fold(Shell::new().in_dir(dir), |shell, (key, value)| {
            shell.env(key, value)
        })
}

/// Every ```` ```toml ```` block without a tag is a gateway configuration
/// that `config check` accepts (files it names are made: a certificate for
/// `[tls]`).
#[test]
fn every_documented_configuration_checks() {
    let dir = temp_dir("toml");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("fullchain.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        dir.join("privkey.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let blocks: Vec<_> = all_blocks()
        .into_iter()
        .filter(|b| b.lang == "toml" && b.tag.is_none())
        .collect();
    assert!(blocks.len() >= 4, "{blocks:?}");
    for block in blocks {
        let text = block
            .text
            .replace("/etc/switchboard/", &format!("{}/", dir.display()));
        let file = dir.join(format!("line{}.toml", block.line));
        std::fs::write(&file, text).unwrap();
        let mut shell = shell_in(&dir);
        if block.text.contains("type = \"redis\"") {
            shell = shell.env("SWITCHBOARD_BROKER_URL", BROKER_URL);
        }
        let output = shell.run(&format!("switchboard config check '{}'", file.display()));
        assert!(
            output.status.success(),
            "{} does not check:\n{}{}",
            block.location(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// configuration.md's `config example` / `config check` commands, in an
/// empty directory.
#[test]
fn the_config_commands_run_as_documented() {
    let dir = temp_dir("cli");
    let shell = Shell::new().in_dir(&dir);
    for block in tagged("config-cli") {
        for line in block.commands() {
            shell.run_ok(line);
        }
    }
    let example = std::fs::read_to_string(dir.join("switchboard.toml")).unwrap();
    assert!(example.contains("[server]"), "{example}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The problems configuration.md shows, for a configuration that has them:
/// `serve` prints exactly the block and exits 2.
#[test]
fn the_documented_configuration_errors_are_what_serve_prints() {
    let dir = temp_dir("errors");
    std::fs::write(
        dir.join("switchboard.toml"),
        "[server]\nlisten = \"0.0.0.0:9000\"\nworkers = 0\n\n\
         [[endpoints]]\npath = \"/ws\"\nprotocol = \"echo\"\n\n\
         [[endpoints]]\npath = \"ws/chat\"\nprotocol = \"echo\"\n",
    )
    .unwrap();
    let output = Shell::new()
        .in_dir(&dir)
        .run("switchboard serve --config switchboard.toml");
    assert_eq!(output.status.code(), Some(2));
    let block = &tagged("config-errors")[0];
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        block.text,
        "{}",
        block.location()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// security.md's `exposure:` line, for a gateway beyond loopback with a
/// public name and a key.
#[test]
fn the_documented_exposure_line_is_what_config_check_prints() {
    let dir = temp_dir("exposure");
    std::fs::write(
        dir.join("switchboard.toml"),
        "[server]\nlisten = \"0.0.0.0:8080\"\n\n[http]\nallowed_hosts = [\"ws.example.com\"]\n",
    )
    .unwrap();
    let stdout = shell_in(&dir).run_ok("switchboard config check switchboard.toml");
    let block = &tagged("exposure")[0];
    let expected = block.text.trim();
    assert!(
        stdout.lines().any(|line| line.trim() == expected),
        "{}: not printed:\n{expected}\nconfig check printed:\n{stdout}",
        block.location()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
