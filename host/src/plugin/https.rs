//! HTTPS to a destination with TLS settings of its own
//! (`[outbound_tls."host:port"]`: a private CA, a client certificate). Any
//! other request goes to wasmtime-wasi-http's default sender, which trusts
//! the public web roots. One connection per request, like that sender; the
//! connector's `attempt_timeout` bounds a slow body.

use std::sync::Arc;

use axum::http;
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::http::{CONNECT_TIMEOUT, FIRST_BYTE_TIMEOUT};
use crate::tls::ClientTls;

/// The response, and the connection's own future (done once the body is read).
pub type Sent = (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>);

pub async fn send(tls: Arc<ClientTls>, host: String, port: u16, mut request: http::Request<WasiBody>, options: RequestOptions) -> Result<Sent, Error> {
    let connect_timeout = options.connect_timeout.unwrap_or(CONNECT_TIMEOUT);
    let tcp = match timeout(connect_timeout, TcpStream::connect((host.as_str(), port))).await {
        Ok(connected) => connected.map_err(Error::Connect)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    let _ = tcp.set_nodelay(true);
    let stream = match timeout(connect_timeout, tls.connect(tcp)).await {
        Ok(done) => done.map_err(Error::Tls)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);

    // Origin-form target, as a request to the server itself (not a proxy) has.
    let authority = request.uri().authority().map(|a| a.as_str().to_string()).unwrap_or_default();
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = http::Uri::builder().path_and_query(target).build().map_err(|_| Error::HttpRequestUriInvalid)?;
    if !request.headers().contains_key(http::header::HOST) {
        let host = http::HeaderValue::from_str(&authority).map_err(|_| Error::HttpRequestUriInvalid)?;
        request.headers_mut().insert(http::header::HOST, host);
    }

    let first_byte = options.first_byte_timeout.unwrap_or(FIRST_BYTE_TIMEOUT);
    let response = match timeout(first_byte, sender.send_request(request)).await {
        Ok(response) => response?,
        Err(_) => return Err(Error::ConnectionReadTimeout),
    };
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let finished = Box::new(async move {
        match connection.await {
            Ok(done) => done.map_err(Error::from),
            Err(_) => Err(Error::ConnectionTerminated),
        }
    });
    Ok((response, finished))
}
