//! The operations console in a real browser: Debian's headless Chromium,
//! driven by playwright-core (tests/console/driver.mjs), against the real
//! binary. Each test waits on what the page shows (Playwright's own waits);
//! screenshots of each page land in `CARGO_TARGET_TMPDIR/console-screenshots`.

use std::time::Duration;

use crate::support::browser::Browser;
use crate::support::{HttpSink, Sluice, ack_field, adt, http_get, wait_until};

const WAIT: Duration = Duration::from_secs(30);

fn open(sluice: &Sluice, test: &str) -> Browser {
    Browser::open(&format!("http://{}", sluice.admin_addr()), test)
}

fn send(sluice: &Sluice, control_ids: &[&str]) {
    let mut client = sluice.client();
    for id in control_ids {
        let ack = client.send(&adt(id));
        assert_eq!(ack_field(&ack, "MSA", 1), "AA", "{id}: {}", String::from_utf8_lossy(&ack));
    }
}

/// The page ran without a script error or a refused resource (the content
/// security policy reports as console errors); requests the token refused are expected.
fn assert_no_page_errors(browser: &mut Browser) {
    let errors: Vec<String> = browser.errors().into_iter().filter(|e| !e.contains("status of 401")).collect();
    assert!(errors.is_empty(), "the page reported errors: {errors:?}");
}

#[test]
fn the_overview_shows_the_connectors_and_a_message_count_that_grows_as_a_client_sends() {
    let sluice = Sluice::start("");
    let mut browser = open(&sluice, "overview");
    browser.goto("/");
    browser.wait_text("#connectors", "lab");
    browser.wait_text("#connectors", "archive");
    browser.wait_text("#interfaces", "default");
    assert_eq!(browser.text("#stat-received .value"), "0");

    send(&sluice, &["OV1", "OV2", "OV3"]);
    // The page polls: the count follows without a reload.
    browser.wait_text("#stat-received .value", "3");
    assert_eq!(browser.text("#stat-received .value"), "3");
    // An open connection is listed with its peer's address.
    let mut client = sluice.client();
    let peer = client.stream.local_addr().unwrap().to_string();
    assert_eq!(ack_field(&client.send(&adt("OV4")), "MSA", 1), "AA");
    browser.wait_text("#connections", &peer);
    browser.wait_text("#stat-received .value", "4");
    // The live chart counts them by ACK code (sampled each second).
    browser.wait_text(".legend [data-answer=AA]", "AA 4");
    assert_eq!(browser.count("#chart polyline[data-answer=AA]"), 1, "a line for AA");
    assert_eq!(browser.count("#chart polyline[data-answer=AR]"), 0, "no line for a code never sent");
    browser.wait_text("#plugins", "loaded");
    browser.screenshot("overview");
    assert_no_page_errors(&mut browser);
}

#[test]
fn a_control_id_search_has_its_own_url_and_the_message_view_numbers_the_fields() {
    let sluice = Sluice::start("");
    send(&sluice, &["FIND-A", "FIND-B", "FIND-C"]);
    let mut browser = open(&sluice, "messages");
    browser.goto("/messages");
    browser.wait_text("#results", "FIND-C");
    browser.fill("#search input[name=control_id]", "FIND-B");
    browser.click("#search button[type=submit]");
    browser.wait_url(r"/messages\?control_id=FIND-B$");
    browser.wait_text("#results", "FIND-B");
    assert_eq!(browser.count("#results tbody tr"), 1, "only FIND-B matches");
    browser.screenshot("messages");

    // The search's URL, pasted into another tab, gives the same result.
    browser.goto("/messages?control_id=FIND-A");
    browser.wait_text("#results", "FIND-A");
    assert_eq!(browser.count("#results tbody tr"), 1);
    assert_eq!(browser.text("#results tbody tr td:nth-child(5)"), "PATFIND-A", "the patient ID column");

    browser.click("#results tbody a");
    browser.wait_url(r"/messages/\d+$");
    let view_url = browser.url();
    browser.wait_text("#segments [data-segment=PID] h3", "PID");
    assert_eq!(browser.text("[data-field='PID-5'] th"), "PID-5", "fields carry their numbers");
    assert_eq!(browser.text("[data-path='PID-5.1']"), "Doe");
    assert_eq!(browser.attribute("[data-path='PID-5.2']", "title").as_deref(), Some("PID-5.2"), "components name their path on hover");
    assert_eq!(browser.text("[data-field='PID-3'] [data-path='PID-3.4']"), "HOSP");
    assert_eq!(browser.text("[data-field='MSH-1'] td"), "|", "MSH-1 is the field separator");
    assert_eq!(browser.text("[data-field='MSH-2'] td"), "^~\\&");
    assert_eq!(browser.text("[data-field='MSH-10'] td"), "FIND-A");
    assert!(browser.text("#raw").contains("PID|1||PATFIND-A"), "the raw text is shown");
    assert!(browser.text("#ack").contains("MSA|AA|FIND-A"), "and the ACK sent");
    browser.wait_text("#history tr[data-event=received]", "answered AA");
    assert_eq!(browser.count("#history tr[data-event=queued]"), 2, "queued for lab and archive");
    browser.wait_text("#history tr[data-event=queued][data-connector=lab]", "lab");
    browser.screenshot("message");

    // The view's URL opens on its own as well.
    browser.goto(&view_url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string())).unwrap());
    browser.wait_text("[data-field='MSH-10'] td", "FIND-A");
    assert_no_page_errors(&mut browser);
}

#[test]
fn a_dead_letter_is_replayed_from_the_page_after_the_sink_recovers_and_shows_as_delivered() {
    let sink = HttpSink::start();
    sink.answer_when("BAD", 400);
    let config = format!(
        "[connectors.lab]\nplugin = \"http\"\nconfig = {{ url = \"{}\" }}\nretry = {{ initial_backoff = \"50ms\", max_backoff = \"200ms\", max_attempts = 3, jitter = 0.0 }}\n[plugins.http]\nallow = {{ http = [\"{}\"] }}\n",
        sink.url(),
        sink.host()
    );
    let mut sluice = Sluice::prepare(&config);
    sluice.launch();
    send(&sluice, &["OK1", "BAD1"]);
    sink.wait_for_delivered(1, WAIT);
    wait_until(WAIT, "BAD1 in the dead-letter queue", || sluice.dead_letters("lab").len() == 1);

    let mut browser = open(&sluice, "dead-letters");
    browser.goto("/dead-letters");
    browser.wait_url("/dead-letters/lab$");
    browser.wait_text("#dead-letters", "BAD1");
    browser.wait_text("#dead-letters", "400");
    browser.screenshot("dead-letters");

    // Cancelling the confirmation does nothing.
    browser.click("#dead-letters tr:has-text('BAD1') button[data-action=purge]");
    browser.wait_visible("#confirm");
    browser.click("#confirm-cancel");
    assert_eq!(sluice.dead_letters("lab").len(), 1, "a cancelled purge purges nothing");

    // Traffic keeps flowing while the page acts.
    sink.answer_ok();
    send(&sluice, &["OK2"]);
    browser.click("#dead-letters tr:has-text('BAD1') button[data-action=replay]");
    browser.wait_visible("#confirm");
    browser.click("#confirm-ok");
    browser.wait_text(".notice", "Replayed 1 dead letter of lab.");
    sink.wait_for_delivered(3, WAIT);
    assert!(sink.delivered_ids().contains(&"BAD1".to_string()), "{:?}", sink.delivered_ids());
    browser.wait_text("#dead-letters", "No dead letters.");

    browser.goto("/messages?control_id=BAD1&state=delivered");
    browser.wait_text("#results", "lab: delivered");
    browser.click("#results tbody a");
    browser.wait_text("#history", "replayed");
    // The action is in the journal with the client's address.
    browser.wait_text("#history tr:has-text('replayed')", "admin API from 127.0.0.1:");
    assert_no_page_errors(&mut browser);
}

#[test]
fn with_a_token_the_page_shows_no_message_data_until_it_is_given() {
    let sluice = Sluice::start("[admin]\ntoken = \"s3cret-console\"\n");
    send(&sluice, &["SECRET-1"]);
    assert_eq!(http_get(sluice.admin_addr(), "/api/overview", None).0, 401, "the overview's data needs the token");
    assert_eq!(http_get(sluice.admin_addr(), "/messages", None).0, 200, "the page shell is served (it holds no data)");

    let mut browser = open(&sluice, "token");
    browser.goto("/messages?control_id=SECRET-1");
    browser.wait_visible("#token-form");
    let page = browser.body_text();
    assert!(!page.contains("SECRET-1") && !page.contains("PATSECRET-1") && !page.contains("lab"), "no message data without the token: {page}");
    browser.screenshot("token");

    browser.fill("#token", "wrong");
    browser.click("#token-form button");
    browser.wait_text(".notice", "That token was refused.");
    assert!(!browser.body_text().contains("SECRET-1"));

    browser.fill("#token", "s3cret-console");
    browser.click("#token-form button");
    browser.wait_text("#results", "SECRET-1");
    // Kept for the session: another page opens without asking again.
    browser.goto("/");
    browser.wait_text("#connectors", "lab");
    assert_eq!(browser.count("#token-form"), 0);
    assert_no_page_errors(&mut browser);
}
