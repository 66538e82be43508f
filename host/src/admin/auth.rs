//! Bearer-token check for every route but the health probes (which load
//! balancers and orchestrators call without credentials) and the console's
//! data-free pages. Without a token, the endpoint is on loopback, and it
//! answers only requests addressed to a loopback name or an IP address: a
//! web page elsewhere whose own name is made to resolve to 127.0.0.1 (DNS
//! rebinding) would otherwise read messages through the analyst's browser.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The middleware: passes the request on when `token` is unset or matches.
pub async fn require_token(State(token): State<Option<Arc<str>>>, request: Request, next: Next) -> Response {
    let Some(token) = token else {
        let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !addressed_to_this_machine(host) {
            let reason = format!("the admin endpoint answers requests for an IP address or localhost only, not for `{host}` (or set admin.token)");
            return ApiError::Forbidden(reason).into_response();
        }
        return next.run(request).await;
    };
    let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => next.run(request).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

/// The credentials of `Bearer <token>` (the scheme is case-insensitive, RFC 7235).
fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim_start())
}

/// A `Host` header that no other site's page can have: an IP address
/// (with or without a port) or `localhost`. A request without one (HTTP/1.0
/// clients, some probes) is not from a browser.
fn addressed_to_this_machine(host: &str) -> bool {
    if host.is_empty() {
        return true;
    }
    let name = match host.strip_prefix('[') {
        Some(v6) => return v6.split_once(']').is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name.parse::<std::net::IpAddr>().is_ok() || name == "localhost" || name.ends_with(".localhost")
}

/// Compares without stopping at the first difference, so the time taken
/// says nothing about how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::{addressed_to_this_machine, bearer, constant_time_eq};

    #[test]
    fn without_a_token_only_requests_for_an_address_or_localhost_pass() {
        for host in ["127.0.0.1:9275", "127.0.0.1", "localhost:9275", "LOCALHOST", "app.localhost:1", "[::1]:9275", "10.1.2.3:9275", ""] {
            assert!(addressed_to_this_machine(host), "{host}");
        }
        for host in ["evil.example:9275", "evil.example", "127.0.0.1.evil.example:9275", "[::1", "localhost.evil.example"] {
            assert!(!addressed_to_this_machine(host), "{host}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn equal_only_when_every_byte_and_the_length_match() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3cres"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
