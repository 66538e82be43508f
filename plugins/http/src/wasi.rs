//! The POST through wasi:http (`wasi:http/outgoing-handler@0.2.12`), one
//! blocking call after another: a connector handles one message at a time.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{self as http, ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest, RequestOptions};
use wasip2::io::streams::StreamError;

use crate::{ClientError, Request, Response, Scheme};

/// How much of a response body is read; the rest is left unread (and the
/// connection with it).
const BODY_LIMIT: usize = 64 * 1024;
/// wasi:io takes at most 4096 bytes per blocking write.
const WRITE_CHUNK: usize = 4096;

pub(crate) fn post(request: &Request) -> Result<Response, ClientError> {
    let fields =
        Fields::from_list(&request.headers).map_err(|err| ClientError::Refused(format!("`headers`: the engine refuses them ({})", header_error(err))))?;
    let outgoing = OutgoingRequest::new(fields);
    let scheme = match request.scheme {
        Scheme::Http => http::Scheme::Http,
        Scheme::Https => http::Scheme::Https,
    };
    let refused = |part: &str| ClientError::Refused(format!("`url`: the engine refuses its {part}"));
    outgoing.set_method(&Method::Post).map_err(|()| refused("method"))?;
    outgoing.set_scheme(Some(&scheme)).map_err(|()| refused("scheme"))?;
    outgoing.set_authority(Some(&request.authority)).map_err(|()| refused("host"))?;
    outgoing.set_path_with_query(Some(&request.path_with_query)).map_err(|()| refused("path"))?;
    let body = outgoing.body().map_err(|()| ClientError::Failed("the request body is not available".to_owned()))?;

    let options = RequestOptions::new();
    let timeout = Some(u64::try_from(request.timeout.as_nanos()).unwrap_or(u64::MAX));
    // A client may not support every timeout (`Err`); the engine's deadline
    // for the call still bounds it.
    let _ = options.set_connect_timeout(timeout);
    let _ = options.set_first_byte_timeout(timeout);
    let _ = options.set_between_bytes_timeout(timeout);

    let pending = outgoing_handler::handle(outgoing, Some(options)).map_err(|code| ClientError::Failed(describe(&code)))?;
    // A receiver may answer before reading the whole body (413, 401): its
    // answer then decides, and the write error only when there is none.
    let written = write_body(body, &request.body);
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(ClientError::Failed(describe(&code))),
        Some(Err(())) | None => return Err(ClientError::Failed(written.err().unwrap_or_else(|| "no response".to_owned()))),
    };
    Ok(read_response(&response))
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    let stream = body.write().map_err(|()| "the request body cannot be written".to_owned())?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(chunk).map_err(|err| format!("sending the message: {}", stream_error(err)))?;
    }
    // The stream is the body's child: it goes first.
    drop(stream);
    OutgoingBody::finish(body, None).map_err(|code| format!("sending the message: {}", describe(&code)))
}

/// The status, the `Location` header and the body up to [`BODY_LIMIT`].
fn read_response(response: &IncomingResponse) -> Response {
    let status = response.status();
    let location = response.headers().get("location").into_iter().next().map(|value| String::from_utf8_lossy(&value).into_owned());
    let mut read = Response { status, location, ..Response::default() };
    let Ok(body) = response.consume() else {
        read.body_error = Some("the response body is not available".to_owned());
        return read;
    };
    if let Ok(stream) = body.stream() {
        while read.body.len() < BODY_LIMIT {
            let want = u64::try_from(BODY_LIMIT - read.body.len()).unwrap_or(u64::MAX);
            match stream.blocking_read(want) {
                Ok(chunk) => read.body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(err) => {
                    read.body_error = Some(stream_error(err));
                    break;
                }
            }
        }
        drop(stream);
    }
    // Trailers are of no use here; finishing releases the body.
    drop(IncomingBody::finish(body));
    read
}

fn stream_error(err: StreamError) -> String {
    match err {
        StreamError::Closed => "the connection closed".to_owned(),
        StreamError::LastOperationFailed(err) => match http::http_error_code(&err) {
            Some(code) => describe(&code),
            None => err.to_debug_string(),
        },
    }
}

fn header_error(err: http::HeaderError) -> &'static str {
    match err {
        http::HeaderError::InvalidSyntax => "invalid syntax",
        http::HeaderError::Forbidden => "a forbidden header",
        http::HeaderError::Immutable => "immutable",
    }
}

/// The usual failures in words; the rest as wasi:http names them.
fn describe(code: &ErrorCode) -> String {
    let text = match code {
        ErrorCode::DnsTimeout => "DNS lookup timed out",
        ErrorCode::DnsError(_) => "DNS lookup failed",
        ErrorCode::DestinationNotFound => "host not found",
        ErrorCode::DestinationUnavailable => "host unavailable",
        ErrorCode::ConnectionRefused => "connection refused",
        ErrorCode::ConnectionTerminated => "connection closed before the response",
        ErrorCode::ConnectionTimeout => "connecting timed out",
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => "no response in time",
        ErrorCode::ConnectionWriteTimeout => "sending timed out",
        ErrorCode::HttpRequestDenied => "the engine does not allow this request (grant the host with allow.http)",
        ErrorCode::TlsCertificateError => "the server's TLS certificate is not trusted",
        ErrorCode::HttpResponseIncomplete => "incomplete response",
        other => return format!("{other:?}").trim_start_matches("ErrorCode::").to_owned(),
    };
    text.to_owned()
}
