//! `wasi:http` for plugins, behind the plugin's `allow.http` grants: the
//! crate's interfaces, with hooks that check every outgoing request before
//! it is sent and give it default timeouts when the plugin sets none.
//! Sending is the crate's default sender, but for https destinations with
//! TLS settings of their own (`super::https`).

use std::sync::Arc;
use std::time::Duration;

// The `http` crate of wasmtime-wasi-http's hook signature, through axum's
// re-export (the lock file has a single `http`, so the types are the same).
use axum::http;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use super::state::PluginState;
use crate::tls::OutboundTlsSet;

/// Used for each timeout the plugin leaves unset: the crate's own default is
/// ten minutes, far longer than any delivery attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
pub const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(30);

/// One `allow.http` entry: `host` (any port) or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    /// Lowercase, without the brackets of an IPv6 literal.
    host: String,
    port: Option<u16>,
}

impl HttpGrant {
    /// `None` for an entry that names no host; it then grants nothing.
    pub fn parse(entry: &str) -> Option<HttpGrant> {
        let entry = entry.trim();
        let (host, port) = split_host_port(entry)?;
        let port = match port {
            Some(port) => Some(port.parse().ok()?),
            None => None,
        };
        Some(HttpGrant { host: host.to_ascii_lowercase(), port })
    }

    /// Every valid entry; the loader has refused plugins with invalid ones.
    pub fn parse_all(entries: &[String]) -> Vec<HttpGrant> {
        entries.iter().filter_map(|entry| HttpGrant::parse(entry)).collect()
    }
}

/// Whether a request to `authority` under `scheme` is granted. The port
/// defaults from the scheme (a request without one is sent as https).
pub fn is_allowed(grants: &[HttpGrant], scheme: Option<&str>, authority: &str) -> bool {
    // Userinfo has no business in a plugin's request, and would make the
    // host ambiguous.
    if authority.contains('@') {
        return false;
    }
    let Some((host, port)) = split_host_port(authority) else { return false };
    let port = match port {
        Some(port) => match port.parse::<u16>() {
            Ok(port) => Some(port),
            Err(_) => return false,
        },
        None => match scheme.map(str::to_ascii_lowercase).as_deref() {
            Some("http") => Some(80),
            Some("https") | None => Some(443),
            Some(_) => None,
        },
    };
    grants.iter().any(|g| g.host.eq_ignore_ascii_case(host) && (g.port.is_none() || g.port == port))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` into the host (brackets
/// removed) and the port text. A bare IPv6 literal (several colons, no
/// brackets) is a host without a port.
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            after => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            _ => (text, None),
        }
    };
    (!host.is_empty()).then_some((host, port))
}

/// The hooks of one plugin's wasi:http: who is asking, what it may reach.
pub struct HttpGate {
    pub plugin: Arc<str>,
    pub grants: Arc<[HttpGrant]>,
    /// `[outbound_tls]`: destinations with their own CA or client certificate.
    pub tls: OutboundTlsSet,
}

type Sending =
    Box<dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>)>> + Send>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Sending {
        let uri = request.uri();
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        if !is_allowed(&self.grants, uri.scheme_str(), authority) {
            tracing::warn!(plugin = &*self.plugin, host = authority, "HTTP request denied: the host is not in the plugin's `allow.http`");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        if let Some((host, port)) = https_destination(uri)
            && let Some(tls) = self.tls.for_host(&host, port)
        {
            let sending = super::https::send(tls, host, port, request, with_default_timeouts(options));
            return Box::new(async move { sending.await.map(|(response, done)| (response, done as Box<dyn Future<Output = _> + Send>)) });
        }
        // The crate's own sender, as its default hooks would call it.
        wasmtime_wasi_http::default_hooks().send_request(request, Some(with_default_timeouts(options)), fut)
    }
}

/// The host and port of an https request (a request without a scheme is sent as https).
fn https_destination(uri: &http::Uri) -> Option<(String, u16)> {
    if uri.scheme_str().is_some_and(|scheme| !scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let authority = uri.authority()?;
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), authority.port_u16().unwrap_or(443)))
}

fn with_default_timeouts(options: Option<RequestOptions>) -> RequestOptions {
    let mut options = options.unwrap_or_default();
    options.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
    options.first_byte_timeout.get_or_insert(FIRST_BYTE_TIMEOUT);
    options.between_bytes_timeout.get_or_insert(BETWEEN_BYTES_TIMEOUT);
    options
}

/// Adds `wasi:http/types` and `wasi:http/outgoing-handler` (wasi:io comes
/// with WASI p2, added before).
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wasmtime_wasi_http::p2::body::{HostOutgoingBody, StreamContext};

    use super::*;

    /// A GET of `url` with an empty body, as the crate builds it for a guest.
    fn get(url: &str) -> http::Request<WasiBody> {
        let (writer, body) = HostOutgoingBody::new(StreamContext::Request, Some(0), 1, 1024);
        writer.finish(None).unwrap();
        let uri: http::Uri = url.parse().unwrap();
        let host = uri.authority().unwrap().to_string();
        http::Request::get(uri).header(http::header::HOST, host).body(body).unwrap()
    }

    fn gate(entries: &[&str]) -> HttpGate {
        HttpGate { plugin: Arc::from("fetcher"), grants: grants(entries).into(), tls: Default::default() }
    }

    async fn send(gate: &mut HttpGate, url: &str) -> wasmtime_wasi_http::Result<u16> {
        let sending = gate.send_request(get(url), None, Box::new(async { Ok(()) }));
        let (response, _io) = Box::into_pin(sending).await?;
        Ok(response.status().as_u16())
    }

    #[tokio::test]
    async fn a_request_to_an_ungranted_host_is_denied() {
        let err = send(&mut gate(&["api.example.org"]), "https://other.example.org/x").await.unwrap_err();
        assert!(matches!(err, wasmtime_wasi_http::Error::HttpRequestDenied), "{err:?}");
        let err = send(&mut gate(&["api.example.org:8443"]), "https://api.example.org/x").await.unwrap_err();
        assert!(matches!(err, wasmtime_wasi_http::Error::HttpRequestDenied), "443 is not granted: {err:?}");
    }

    #[tokio::test]
    async fn a_request_to_a_granted_host_is_sent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if stream.read(&mut byte).await.unwrap() == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
        });
        let status = send(&mut gate(&["LOCALHOST", &format!("127.0.0.1:{port}")]), &format!("http://127.0.0.1:{port}/x")).await.unwrap();
        assert_eq!(status, 204);
    }

    #[test]
    fn unset_timeouts_get_defaults_and_set_ones_are_kept() {
        let set = RequestOptions { connect_timeout: Some(Duration::from_secs(1)), ..RequestOptions::default() };
        let options = with_default_timeouts(Some(set));
        assert_eq!(options.connect_timeout, Some(Duration::from_secs(1)));
        assert_eq!(options.first_byte_timeout, Some(FIRST_BYTE_TIMEOUT));
        assert_eq!(options.between_bytes_timeout, Some(BETWEEN_BYTES_TIMEOUT));
        assert_eq!(with_default_timeouts(None).connect_timeout, Some(CONNECT_TIMEOUT));
    }

    fn grants(entries: &[&str]) -> Vec<HttpGrant> {
        HttpGrant::parse_all(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_host_alone_grants_every_port_and_host_port_only_that_port() {
        let g = grants(&["api.example.org", "lab.example.org:8443"]);
        for (scheme, authority) in [(Some("https"), "api.example.org"), (Some("http"), "api.example.org:8080"), (None, "api.example.org:1")] {
            assert!(is_allowed(&g, scheme, authority), "{authority}");
        }
        assert!(is_allowed(&g, Some("https"), "lab.example.org:8443"));
        assert!(!is_allowed(&g, Some("https"), "lab.example.org"), "443 is not 8443");
        assert!(!is_allowed(&g, Some("http"), "lab.example.org:80"));
        assert!(!is_allowed(&g, Some("https"), "other.example.org"));
        assert!(!is_allowed(&g, Some("https"), "example.org"));
        assert!(!is_allowed(&g, Some("https"), "api.example.org.evil.com"));
    }

    #[test]
    fn the_port_defaults_from_the_scheme() {
        let g = grants(&["web:80", "secure:443"]);
        assert!(is_allowed(&g, Some("http"), "web"));
        assert!(!is_allowed(&g, Some("https"), "web"));
        assert!(is_allowed(&g, Some("https"), "secure"));
        assert!(is_allowed(&g, None, "secure"), "no scheme is sent as https");
        assert!(!is_allowed(&g, Some("http"), "secure"));
        assert!(!is_allowed(&g, Some("ftp"), "web"), "no default port for other schemes");
    }

    #[test]
    fn hosts_compare_without_case() {
        let g = grants(&["API.Example.ORG:443"]);
        assert!(is_allowed(&g, Some("https"), "api.example.org"));
        assert!(is_allowed(&g, Some("https"), "Api.EXAMPLE.org:443"));
    }

    #[test]
    fn ipv6_literals_userinfo_and_bad_entries() {
        let g = grants(&["[::1]:8080", "::2", "", ":80", "host:notaport"]);
        assert_eq!(g.len(), 2, "entries without a host or with a bad port grant nothing");
        assert!(is_allowed(&g, Some("http"), "[::1]:8080"));
        assert!(!is_allowed(&g, Some("http"), "[::1]"));
        assert!(is_allowed(&g, Some("https"), "[::2]:9"));
        let open = grants(&["api"]);
        assert!(!is_allowed(&open, Some("https"), "user@api"));
        assert!(!is_allowed(&open, Some("https"), "api:99999"));
        assert!(!is_allowed(&open, Some("https"), ""));
        assert!(!is_allowed(&[], Some("https"), "api"), "nothing granted, nothing allowed");
    }
}
