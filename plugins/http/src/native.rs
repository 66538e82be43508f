//! Natively there is no wasi:http: unit tests play the server with
//! [`with_server`], and anything else gets a failed request.

use std::cell::RefCell;

use crate::{ClientError, Request, Response};

type Server = Box<dyn FnMut(&Request) -> Result<Response, ClientError>>;

thread_local! {
    static SERVER: RefCell<Option<Server>> = const { RefCell::new(None) };
    static REQUESTS: RefCell<Vec<Request>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn post(request: &Request) -> Result<Response, ClientError> {
    REQUESTS.with_borrow_mut(|requests| requests.push(request.clone()));
    SERVER.with_borrow_mut(|server| match server {
        Some(server) => server(request),
        None => Err(ClientError::Failed("no HTTP client outside wasm32-wasip2".to_owned())),
    })
}

/// Runs `call` with `server` answering every request; [`requests`]
/// afterwards lists them.
#[cfg(test)]
pub(crate) fn with_server<R>(server: impl FnMut(&Request) -> Result<Response, ClientError> + 'static, call: impl FnOnce() -> R) -> R {
    REQUESTS.with_borrow_mut(Vec::clear);
    SERVER.set(Some(Box::new(server)));
    let result = call();
    SERVER.set(None);
    result
}

/// The requests made during the last [`with_server`] on this thread.
#[cfg(test)]
pub(crate) fn requests() -> Vec<Request> {
    REQUESTS.with_borrow(Vec::clone)
}
