//! A running `sluice serve` and the clients tests use to talk to it.

#![allow(dead_code)]

mod admin;
mod client;
pub mod examples;
mod http_sink;
mod mllp_receiver;
pub mod tls;
pub mod browser;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use admin::{http_get, metric_sum};
pub use client::{RawClient, ack_field, adt};
pub use http_sink::HttpSink;
pub use mllp_receiver::{MllpReceiver, Reply};

pub const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// Plugins compiled by host/build.rs for these tests.
pub mod wasm {
    pub const REQUIRE_FIELDS: &str = env!("PLUGIN_WASM_REQUIRE_FIELDS");
    pub const MATCH: &str = env!("PLUGIN_WASM_MATCH");
    pub const MISBEHAVE: &str = env!("PLUGIN_WASM_MISBEHAVE");
    pub const OBX_NUMERIC: &str = env!("PLUGIN_WASM_OBX_NUMERIC");
    pub const HTTP: &str = env!("PLUGIN_WASM_HTTP");
    pub const PATIENT_ID: &str = env!("PLUGIN_WASM_PATIENT_ID");
}

/// How long start-up may take before a test fails (a cold store opens in milliseconds).
const STARTUP: Duration = Duration::from_secs(60);

pub struct Sluice {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    /// The TLS listener, as the server announced it (`sluice tls on ADDR`).
    pub tls_addr: Option<SocketAddr>,
    /// The admin endpoint, as the server announced it (`sluice admin on ADDR`).
    admin: Option<SocketAddr>,
    child: Option<Child>,
    extra_config: String,
}

/// The admin listen address every test server gets (each its own free port).
const ADMIN_LISTEN: &str = "127.0.0.1:0";

/// The connectors [`Sluice::start`] configures.
const TWO_CONNECTORS: &str = "[connectors.lab]\n[connectors.archive]\n";

impl Sluice {
    /// Starts a server with two connectors (`lab`, `archive`) plus `extra_config` (TOML).
    pub fn start(extra_config: &str) -> Sluice {
        let mut sluice = Sluice::prepare(&format!("{extra_config}\n{TWO_CONNECTORS}"));
        sluice.launch();
        sluice
    }

    /// A server with exactly `config` (after `listen`, `data_dir` and
    /// `plugins_dir`), not started yet: install plugins, then [`Sluice::launch`].
    pub fn prepare(config: &str) -> Sluice {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
        Sluice { dir, addr: "127.0.0.1:0".parse().unwrap(), tls_addr: None, admin: None, child: None, extra_config: config.to_string() }
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Puts a plugin into the plugins folder the way a careful operator
    /// does: written beside it, then renamed into place.
    pub fn install_plugin(&self, name: &str, wasm: &Path) {
        let staging = self.dir.path().join(format!("{name}.wasm.part"));
        std::fs::copy(wasm, &staging).unwrap();
        std::fs::rename(&staging, self.plugins_dir().join(format!("{name}.wasm"))).unwrap();
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("sluice.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn launch(&mut self) {
        self.launch_with_env(&[]);
    }

    /// [`Sluice::launch`] with extra environment variables for the server.
    pub fn launch_with_env(&mut self, env: &[(&str, &str)]) {
        self.write_config();
        let stderr = std::fs::File::options().create(true).append(true).open(self.dir.path().join("stderr.log")).unwrap();
        let mut child = Command::new(SLUICE)
            .args(["serve", "--config"])
            .arg(self.config_path())
            .env("RUST_BACKTRACE", "1")
            // Tests run in parallel: each admin endpoint on a port of its own.
            .env("SLUICE_ADMIN__LISTEN", ADMIN_LISTEN)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start sluice");
        let ready = wait_for_ready(&mut child, &self.log_path());
        self.addr = ready.listen;
        self.tls_addr = ready.tls;
        self.admin = ready.admin;
        self.child = Some(child);
    }

    /// Writes the config file: `listen`, `data_dir`, `plugins_dir`, then the test's own.
    fn write_config(&self) {
        let config = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nplugins_dir = {:?}\n{}\n",
            self.data_dir().display().to_string(),
            self.plugins_dir().display().to_string(),
            self.extra_config
        );
        // Written beside and renamed into place, as careful operators (and
        // config management) do: the server never reads half a file.
        let staging = self.dir.path().join("sluice.toml.part");
        std::fs::write(&staging, config).unwrap();
        std::fs::rename(&staging, self.config_path()).unwrap();
    }

    /// Replaces the test's part of the config file of a running server.
    pub fn rewrite_config(&mut self, config: &str) {
        self.extra_config = config.to_string();
        self.write_config();
    }

    /// The running server's interfaces, as `sluice interfaces list --json` shows them.
    pub fn interfaces(&self) -> Vec<serde_json::Value> {
        match self.cli_json(&["interfaces", "list"]) {
            serde_json::Value::Array(list) => list,
            other => panic!("`interfaces list --json` is not an array: {other}"),
        }
    }

    /// The first (plain) listener of an interface, if it runs.
    pub fn interface_addr(&self, name: &str) -> Option<SocketAddr> {
        let interfaces = self.interfaces();
        let interface = interfaces.iter().find(|i| i["name"] == name)?;
        interface["listeners"].as_array()?.iter().find(|l| l["tls"] == false)?["addr"].as_str()?.parse().ok()
    }

    /// A Prometheus sample summed over the series whose labels include `labels`.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (status, text) = self.admin_get("/metrics", None);
        assert_eq!(status, 200, "{text}");
        metric_sum(&text, name, labels)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Sends the running server a signal (`HUP`, `USR1`, ...).
    pub fn signal(&self, name: &str) {
        signal(self.child.as_ref().expect("running"), name);
    }

    /// SIGTERM, then wait for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(&child, "TERM");
        wait_with_timeout(&mut child, Duration::from_secs(60))
    }

    /// Waits for a server already signalled to stop to exit.
    pub fn terminate_wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_with_timeout(&mut child, Duration::from_secs(60))
    }

    /// Starts the server again on the same data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.launch();
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn client(&self) -> RawClient {
        RawClient::connect(self.addr)
    }

    /// Runs `sluice <args>` with this server's config; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        self.cli_with_env(args, &[])
    }

    /// [`Sluice::cli`] with extra environment variables (they override the config file).
    pub fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let out = Command::new(SLUICE).args(args).arg("--config").arg(self.config_path()).envs(env.iter().copied()).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Runs `sluice <args> --json` and parses its output, failing the test if it fails.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let (ok, stdout, stderr) = self.cli(&args);
        assert!(ok, "`sluice {}` failed: {stderr}", args.join(" "));
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("`sluice {}` printed no JSON ({e}): {stdout}", args.join(" ")))
    }

    /// `dlq list <connector> --json`: the connector's dead letters, oldest first.
    pub fn dead_letters(&self, connector: &str) -> Vec<serde_json::Value> {
        match self.cli_json(&["dlq", "list", connector]) {
            serde_json::Value::Array(entries) => entries,
            other => panic!("`dlq list {connector} --json` is not an array: {other}"),
        }
    }

    /// The admin endpoint's address: announced on stdout, or written to `DATA_DIR/admin.addr`.
    pub fn admin_addr(&self) -> SocketAddr {
        if let Some(addr) = self.admin {
            return addr;
        }
        let file = self.data_dir().join("admin.addr");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("no `sluice admin on` line and no {} ({e})", file.display()));
        text.trim().parse().unwrap_or_else(|e| panic!("{}: {text:?} is not an address ({e})", file.display()))
    }

    /// `GET path` on the admin endpoint: (status, body).
    pub fn admin_get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        http_get(self.admin_addr(), path, token)
    }

    /// The server's process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's resident set size (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.pid().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
    }

    /// Runs `sluice <args>` without adding `--config`.
    pub fn cli_no_config(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(SLUICE).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Control IDs in a connector's outbox, oldest first (read while the server runs).
    pub fn outbox(&self, connector: &str) -> Vec<String> {
        let (ok, stdout, stderr) = self.cli(&["outbox", "list", connector, "--limit", "100000000", "--json"]);
        assert!(ok, "outbox list failed: {stderr}");
        let entries: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
        entries.iter().map(|e| e["control_id"].as_str().unwrap().to_string()).collect()
    }

    /// A connector's (outbox, dead-letter) depths from `outbox stats --json`.
    pub fn depths(&self, connector: &str) -> (u64, u64) {
        let value = self.cli_json(&["outbox", "stats"]);
        let entry = value["connectors"].as_array().and_then(|all| all.iter().find(|c| c["connector"] == connector));
        let entry = entry.unwrap_or_else(|| panic!("`outbox stats` lists no connector `{connector}`: {value}"));
        (entry["outbox"].as_u64().unwrap(), entry["dead_letter"].as_u64().unwrap())
    }

    /// `outbox stats --json` as (connector, outbox depth) pairs.
    pub fn outbox_depths(&self) -> Vec<(String, u64)> {
        let (ok, stdout, stderr) = self.cli(&["outbox", "stats", "--json"]);
        assert!(ok, "outbox stats failed: {stderr}");
        let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        value["connectors"].as_array().unwrap().iter().map(|c| (c["connector"].as_str().unwrap().to_string(), c["outbox"].as_u64().unwrap())).collect()
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What the server announced on stdout.
struct Ready {
    listen: SocketAddr,
    tls: Option<SocketAddr>,
    admin: Option<SocketAddr>,
}

/// Reads stdout until the readiness line, in a thread so a hung start fails the test.
fn wait_for_ready(child: &mut Child, log: &Path) -> Ready {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let (mut admin, mut tls) = (None, None);
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(addr) = line.trim().strip_prefix("sluice admin on ") {
                admin = addr.parse::<SocketAddr>().ok();
            }
            if let Some(addr) = line.trim().strip_prefix("sluice tls on ") {
                tls = addr.parse::<SocketAddr>().ok();
            }
            if let Some(addr) = line.trim().strip_prefix("sluice listening on ") {
                let _ = tx.send(Ready { listen: addr.parse::<SocketAddr>().unwrap(), tls, admin });
                break;
            }
            line.clear();
        }
        // Keep draining so the server never blocks on a full pipe.
        let _ = std::io::copy(&mut reader.into_inner(), &mut std::io::sink());
    });
    match rx.recv_timeout(STARTUP) {
        Ok(addr) => addr,
        Err(_) => {
            let _ = child.kill();
            panic!("sluice did not become ready; its log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
    }
}

/// Polls `done` every 50 ms until it holds; fails after `limit` naming `what`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// MSH-10 of a message whose fields are separated by `|`.
pub fn control_id(message: &[u8]) -> String {
    let msh = message.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(msh.split(|&b| b == b'|').nth(9).unwrap_or_default()).into_owned()
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "process did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `sluice` with arbitrary arguments (no server).
pub fn sluice_command(args: &[&str], cwd: &Path) -> (std::process::ExitStatus, String, String) {
    let out = Command::new(SLUICE).args(args).current_dir(cwd).output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Reads everything until the peer closes, failing after `limit`.
pub fn read_to_close(stream: &mut std::net::TcpStream, limit: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("the server closes the connection");
    out
}
