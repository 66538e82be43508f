//! Headless Chromium (Debian's package) driven by playwright-core through
//! tests/console/driver.mjs: one JSON command per line, one answer per line.
//! Playwright waits for what a command needs (an element, a text), so the
//! tests wait on what the page shows, never on a sleep.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, Once};
use std::time::Duration;

use serde_json::{Value, json};

const CONSOLE_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/console");

/// Screenshots of each page, kept as test artifacts (never committed).
pub const SCREENSHOTS: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/console-screenshots");

/// A command's own waits end at 15 s (BROWSER_TIMEOUT_MS); this is the test's backstop.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

pub struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    answers: mpsc::Receiver<String>,
    base: String,
    /// Names the screenshot taken when a command fails.
    test: String,
}

/// Installs playwright-core (tests/console/install.sh) once per test run.
fn install() {
    static INSTALL: Once = Once::new();
    static FAILED: Mutex<Option<String>> = Mutex::new(None);
    INSTALL.call_once(|| {
        let script = Path::new(CONSOLE_TESTS).join("install.sh");
        let status = Command::new("bash").arg(&script).status();
        if !matches!(status, Ok(s) if s.success()) {
            *FAILED.lock().unwrap() = Some(format!("{} failed ({status:?}); it needs node and npm", script.display()));
        }
    });
    if let Some(failure) = FAILED.lock().unwrap().as_ref() {
        panic!("{failure}");
    }
}

fn chromium() -> PathBuf {
    let path = PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(path.exists(), "no Chromium at {}: install Debian's `chromium` and `chromium-driver` packages (.ci/run does), or set CHROMIUM", path.display());
    path
}

impl Browser {
    /// A fresh browser (its own empty profile) for pages under `base` (`http://127.0.0.1:PORT`).
    pub fn open(base: &str, test: &str) -> Browser {
        install();
        let mut child = Command::new("node")
            .arg(Path::new(CONSOLE_TESTS).join("driver.mjs"))
            .env("CHROMIUM", chromium())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run node tests/console/driver.mjs");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        std::fs::create_dir_all(SCREENSHOTS).unwrap();
        Browser { child, stdin: Some(stdin), answers, base: base.trim_end_matches('/').to_string(), test: test.to_string() }
    }

    fn call(&mut self, command: Value) -> Value {
        match self.try_call(&command) {
            Ok(value) => value,
            Err(error) => {
                let shot = Path::new(SCREENSHOTS).join(format!("{}-failure.png", self.test));
                let _ = self.try_call(&json!({ "cmd": "screenshot", "path": shot }));
                let body = self.try_call(&json!({ "cmd": "body_text" })).unwrap_or_default();
                let errors = self.try_call(&json!({ "cmd": "errors" })).unwrap_or_default();
                let url = self.try_call(&json!({ "cmd": "url" })).unwrap_or_default();
                panic!(
                    "browser command {command} failed: {error}\nat {url}\npage errors: {errors}\nscreenshot: {}\npage text:\n{}",
                    shot.display(),
                    body.as_str().unwrap_or("")
                );
            }
        }
    }

    fn try_call(&mut self, command: &Value) -> Result<Value, String> {
        let stdin = self.stdin.as_mut().ok_or("the driver is closed")?;
        writeln!(stdin, "{command}").map_err(|e| format!("the driver is gone ({e})"))?;
        let line = self.answers.recv_timeout(ANSWER_LIMIT).map_err(|e| format!("no answer from the driver ({e})"))?;
        let answer: Value = serde_json::from_str(&line).map_err(|e| format!("the driver said {line:?} ({e})"))?;
        if answer["ok"] == true { Ok(answer["value"].clone()) } else { Err(answer["error"].as_str().unwrap_or("?").to_string()) }
    }

    /// Opens `path` (`/messages?control_id=X`) on the engine's admin endpoint.
    pub fn goto(&mut self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.call(json!({ "cmd": "goto", "url": url }));
    }

    pub fn url(&mut self) -> String {
        self.call(json!({ "cmd": "url" })).as_str().unwrap_or_default().to_string()
    }

    /// Waits until an element matching `selector` contains `text`.
    pub fn wait_text(&mut self, selector: &str, text: &str) {
        self.call(json!({ "cmd": "wait_text", "selector": selector, "text": text }));
    }

    pub fn wait_visible(&mut self, selector: &str) {
        self.call(json!({ "cmd": "wait_visible", "selector": selector }));
    }

    /// Waits until the page's URL matches the regular expression `pattern`.
    pub fn wait_url(&mut self, pattern: &str) {
        self.call(json!({ "cmd": "wait_url", "pattern": pattern }));
    }

    /// The text of the first element matching `selector` (waiting for it).
    pub fn text(&mut self, selector: &str) -> String {
        self.call(json!({ "cmd": "text", "selector": selector })).as_str().unwrap_or_default().to_string()
    }

    pub fn attribute(&mut self, selector: &str, name: &str) -> Option<String> {
        self.call(json!({ "cmd": "attribute", "selector": selector, "name": name })).as_str().map(str::to_string)
    }

    /// Elements matching `selector` now (no waiting).
    pub fn count(&mut self, selector: &str) -> u64 {
        self.call(json!({ "cmd": "count", "selector": selector })).as_u64().unwrap_or(0)
    }

    pub fn fill(&mut self, selector: &str, value: &str) {
        self.call(json!({ "cmd": "fill", "selector": selector, "value": value }));
    }

    pub fn click(&mut self, selector: &str) {
        self.call(json!({ "cmd": "click", "selector": selector }));
    }

    pub fn body_text(&mut self) -> String {
        self.call(json!({ "cmd": "body_text" })).as_str().unwrap_or_default().to_string()
    }

    /// Script errors and console errors the page reported since the last call.
    pub fn errors(&mut self) -> Vec<String> {
        serde_json::from_value(self.call(json!({ "cmd": "errors" }))).unwrap_or_default()
    }

    /// Saves the whole page as `SCREENSHOTS/<name>.png`.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        let path = Path::new(SCREENSHOTS).join(format!("{name}.png"));
        self.call(json!({ "cmd": "screenshot", "path": path }));
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End of input: the driver closes the browser, removes its profile and exits.
        drop(self.stdin.take());
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
