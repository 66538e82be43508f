//! How the CLI talks to a running `sluice serve`: plain HTTP to its admin
//! endpoint (the server holds the store's lock). The server is found by
//! `--admin`, else the address it wrote to `DATA_DIR/admin.addr`, else
//! config `admin.listen`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Config;

/// Where the running server is; every command that needs it takes these.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// The server's admin endpoint, `127.0.0.1:9275` or a URL (default:
    /// the address in DATA_DIR/admin.addr, then config `admin.listen`).
    #[arg(long = "admin", value_name = "ADDR")]
    pub url: Option<String>,
    /// Bearer token for the admin endpoint (default: config `admin.token`).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

pub struct AdminClient {
    base: String,
    /// Where `base` came from, for error messages.
    source: String,
    token: Option<String>,
    agent: ureq::Agent,
    /// The configured data directory, and whether a store is in it.
    data_dir: std::path::PathBuf,
}

impl AdminClient {
    pub fn new(args: &AdminArgs, config: &Config) -> anyhow::Result<AdminClient> {
        let (base, source) = resolve(args, config)?;
        let agent = ureq::Agent::config_builder()
            // Error answers carry a JSON reason worth showing.
            .http_status_as_error(false)
            // Loopback: a proxy from the environment would only get in the way.
            .proxy(None)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        let token = args.token.clone().or_else(|| config.admin.token.clone());
        Ok(AdminClient { base, source, token, agent, data_dir: config.data_dir.clone() })
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        self.answer(path, request.call())
    }

    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> anyhow::Result<T> {
        let mut request = self.agent.post(format!("{}{path}", self.base)).header("Content-Type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        self.answer(path, request.send(body.to_string()))
    }

    fn answer<T: DeserializeOwned>(&self, path: &str, sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> anyhow::Result<T> {
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => bail!("{}", self.unreachable(&err)),
        };
        let status = response.status();
        // Listings can be long (a whole backlog): no size limit from this side.
        let text = response.body_mut().with_config().limit(u64::MAX).read_to_string().with_context(|| format!("reading the answer of {}{path}", self.base))?;
        if status.is_success() {
            return serde_json::from_str(&text).with_context(|| format!("{}{path} answered something that is not the expected JSON", self.base));
        }
        let reason = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["error"].as_str().map(str::to_string)).unwrap_or(text);
        match status.as_u16() {
            401 => bail!("the admin endpoint at {} refused: {reason} (give --token, or set admin.token)", self.base),
            // The server's reason names the connector or dead letter.
            400 | 404 => bail!("{reason}"),
            code => bail!("the admin endpoint at {} answered {code}: {reason}", self.base),
        }
    }

    fn unreachable(&self, err: &ureq::Error) -> String {
        let mut text = format!("cannot reach the admin endpoint at {} ({err}; address from {}): `sluice serve` must be running", self.base, self.source);
        if !self.data_dir.join("CURRENT").exists() {
            text.push_str(&format!(" (and there is no Sluice store in {})", self.data_dir.display()));
        }
        text
    }
}

/// The base URL and where it came from.
fn resolve(args: &AdminArgs, config: &Config) -> anyhow::Result<(String, String)> {
    if let Some(url) = &args.url {
        let url = url.trim_end_matches('/');
        let url = if url.contains("://") { url.to_string() } else { format!("http://{url}") };
        return Ok((url, "--admin".into()));
    }
    let file = config.data_dir.join(crate::admin::ADDR_FILE);
    if let Some(addr) = crate::admin::read_addr_file(&config.data_dir) {
        return Ok((base_url(addr), file.display().to_string()));
    }
    match config.admin.listen_addr() {
        None => bail!("the admin endpoint is off (admin.listen = \"off\"); the CLI needs it: give --admin URL or turn it on"),
        Some(Err(err)) => bail!("configuration key `admin.listen`: `{}` is not an address ({err})", config.admin.listen),
        Some(Ok(addr)) if addr.port() == 0 => bail!(
            "no {} (`sluice serve` writes it while it runs) and admin.listen has port 0: is the server running with data_dir {}?",
            file.display(),
            config.data_dir.display()
        ),
        Some(Ok(addr)) => Ok((base_url(addr), "config admin.listen".into())),
    }
}

/// A server bound to every interface is reached on loopback.
fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: Option<&str>) -> AdminArgs {
        AdminArgs { url: url.map(str::to_string), token: None }
    }

    #[test]
    fn the_flag_wins_then_the_address_file_then_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        assert_eq!(resolve(&args(Some("localhost:9/")), &config).unwrap().0, "http://localhost:9");
        assert_eq!(resolve(&args(None), &config).unwrap().0, "http://127.0.0.1:9275");
        config.admin.listen = "0.0.0.0:2581".into();
        assert_eq!(resolve(&args(None), &config).unwrap().0, "http://127.0.0.1:2581", "unspecified means loopback");
        let _file = crate::admin::AddrFile::write(dir.path(), "127.0.0.1:45678".parse().unwrap()).unwrap();
        assert_eq!(resolve(&args(None), &config).unwrap().0, "http://127.0.0.1:45678");
        assert_eq!(resolve(&args(Some("http://[::1]:7")), &config).unwrap().0, "http://[::1]:7");
    }

    #[test]
    fn a_server_that_is_not_running_is_named_with_the_address_tried() {
        let dir = tempfile::tempdir().unwrap();
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = Config { data_dir: dir.path().join("nowhere"), ..Config::default() };
        let client = AdminClient::new(&args(Some(&format!("127.0.0.1:{port}"))), &config).unwrap();
        let err = client.get::<Value>("/api/outbox").unwrap_err().to_string();
        assert!(err.contains(&format!("http://127.0.0.1:{port}")), "{err}");
        assert!(err.contains("`sluice serve` must be running"), "{err}");
        assert!(err.contains("no Sluice store in"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}
