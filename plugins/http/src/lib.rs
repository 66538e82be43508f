//! Stock connector `http`: POSTs each message, as received, to an HTTP
//! endpoint through the engine's `wasi:http` client.
//!
//! Settings:
//!
//! | key            | default                     | meaning                                              |
//! |----------------|-----------------------------|------------------------------------------------------|
//! | `url`          | required                    | where to POST: `http://host[:port]/path[?query]` (`https://` too) |
//! | `content_type` | `"x-application/hl7-v2+er7"` | the request's `Content-Type`                         |
//! | `headers`      | none                        | extra request headers: `{ Authorization = "Bearer ..." }` |
//! | `timeout`      | `"30s"`                     | limit for connecting, for the first response byte and between bytes: `"500ms"`, `"2m"`, or milliseconds |
//!
//! The default content type is the one HL7 over HTTP (HAPI's HL7-over-HTTP
//! specification) and most HL7 HTTP receivers use for ER7, the pipe-delimited
//! encoding. The engine makes only the requests the configuration grants
//! the plugin:
//!
//! ```toml
//! [connectors.ehr]
//! plugin = "http"
//! config = { url = "http://ehr.example:8080/hl7", headers = { Authorization = "Bearer s3cret" } }
//!
//! [plugins.http]
//! allow.http = ["ehr.example:8080"]
//! ```
//!
//! | answer                                   | delivery                           |
//! |------------------------------------------|------------------------------------|
//! | 2xx                                      | delivered                          |
//! | 408, 429                                 | retry                              |
//! | other 4xx                                | reject (dead letter)               |
//! | 5xx, 3xx (redirects are not followed), anything else | retry                  |
//! | no connection, timeout, request denied by the engine | retry                  |
//!
//! A 2xx is delivered whatever its body says: an HL7 ACK in it is not read.
//! The reason text of a retry or reject gives the status and the start of
//! the response body (200 bytes). The body is read to its end (up to
//! 64 KiB), so the connection can serve the next message.
//!
//! Settings that cannot be used (a missing or unknown key, a URL that is
//! not `http://` or `https://`, a header the engine would refuse) reject
//! every message with a text naming the setting.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use sluice_sdk::{Connector, Delivery, Issue, Message};

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod wasi;

#[cfg(not(target_arch = "wasm32"))]
use native as client;
#[cfg(target_arch = "wasm32")]
use wasi as client;

pub struct Http;

sluice_sdk::export_connector!(Http);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    url: String,
    #[serde(default = "default_content_type")]
    content_type: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "default_timeout", deserialize_with = "sluice_sdk::settings::duration")]
    timeout: Duration,
}

fn default_content_type() -> String {
    "x-application/hl7-v2+er7".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// How much of a response body a reason text quotes.
const QUOTED: usize = 200;

/// Headers the engine's HTTP client refuses from a plugin
/// (wasmtime-wasi-http's forbidden list): refused in `headers` up front with
/// a clear text rather than on every request.
const FORBIDDEN_HEADERS: &[&str] =
    &["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "transfer-encoding", "upgrade", "host", "http2-settings"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// One POST, as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    scheme: Scheme,
    /// `host[:port]`
    authority: String,
    /// `/path?query`, never empty.
    path_with_query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// For connecting, the first response byte and between bytes.
    timeout: Duration,
}

/// What came back: the status, and the body up to 64 KiB.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Response {
    status: u16,
    /// The `Location` header, for the text of a redirect.
    location: Option<String>,
    body: Vec<u8>,
    /// Why the body could not be read to its end, when it could not.
    body_error: Option<String>,
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientError {
    /// The engine refuses to build this request: a settings problem.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code, reason = "only the wasi:http client refuses requests"))]
    Refused(String),
    /// The request failed on the way (connection, timeout, denied by the
    /// engine's grants): the receiver may or may not have it.
    Failed(String),
}

impl Connector for Http {
    fn deliver(msg: &Message, _attempt: u32) -> Delivery {
        let (settings, target) = match read_settings() {
            Ok(read) => read,
            Err(issue) => return Delivery::Reject(issue.text),
        };
        let body = msg.raw();
        let mut headers: Vec<(String, Vec<u8>)> = vec![
            ("content-type".to_owned(), settings.content_type.into_bytes()),
            // Explicit, so the body is not sent chunked: some HL7 receivers
            // do not take chunked requests.
            ("content-length".to_owned(), body.len().to_string().into_bytes()),
        ];
        headers.extend(settings.headers.into_iter().map(|(name, value)| (name, value.into_bytes())));
        let request =
            Request { scheme: target.scheme, authority: target.authority, path_with_query: target.path_with_query, headers, body, timeout: settings.timeout };
        match client::post(&request) {
            Ok(response) => judge(&response, &target.shown),
            Err(ClientError::Refused(why)) => Delivery::Reject(Issue::invalid_settings(why).text),
            Err(ClientError::Failed(why)) => Delivery::Retry(format!("POST {} failed: {why}", target.shown)),
        }
    }
}

fn read_settings() -> Result<(Settings, Target), Issue> {
    let settings: Settings = sluice_sdk::settings()?;
    let target = Target::parse(&settings.url).map_err(|why| Issue::invalid_settings(format_args!("`url`: {why}")))?;
    check_header_value(&settings.content_type).map_err(|why| Issue::invalid_settings(format_args!("`content_type`: {why}")))?;
    for (name, value) in &settings.headers {
        check_header(name, value).map_err(|why| Issue::invalid_settings(format_args!("`headers.{name}`: {why}")))?;
    }
    if settings.timeout.is_zero() {
        return Err(Issue::invalid_settings("`timeout`: must be more than 0"));
    }
    Ok((settings, target))
}

/// The parts of `url` a wasi:http request takes.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
    /// The URL for reason texts, without its query: a query may carry a key.
    shown: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(format!("`{url}`: the scheme must be http or https, not `{scheme}`")),
        };
        if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{url}` contains {c:?}; percent-encode it"));
        }
        // The fragment is the client's business, never sent.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_with_query) = rest.split_at(authority_end);
        if authority.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        if authority.contains('@') {
            return Err(format!("`{url}`: credentials in the URL are not sent; use `headers` (Authorization)"));
        }
        check_port(authority).map_err(|why| format!("`{url}`: {why}"))?;
        let path_with_query = match path_with_query {
            "" => "/".to_owned(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_owned(),
        };
        let path = path_with_query.split_once('?').map_or(path_with_query.as_str(), |(path, _)| path);
        let shown = format!("{}://{authority}{path}", scheme.as_str());
        Ok(Target { scheme, authority: authority.to_owned(), path_with_query, shown })
    }
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A port, when the authority has one, is a number from 1 to 65535.
fn check_port(authority: &str) -> Result<(), String> {
    // `[::1]:8080`: the port follows the bracket; `host:8080` the colon.
    let after_host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(_, after)| after).ok_or("an IPv6 address without its closing `]`")?,
        None => authority.find(':').map_or("", |at| &authority[at..]),
    };
    match after_host.strip_prefix(':') {
        None if after_host.is_empty() => Ok(()),
        Some(port) if matches!(port.parse::<u16>(), Ok(1..)) => Ok(()),
        _ => Err(format!("`{after_host}` after the host is not a port (1 to 65535)")),
    }
}

/// A field name is an HTTP token (RFC 9110 5.1); names the plugin sets or
/// the engine forbids are refused.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_tchar) {
        return Err("not a valid header name".to_owned());
    }
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "content-type" => return Err("set by the plugin; use `content_type`".to_owned()),
        "content-length" => return Err("set by the plugin, to the message's length".to_owned()),
        _ => {}
    }
    if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
        return Err("the engine's HTTP client sets this header itself and refuses it from a plugin".to_owned());
    }
    check_header_value(value)
}

/// No line breaks or other control characters (a tab is allowed): they
/// would split or end the header.
fn check_header_value(value: &str) -> Result<(), String> {
    match value.chars().find(|&c| c.is_control() && c != '\t') {
        Some(c) => Err(format!("the value contains {c:?}, which a header cannot carry")),
        None => Ok(()),
    }
}

/// The delivery a response stands for; see the table in the crate docs.
fn judge(response: &Response, shown: &str) -> Delivery {
    let status = response.status;
    if (200..300).contains(&status) {
        return Delivery::Delivered;
    }
    let mut text = format!("POST {shown} answered HTTP {status}");
    if (300..400).contains(&status) {
        text.push_str(" (redirects are not followed");
        if let Some(location) = &response.location {
            text.push_str(&format!("; set `url` to {location}"));
        }
        text.push(')');
    }
    text.push_str(&quote(&response.body));
    if let Some(why) = &response.body_error {
        text.push_str(&format!(" (body cut short: {why})"));
    }
    match status {
        408 | 429 => Delivery::Retry(text),
        400..=499 => Delivery::Reject(text),
        _ => Delivery::Retry(text),
    }
}

/// `: ` and the start of the body on one line, or nothing when it is
/// empty. Bytes that are not UTF-8 show as U+FFFD; line breaks (an ACK's
/// segments) as one space.
fn quote(body: &[u8]) -> String {
    let cut = body.len().min(QUOTED);
    let lossy = String::from_utf8_lossy(&body[..cut]);
    let text = lossy.split(char::is_control).map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return String::new();
    }
    let more = if body.len() > cut { "…" } else { "" };
    format!(": {text}{more}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_sdk::{Delivery, testing};

    use super::native::{requests, with_server};
    use super::{ClientError, Http, Request, Response, Scheme, Target, check_port};

    const ORU: &str = "MSH|^~\\&|LAB|MAIN|EHR|WARD|20240101120000||ORU^R01|MSG1|P|2.5\nOBX|1|NM|GLU||5.4";
    const ORU_RAW: &[u8] = b"MSH|^~\\&|LAB|MAIN|EHR|WARD|20240101120000||ORU^R01|MSG1|P|2.5\rOBX|1|NM|GLU||5.4";
    const SETTINGS: &str = r#"{"url": "http://ehr.example:8080/hl7/in?key=s3cret"}"#;

    fn status(status: u16, body: &str) -> Response {
        Response { status, body: body.as_bytes().to_vec(), ..Response::default() }
    }

    /// Delivers ORU with `settings` to a server answering `response`.
    fn answered(response: Result<Response, ClientError>, settings: &str) -> Delivery {
        with_server(move |_| response.clone(), || testing::deliver::<Http>(ORU, 1, settings))
    }

    #[track_caller]
    fn assert_bad_settings(settings: &str, says: &str) {
        // No server: a request would fail the test with a retry.
        let delivery = testing::deliver::<Http>(ORU, 1, settings);
        let Delivery::Reject(text) = delivery else { panic!("expected a reject for {settings}, got {delivery:?}") };
        assert!(text.starts_with("invalid plugin settings: "), "{text}");
        assert!(text.contains(says), "`{text}` should say `{says}`");
    }

    #[test]
    fn posts_the_raw_message() {
        let settings = r#"{"url": "http://ehr.example:8080/hl7/in?key=s3cret", "headers": {"Authorization": "Bearer t", "X-Source": "sluice"}}"#;
        assert_eq!(answered(Ok(status(200, "")), settings), Delivery::Delivered);
        let want = Request {
            scheme: Scheme::Http,
            authority: "ehr.example:8080".into(),
            path_with_query: "/hl7/in?key=s3cret".into(),
            headers: vec![
                ("content-type".into(), b"x-application/hl7-v2+er7".to_vec()),
                ("content-length".into(), ORU_RAW.len().to_string().into_bytes()),
                ("Authorization".into(), b"Bearer t".to_vec()),
                ("X-Source".into(), b"sluice".to_vec()),
            ],
            body: ORU_RAW.to_vec(),
            timeout: Duration::from_secs(30),
        };
        assert_eq!(requests(), [want]);
    }

    #[test]
    fn takes_content_type_and_timeout() {
        let settings = r#"{"url": "https://ehr.example/hl7", "content_type": "text/plain; charset=utf-8", "timeout": "2s"}"#;
        assert_eq!(answered(Ok(status(204, "")), settings), Delivery::Delivered);
        let request = &requests()[0];
        assert_eq!((request.scheme, request.authority.as_str(), request.timeout), (Scheme::Https, "ehr.example", Duration::from_secs(2)));
        assert_eq!(request.headers[0], ("content-type".into(), b"text/plain; charset=utf-8".to_vec()));
        answered(Ok(status(200, "")), r#"{"url": "http://ehr.example", "timeout": 1500}"#);
        assert_eq!(requests()[0].timeout, Duration::from_millis(1500), "a number is milliseconds");
    }

    #[test]
    fn success_is_any_2xx() {
        for code in [200, 201, 202, 204, 299] {
            assert_eq!(answered(Ok(status(code, "MSH|...\rMSA|AE|MSG1")), SETTINGS), Delivery::Delivered, "{code}");
        }
    }

    #[test]
    fn client_errors_reject_but_timeouts_and_throttling_retry() {
        let want = "POST http://ehr.example:8080/hl7/in answered HTTP 400: unknown patient 42";
        assert_eq!(answered(Ok(status(400, "unknown patient 42\r\n")), SETTINGS), Delivery::Reject(want.into()));
        let want = "POST http://ehr.example:8080/hl7/in answered HTTP 409: duplicate MSA|AR|MSG1";
        assert_eq!(answered(Ok(status(409, "duplicate\r\n\r\nMSA|AR|MSG1\r")), SETTINGS), Delivery::Reject(want.into()));
        let want = "POST http://ehr.example:8080/hl7/in answered HTTP 404";
        assert_eq!(answered(Ok(status(404, "")), SETTINGS), Delivery::Reject(want.into()));
        assert!(matches!(answered(Ok(status(408, "")), SETTINGS), Delivery::Retry(_)));
        let want = "POST http://ehr.example:8080/hl7/in answered HTTP 429: slow down";
        assert_eq!(answered(Ok(status(429, "slow down")), SETTINGS), Delivery::Retry(want.into()));
    }

    #[test]
    fn server_errors_and_redirects_retry() {
        let want = "POST http://ehr.example:8080/hl7/in answered HTTP 503: MSH|^~\\&|EHR MSA|AE|MSG1";
        assert_eq!(answered(Ok(status(503, "MSH|^~\\&|EHR\rMSA|AE|MSG1\r")), SETTINGS), Delivery::Retry(want.into()));
        let moved = Response { status: 301, location: Some("http://ehr2.example/hl7".into()), ..Response::default() };
        let want = "POST http://ehr.example:8080/hl7/in answered HTTP 301 (redirects are not followed; set `url` to http://ehr2.example/hl7)";
        assert_eq!(answered(Ok(moved), SETTINGS), Delivery::Retry(want.into()));
        assert!(matches!(answered(Ok(status(100, "")), SETTINGS), Delivery::Retry(_)));
    }

    #[test]
    fn quotes_the_start_of_the_body() {
        let long = format!("{}{}", "é".repeat(99), "x".repeat(500));
        let Delivery::Reject(text) = answered(Ok(status(422, &long)), SETTINGS) else { panic!("expected a reject") };
        assert_eq!(text, format!("POST http://ehr.example:8080/hl7/in answered HTTP 422: {}xx…", "é".repeat(99)));
        let cut = Response { status: 500, body: b"partial".to_vec(), body_error: Some("connection reset".into()), ..Response::default() };
        let want = "POST http://ehr.example:8080/hl7/in answered HTTP 500: partial (body cut short: connection reset)";
        assert_eq!(answered(Ok(cut), SETTINGS), Delivery::Retry(want.into()));
    }

    #[test]
    fn transport_errors_retry() {
        let want = "POST http://ehr.example:8080/hl7/in failed: connection refused";
        assert_eq!(answered(Err(ClientError::Failed("connection refused".into())), SETTINGS), Delivery::Retry(want.into()));
        let want = "invalid plugin settings: `headers`: the engine refuses them (forbidden)";
        assert_eq!(answered(Err(ClientError::Refused("`headers`: the engine refuses them (forbidden)".into())), SETTINGS), Delivery::Reject(want.into()));
    }

    #[test]
    fn parses_urls() {
        let parse = |url: &str| Target::parse(url).map(|t| (t.scheme, t.authority, t.path_with_query, t.shown));
        let http = |a: &str, p: &str, s: &str| Ok((Scheme::Http, a.to_owned(), p.to_owned(), s.to_owned()));
        assert_eq!(parse("http://ehr.example"), http("ehr.example", "/", "http://ehr.example/"));
        assert_eq!(parse("HTTP://ehr.example:8080/a/b?x=1&y=2#frag"), http("ehr.example:8080", "/a/b?x=1&y=2", "http://ehr.example:8080/a/b"));
        assert_eq!(parse("http://ehr.example?k=v"), http("ehr.example", "/?k=v", "http://ehr.example/"));
        assert_eq!(parse("http://[::1]:8080/hl7"), http("[::1]:8080", "/hl7", "http://[::1]:8080/hl7"));
        assert_eq!(parse("https://ehr.example/hl7").unwrap().0, Scheme::Https);
        assert!(check_port("h:1").is_ok() && check_port("[::1]").is_ok() && check_port("h").is_ok());
    }

    #[test]
    fn refuses_settings_it_cannot_use() {
        assert_bad_settings("{}", "missing field `url`");
        assert_bad_settings(r#"{"url": "http://h", "header": {}}"#, "unknown field `header`");
        assert_bad_settings(r#"{"url": ["http://h"]}"#, "`url`: invalid type: sequence");
        assert_bad_settings(r#"{"url": "ehr.example/hl7"}"#, "`url`: `ehr.example/hl7` is not an http:// or https:// URL");
        assert_bad_settings(r#"{"url": "ftp://ehr.example/"}"#, "`url`: `ftp://ehr.example/`: the scheme must be http or https, not `ftp`");
        assert_bad_settings(r#"{"url": "http:///hl7"}"#, "`url`: `http:///hl7` has no host");
        assert_bad_settings(r#"{"url": "http://u:p@ehr.example/"}"#, "credentials in the URL are not sent");
        assert_bad_settings(r#"{"url": "http://ehr.example:http/"}"#, "`:http` after the host is not a port");
        assert_bad_settings(r#"{"url": "http://ehr.example:0/"}"#, "`:0` after the host is not a port");
        assert_bad_settings(r#"{"url": "http://[::1/"}"#, "an IPv6 address without its closing `]`");
        assert_bad_settings(r#"{"url": "http://ehr.example/a b"}"#, "contains ' '; percent-encode it");
        assert_bad_settings(r#"{"url": "http://h", "headers": {"X Bad": "1"}}"#, "`headers.X Bad`: not a valid header name");
        assert_bad_settings(r#"{"url": "http://h", "headers": {"X-Ok": "a\r\nInjected: 1"}}"#, "`headers.X-Ok`: the value contains '\\r'");
        assert_bad_settings(
            r#"{"url": "http://h", "headers": {"Content-Type": "text/plain"}}"#,
            "`headers.Content-Type`: set by the plugin; use `content_type`",
        );
        assert_bad_settings(r#"{"url": "http://h", "headers": {"content-length": "1"}}"#, "`headers.content-length`: set by the plugin");
        assert_bad_settings(r#"{"url": "http://h", "headers": {"Host": "other"}}"#, "`headers.Host`: the engine's HTTP client sets this header itself");
        assert_bad_settings(r#"{"url": "http://h", "headers": {"X-N": 1}}"#, "`headers.X-N`: invalid type: integer `1`");
        assert_bad_settings(r#"{"url": "http://h", "content_type": "a\nb"}"#, "`content_type`: the value contains '\\n'");
        assert_bad_settings(r#"{"url": "http://h", "timeout": "later"}"#, "`timeout`: `later` is not a duration");
        assert_bad_settings(r#"{"url": "http://h", "timeout": 0}"#, "`timeout`: must be more than 0");
    }
}
