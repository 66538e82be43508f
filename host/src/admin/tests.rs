//! The admin endpoint against a real store and catalog: auth, probes,
//! metrics, and the outbox and dead-letter API.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::config::Config;
use crate::outbox::{MessageMeta, NewMessage, Store, StoreOptions, dedupe_key, now_ms};

/// The built-in plugins only.
fn catalog(dir: &std::path::Path) -> Arc<Catalog> {
    let config = Config { data_dir: dir.join("catalog"), plugins_dir: dir.join("plugins"), ..Config::default() };
    std::fs::create_dir_all(&config.data_dir).unwrap();
    Arc::new(Catalog::open(Arc::new(config)).unwrap())
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    state: AdminState,
}

/// A store with the connectors `lab` and `archive`, not ready yet.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let connectors: Vec<Arc<str>> = vec![Arc::from("lab"), Arc::from("archive")];
    let store = Store::open(&dir.path().join("data"), StoreOptions::plain(), &connectors).unwrap();
    let state = AdminState {
        queues: store.queues(),
        metrics: Arc::default(),
        catalog: catalog(dir.path()),
        ready: Arc::default(),
        interfaces: None,
        rejected: Some(store.rejected()),
        journal: Some(store.journal()),
        rates: Arc::default(),
        disk: None,
    };
    Fixture { _dir: dir, store, state }
}

impl Fixture {
    /// Commits a message to both connectors.
    async fn receive(&self, control_id: &str) {
        let meta = MessageMeta {
            received_at_ms: now_ms(),
            peer: "test".into(),
            sending_application: "EHR".into(),
            sending_facility: "HOSP".into(),
            message_type: "ADT^A01".into(),
            control_id: control_id.into(),
            journal_id: None,
        };
        let raw = Bytes::from(format!("MSH|^~\\&|EHR|HOSP|||1||ADT^A01|{control_id}|P|2.5\rPID|1||42\r"));
        let message = NewMessage {
            meta,
            content_hash: xxhash_rust::xxh3::xxh3_128(&raw),
            raw,
            dedupe_key: dedupe_key(b"EHR", b"HOSP", control_id.as_bytes()),
            connectors: vec![Arc::from("lab"), Arc::from("archive")],
            ack: None,
            journal: Some(crate::journal::JournalFacts { interface: "default".into(), ack_code: "AA".into(), ..Default::default() }),
        };
        self.store.handle().commit(message).await.unwrap();
    }

    /// Moves the oldest message of `lab` to its dead-letter queue; returns its ID there.
    fn dead_letter_oldest(&self) -> u64 {
        let entry = self.state.queues.next_batch("lab", 0, 1).unwrap().remove(0);
        self.state.queues.move_to_dead_letter("lab", &entry, 5, "HTTP 503").unwrap();
        entry.seq
    }

    async fn call(&self, token: Option<&str>, request: Request<Body>) -> (StatusCode, Option<String>, String) {
        let router = router(self.state.clone(), token.map(Arc::from));
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let challenge = response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, challenge, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.call(None, Request::get(uri).body(Body::empty()).unwrap()).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }

    async fn post(&self, uri: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::post(uri).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap();
        let (status, _, body) = self.call(None, request).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }
}

fn get(uri: &str, bearer: Option<&str>) -> Request<Body> {
    let request = Request::get(uri);
    let request = match bearer {
        Some(token) => request.header(header::AUTHORIZATION, format!("Bearer {token}")),
        None => request,
    };
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn with_a_token_everything_but_the_probes_needs_it() {
    let f = fixture();
    f.state.ready.store(true, Ordering::SeqCst);
    let token = Some("s3cret");
    for uri in ["/metrics", "/api/outbox", "/api/outbox/lab", "/api/plugins"] {
        let (status, challenge, body) = f.call(token, get(uri, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{uri}");
        assert!(body.contains("\"error\""), "{body}");
        assert_eq!(f.call(token, get(uri, Some("wrong"))).await.0, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(f.call(token, get(uri, Some("s3cret"))).await.0, StatusCode::OK, "{uri}");
    }
    for uri in ["/healthz", "/readyz"] {
        assert_eq!(f.call(token, get(uri, None)).await.0, StatusCode::OK, "{uri}");
    }
    // Without a token configured, none is asked for.
    assert_eq!(f.call(None, get("/api/outbox", None)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn readyz_follows_the_ready_flag_and_healthz_always_answers() {
    let f = fixture();
    assert_eq!(f.get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE, "starting");
    assert_eq!(f.get("/healthz").await.0, StatusCode::OK);
    f.state.ready.store(true, Ordering::SeqCst);
    assert_eq!(f.get("/readyz").await.0, StatusCode::OK);
    f.state.ready.store(false, Ordering::SeqCst);
    assert_eq!(f.get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE, "draining");
}

#[tokio::test]
async fn metrics_expose_the_series_and_the_queue_depths() {
    let f = fixture();
    f.receive("M1").await;
    f.state.metrics.frames.inc();
    let (status, _, text) = f.call(None, get("/metrics", None)).await;
    assert_eq!(status, StatusCode::OK);
    for series in [
        "sluice_frames_total 1",
        "sluice_acks_total{code=\"AA\"} 0",
        "sluice_connections_open 0",
        "sluice_ack_latency_seconds_count 0",
        "sluice_outbox_depth{connector=\"lab\"} 1",
        "sluice_dead_letter_depth{connector=\"archive\"} 0",
    ] {
        assert!(text.lines().any(|l| l == series), "no `{series}` in:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn an_unknown_connector_is_a_404_that_names_it() {
    let f = fixture();
    for uri in ["/api/outbox/nope", "/api/dlq/nope", "/api/dlq/nope/1"] {
        let (status, body) = f.get(uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body["error"].as_str().unwrap().contains("`nope`"), "{body}");
    }
    let (status, body) = f.post("/api/dlq/nope/replay", r#"{"all": true}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("`nope`"), "{body}");
}

#[tokio::test]
async fn outbox_depths_and_entries() {
    let f = fixture();
    f.receive("A1").await;
    f.receive("A2").await;
    let (status, depths) = f.get("/api/outbox").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        depths["connectors"],
        json!([
            {"connector": "archive", "outbox": 2, "dead_letter": 0},
            {"connector": "lab", "outbox": 2, "dead_letter": 0},
        ])
    );
    assert!(depths["journal_bytes"].as_u64().is_some(), "{depths}");
    let (status, entries) = f.get("/api/outbox/lab?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["control_id"], "A1");
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[0]["attempts"], 0);
    assert_eq!(entries[0]["message_type"], "ADT^A01");
    assert_eq!(f.get("/api/outbox/lab?limit=lots").await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dead_letters_are_listed_shown_replayed_and_purged() {
    let f = fixture();
    for id in ["D1", "D2", "D3"] {
        f.receive(id).await;
    }
    let first = f.dead_letter_oldest();
    let second = f.dead_letter_oldest();

    let (status, letters) = f.get("/api/dlq/lab").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<u64> = letters.as_array().unwrap().iter().map(|l| l["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [first, second]);
    assert_eq!(letters[0]["error"], "HTTP 503");
    assert_eq!(letters[0]["control_id"], "D1");
    let (_, after) = f.get(&format!("/api/dlq/lab?after={first}&limit=10")).await;
    assert_eq!(after.as_array().unwrap().len(), 1);

    let (status, shown) = f.get(&format!("/api/dlq/lab/{first}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["attempts"], 5);
    assert!(shown["raw"].as_str().unwrap().starts_with("MSH|^~\\&|EHR|HOSP|||1||ADT^A01|D1|"), "{shown}");
    assert_eq!(f.get("/api/dlq/lab/999").await.0, StatusCode::NOT_FOUND);
    assert_eq!(f.get("/api/dlq/lab/not-a-number").await.0, StatusCode::BAD_REQUEST);

    for bad in ["", "{}", r#"{"id": 1, "all": true}"#, r#"{"all": false}"#, r#"{"id": "x"}"#, r#"{"every": true}"#] {
        let (status, body) = f.post("/api/dlq/lab/replay", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }

    let (status, body) = f.post("/api/dlq/lab/replay", &format!(r#"{{"id": {first}}}"#)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"replayed": 1})));
    let (_, outbox) = f.get("/api/outbox/lab").await;
    let queued: Vec<&str> = outbox.as_array().unwrap().iter().map(|e| e["control_id"].as_str().unwrap()).collect();
    assert_eq!(queued, ["D3", "D1"], "replayed to the tail");
    assert_eq!(f.post("/api/dlq/lab/replay", &format!(r#"{{"id": {first}}}"#)).await.0, StatusCode::NOT_FOUND, "no longer dead");

    let (status, body) = f.post("/api/dlq/lab/purge", r#"{"all": true}"#).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"purged": 1})));
    assert_eq!(f.get("/api/dlq/lab").await.1, json!([]));
    let (_, depths) = f.get("/api/outbox").await;
    assert_eq!(depths["connectors"][1], json!({"connector": "lab", "outbox": 2, "dead_letter": 0}));
}

#[tokio::test]
async fn plugins_lists_the_catalog() {
    let f = fixture();
    let (status, plugins) = f.get("/api/plugins").await;
    assert_eq!(status, StatusCode::OK);
    assert!(plugins.as_array().unwrap().iter().any(|p| p["name"] == "require-fields" && p["state"] == "loaded"), "{plugins}");
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let f = fixture();
    let (status, body) = f.get("/api/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("/api/nothing"), "{body}");
}

#[tokio::test]
async fn binds_serves_over_tcp_and_stops_when_cancelled() {
    let f = fixture();
    assert!(bind(&AdminConfig { listen: "off".into(), token: None }).unwrap().is_none());
    let err = bind(&AdminConfig { listen: "nonsense".into(), token: None }).err().unwrap();
    assert!(format!("{err:#}").contains("admin.listen"), "{err:#}");

    let server = bind(&AdminConfig { listen: "127.0.0.1:0".into(), token: None }).unwrap().unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let taken = bind(&AdminConfig { listen: addr.to_string(), token: None }).err().unwrap();
    assert!(format!("{taken:#}").contains("admin.listen"), "{taken:#}");

    let stop = CancellationToken::new();
    let serving = tokio::spawn(server.serve(f.state.clone(), stop.clone()));
    let reply = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), serving).await.expect("stops when cancelled").unwrap().unwrap();
}

#[tokio::test]
async fn the_overview_has_each_connectors_depths_and_its_last_delivery_error() {
    let f = fixture();
    f.receive("M1").await;
    f.receive("M2").await;
    f.dead_letter_oldest();
    let entry = f.state.queues.next_batch("archive", 0, 1).unwrap().remove(0);
    f.state.queues.delivered("archive", &entry).unwrap();
    let (status, overview) = f.get("/api/overview").await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    let connector = |name: &str| overview["connectors"].as_array().unwrap().iter().find(|c| c["connector"] == name).cloned().unwrap();
    let lab = connector("lab");
    assert_eq!((lab["outbox"].as_u64(), lab["dead_letter"].as_u64(), lab["delivered"].as_u64()), (Some(1), Some(1), Some(0)), "{lab}");
    assert_eq!(lab["last_error"], "HTTP 503", "{lab}");
    let archive = connector("archive");
    assert_eq!((archive["outbox"].as_u64(), archive["delivered"].as_u64()), (Some(1), Some(1)), "{archive}");
    assert!(archive["last_delivered_ms"].as_u64().is_some() && archive["last_error"].is_null(), "{archive}");
    assert!(overview["answers"]["answers"]["AA"].is_array(), "the chart's series: {overview}");
    assert!(overview["plugins"].as_array().is_some_and(|p| !p.is_empty()), "{overview}");
}

#[tokio::test]
async fn the_console_pages_are_served_without_the_token_and_forbid_framing() {
    let f = fixture();
    for uri in ["/", "/messages", "/messages/123", "/dead-letters", "/dead-letters/lab", "/console/console.js", "/console/console.css"] {
        let response = router(f.state.clone(), Some(Arc::from("s3cret"))).oneshot(get(uri, None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}: the pages hold no data");
        let csp = response.headers().get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{uri}: {csp}");
    }
    let response = router(f.state.clone(), None).oneshot(get("/", None)).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("/console/console.js"), "the shell loads the script");
    assert_eq!(f.call(Some("s3cret"), get("/api/overview", None)).await.0, StatusCode::UNAUTHORIZED, "the data needs the token");
}

#[tokio::test]
async fn replay_and_purge_through_the_api_are_journalled_with_who_asked() {
    let f = fixture();
    f.receive("M1").await;
    f.receive("M2").await;
    f.dead_letter_oldest();
    f.dead_letter_oldest();
    let client: std::net::SocketAddr = "127.0.0.1:40001".parse().unwrap();
    for (action, body) in [("replay", r#"{"all": true}"#), ("purge", r#"{"all": true}"#)] {
        if action == "purge" {
            // M1 was replayed; bury it again to purge it.
            let entry = f.state.queues.next_batch("lab", 0, 10).unwrap().into_iter().find(|e| e.meta.control_id == "M1").unwrap();
            f.state.queues.move_to_dead_letter("lab", &entry, 1, "HTTP 400").unwrap();
        }
        let mut request = Request::post(format!("/api/dlq/lab/{action}")).header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap();
        request.extensions_mut().insert(axum::extract::ConnectInfo(client));
        let (status, _, answer) = f.call(None, request).await;
        assert_eq!(status, StatusCode::OK, "{action}: {answer}");
    }
    let journal = f.state.journal.clone().unwrap();
    let m1 = journal.search(&crate::journal::Query { control_id: Some("M1".into()), ..Default::default() }).unwrap().remove(0);
    let events = journal.show(m1.id).unwrap().unwrap().events;
    let by = |event: &str| events.iter().filter(|e| e.event == event).map(|e| e.by.clone()).collect::<Vec<_>>();
    assert_eq!(by("replayed"), [Some("admin API from 127.0.0.1:40001".to_string())], "{events:?}");
    assert_eq!(by("purged"), [Some("admin API from 127.0.0.1:40001".to_string())], "{events:?}");
}

#[tokio::test]
async fn an_action_posted_as_a_form_or_plain_text_does_nothing() {
    // Another site's page can send these without asking first (no CORS preflight); they must not act.
    let f = fixture();
    f.receive("M1").await;
    f.dead_letter_oldest();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let request = Request::post("/api/dlq/lab/purge").header(header::CONTENT_TYPE, content_type).body(Body::from(r#"{"all": true}"#)).unwrap();
        let (status, _, body) = f.call(None, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{content_type}: {body}");
    }
    assert_eq!(f.state.queues.depths().iter().find(|d| d.connector == "lab").map(|d| d.dead_letter), Some(1), "nothing purged");
}

#[tokio::test]
async fn without_a_token_a_request_for_another_sites_name_is_refused() {
    let f = fixture();
    let request = |host: &str| Request::get("/api/outbox").header(header::HOST, host).body(Body::empty()).unwrap();
    let (status, _, body) = f.call(None, request("rebound.example:9275")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("rebound.example"), "{body}");
    assert_eq!(f.call(None, request("127.0.0.1:9275")).await.0, StatusCode::OK);
    assert_eq!(f.call(None, request("localhost:9275")).await.0, StatusCode::OK);
    // With a token, the token is the guard (a page elsewhere cannot have it).
    let with_token = Request::get("/api/outbox").header(header::HOST, "engine.hospital.example").header(header::AUTHORIZATION, "Bearer s3cret").body(Body::empty()).unwrap();
    assert_eq!(f.call(Some("s3cret"), with_token).await.0, StatusCode::OK);
}
