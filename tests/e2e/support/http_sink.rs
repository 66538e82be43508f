//! A real HTTP server in the test process for the `http` connector to
//! deliver to: it records every request in arrival order and answers with
//! the status its rules say (200 when none applies). Tests wait for what
//! they expect on a condition variable, never by sleeping.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::watch;

/// One request as the sink saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status the sink answered.
    pub status: u16,
    /// When it arrived (before any delay or gate).
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn delivered(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// MSH-10 of the body (the tests' messages use `|`).
    pub fn control_id(&self) -> String {
        super::control_id(&self.body)
    }
}

/// How the sink answers: the first rule that matches and has uses left.
#[derive(Debug, Clone)]
struct Rule {
    /// Applies only to bodies containing this; every body when `None`.
    when: Option<Vec<u8>>,
    status: u16,
    /// Uses left; `None` is unlimited.
    times: Option<usize>,
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    rules: Vec<Rule>,
    /// Time each request takes to answer.
    delay: Duration,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// While `true`, requests wait (recorded first) until it turns `false`.
    gate: watch::Sender<bool>,
}

pub struct HttpSink {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl HttpSink {
    /// A sink on 127.0.0.1 with a free port, answering 200 to everything.
    pub fn start() -> HttpSink {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("http-sink").enable_all().build().unwrap();
        let shared = Arc::new(Shared { state: Mutex::default(), changed: Condvar::new(), gate: watch::channel(false).0 });
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind the HTTP sink");
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback({
            let shared = shared.clone();
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| answer(shared.clone(), uri.path().to_string(), headers, body)
        });
        runtime.spawn(async move { axum::serve(listener, app).await });
        HttpSink { addr, shared, _runtime: runtime }
    }

    /// The URL connectors are configured with.
    pub fn url(&self) -> String {
        format!("http://{}/hl7", self.addr)
    }

    /// `host:port`, as listed in `allow.http`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The next `times` requests get `status`, then the other rules apply.
    pub fn answer_next(&self, times: usize, status: u16) -> &Self {
        self.lock().rules.push(Rule { when: None, status, times: Some(times) });
        self
    }

    /// Every request whose body contains `needle` gets `status`.
    pub fn answer_when(&self, needle: &str, status: u16) -> &Self {
        self.lock().rules.push(Rule { when: Some(needle.as_bytes().to_vec()), status, times: None });
        self
    }

    /// Every request gets `status` (unless an earlier rule applies).
    pub fn answer_always(&self, status: u16) -> &Self {
        self.lock().rules.push(Rule { when: None, status, times: None });
        self
    }

    /// Forget every rule: 200 from now on.
    pub fn answer_ok(&self) {
        self.lock().rules.clear();
    }

    /// Each request takes this long to answer.
    pub fn slow_down(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Requests are recorded but not answered until [`HttpSink::open`].
    pub fn hold(&self) {
        self.shared.gate.send_replace(true);
    }

    pub fn open(&self) {
        self.shared.gate.send_replace(false);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Bodies answered with 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<Request> {
        self.lock().requests.iter().filter(|r| r.delivered()).cloned().collect()
    }

    /// Control IDs answered with 2xx, in arrival order.
    pub fn delivered_ids(&self) -> Vec<String> {
        self.delivered().iter().map(Request::control_id).collect()
    }

    /// Waits until at least `n` requests arrived; all of them.
    pub fn wait_for_requests(&self, n: usize, limit: Duration) -> Vec<Request> {
        self.wait(limit, &format!("{n} requests"), |requests| requests.len() >= n)
    }

    /// Waits until at least `n` requests were answered with 2xx; those.
    pub fn wait_for_delivered(&self, n: usize, limit: Duration) -> Vec<Request> {
        self.wait(limit, &format!("{n} deliveries"), |requests| requests.iter().filter(|r| r.delivered()).count() >= n);
        self.delivered()
    }

    /// Waits until `done` holds for the requests so far; fails after `limit`
    /// listing what did arrive.
    pub fn wait(&self, limit: Duration, what: &str, done: impl Fn(&[Request]) -> bool) -> Vec<Request> {
        let deadline = Instant::now() + limit;
        let mut state = self.lock();
        while !done(&state.requests) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let seen: Vec<(String, u16)> = state.requests.iter().map(|r| (r.control_id(), r.status)).collect();
                panic!("the HTTP sink did not get {what} within {limit:?}; it got {} requests: {seen:?}", seen.len());
            }
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
        state.requests.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn answer(shared: Arc<Shared>, path: String, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let mut gate = shared.gate.subscribe();
    let (status, delay) = {
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let rule = state.rules.iter_mut().find(|r| r.times != Some(0) && r.when.as_ref().is_none_or(|needle| contains(&body, needle)));
        let status = match rule {
            Some(rule) => {
                if let Some(times) = rule.times.as_mut() {
                    *times -= 1;
                }
                rule.status
            }
            None => 200,
        };
        let headers = headers.iter().map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
        state.requests.push(Request { path, headers, body: body.to_vec(), status, at });
        (status, state.delay)
    };
    shared.changed.notify_all();
    let _ = gate.wait_for(|held| !held).await;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    StatusCode::from_u16(status).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
