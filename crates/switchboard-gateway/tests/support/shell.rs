//! Runs the documentation's shell lines as a reader would paste them:
//! `bash -c`, from the repository root (or a directory of the test's), with
//! the `switchboard` binary on `PATH`, a clean `SWITCHBOARD_*` environment,
//! and the docs' loopback addresses (`127.0.0.1:8080`, `6379`) replaced by
//! the test's. Lines that set a tool up (`pip install`, `python3 -m venv`)
//! are not repeated: [`is_setup`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long one command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository's root.
pub fn repo_root() -> PathBuf {
    switchboard_docs::markdown::repo_root()
}

/// Whether `line` installs something rather than using it.
pub fn is_setup(line: &str) -> bool {
    line.contains("pip install") || line.contains("-m venv")
}

/// Whether the tool answers `<tool> <version_arg>`. When it does not: a
/// loud SKIPPED line and `false`, or, under CI (`CI` set), a panic.
pub fn require_tool(tool: &str, version_arg: &str, test: &str) -> bool {
    let ok = Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip_or_fail(test, &format!("`{tool}` is not on PATH"));
    }
    ok
}

/// A loud SKIPPED line, or a panic under CI.
pub fn skip_or_fail(test: &str, why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {why} (required under CI)"
    );
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// A Python with `modules` importable: `$SWITCHBOARD_PYTHON`, else
/// `python3`; `None` (after [`skip_or_fail`]) when it lacks them.
pub fn python_with(modules: &[&str], test: &str) -> Option<String> {
    let python = std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let import = format!("import {}", modules.join(", "));
    let ok = Command::new(&python)
        .args(["-c", &import])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else {
        skip_or_fail(
            test,
            &format!("{python} cannot `{import}` (set SWITCHBOARD_PYTHON to one that can)"),
        );
        None
    }
}

/// A shell for documented commands.
#[derive(Debug, Clone)]
pub struct Shell {
    dir: PathBuf,
    env: Vec<(String, String)>,
    replacements: Vec<(String, String)>,
}

impl Default for Shell {
    fn default() -> Self {
        Self::new()
    }
}

impl Shell {
    /// From the repository root.
    pub fn new() -> Self {
        let bin_dir = Path::new(super::bin())
            .parent()
            .expect("the binary's directory");
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Self {
            dir: repo_root(),
            env: vec![("PATH".to_owned(), path)],
            replacements: Vec::new(),
        }
    }

    /// Runs from `dir` instead.
    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.dir = dir.to_owned();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Every `from` in a line becomes `to` before it runs.
    pub fn replace(mut self, from: &str, to: &str) -> Self {
        self.replacements.push((from.to_owned(), to.to_owned()));
        self
    }

    /// The line as it runs.
    pub fn prepare(&self, line: &str) -> String {
        self.replacements
            .iter()
            .fold(line.to_owned(), |line, (from, to)| line.replace(from, to))
    }

    fn command(&self, line: &str) -> Command {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(self.prepare(line))
            .current_dir(&self.dir);
        for (key, _) in std::env::vars() {
            if key.starts_with("SWITCHBOARD_") && key != "SWITCHBOARD_PYTHON" {
                command.env_remove(key);
            }
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Runs `line` to its end (at most a minute); its output.
    pub fn run(&self, line: &str) -> Output {
        let mut child = self
            .command(line)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "still running after {COMMAND_TIMEOUT:?}: {}",
                    self.prepare(line)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("the output")
    }

    /// Runs `line` and expects exit 0; its standard output.
    pub fn run_ok(&self, line: &str) -> String {
        let output = self.run(line);
        assert!(
            output.status.success(),
            "{} exited with {}:\n{}{}",
            self.prepare(line),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Starts `line` in the background; its standard output comes line by
    /// line. Killed (by PID) when dropped.
    pub fn spawn(&self, line: &str) -> Running {
        let mut child = self
            .command(line)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }
}

/// A command running in the background.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    /// Every line read so far, for messages.
    seen: Vec<String>,
}

impl Running {
    /// The next line of its output that `matches`, within 15 s.
    pub fn line_where(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let stderr = self
                        .child
                        .stderr
                        .take()
                        .map(|mut e| {
                            let mut s = String::new();
                            let _ = std::io::Read::read_to_string(&mut e, &mut s);
                            s
                        })
                        .unwrap_or_default();
                    panic!(
                        "no line {what} within 15 s; its output:\n{}\n{stderr}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
