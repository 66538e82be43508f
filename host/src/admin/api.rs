//! The JSON API the CLI uses: outbox depths and entries, dead letters
//! (list, show, replay, purge), the plugin catalog, the interfaces and the
//! messages they refused. Store calls block on
//! RocksDB, so they run on the blocking pool, never on the runtime threads.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AdminState;
use super::error::ApiError;
use std::net::SocketAddr;

use axum::Extension;
use axum::extract::ConnectInfo;

use crate::interface::InterfaceStatus;
use crate::journal::{Journal, Query as JournalQuery, Shown};
use crate::outbox::{DeadLetter, Queued, Queues, RejectedEntry, RejectedRecord, Selection, StoreError};
use crate::plugin::PluginStatus;

/// Entries listed when the request gives no `limit`.
const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    limit: Option<usize>,
    /// List dead letters with a greater ID only (the last ID of the previous page).
    after: Option<u64>,
}

/// The body of a replay or purge: `{"id": N}` or `{"all": true}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    id: Option<u64>,
    #[serde(default)]
    all: bool,
}

/// One dead letter with its message.
#[derive(Debug, Serialize)]
pub struct ShownDeadLetter {
    #[serde(flatten)]
    letter: DeadLetter,
    /// The HL7 message as received (invalid UTF-8 replaced).
    raw: String,
}

/// `GET /api/outbox`: depths, and the journal's disk use.
pub async fn outbox_depths(State(state): State<AdminState>) -> Json<Value> {
    let journal_bytes = state.journal.as_ref().map(Journal::disk_bytes);
    Json(json!({ "connectors": state.queues.depths(), "journal_bytes": journal_bytes }))
}

/// `GET /api/messages?control_id=&patient=&type=&sender=&ack=&state=&from_ms=&to_ms=&before=&limit=`:
/// journalled messages, newest first; `next` is the cursor of the next page.
pub async fn messages(State(state): State<AdminState>, query: Result<Query<JournalQuery>, QueryRejection>) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|err| {
        ApiError::BadRequest(format!("bad query: {} (expected control_id, patient, type, sender, ack, state, from_ms, to_ms, before, limit)", err.body_text()))
    })?;
    let journal = journal_of(&state)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(crate::journal::MAX_LIMIT);
    let query = JournalQuery { limit: Some(limit), ..query };
    let found = blocking("searching the journal".into(), move || journal.search(&query)).await?;
    let next = if found.len() == limit { found.last().map(|m| m.id) } else { None };
    Ok(Json(json!({ "messages": found, "next": next })))
}

/// `GET /api/messages/{id}`: the message, its ACK and its per-connector history.
pub async fn message(State(state): State<AdminState>, id: Result<Path<u64>, PathRejection>) -> Result<Json<Shown>, ApiError> {
    let Path(id) = id.map_err(|err| ApiError::BadRequest(format!("bad ID: {}", err.body_text())))?;
    let journal = journal_of(&state)?;
    match blocking(format!("reading message {id}"), move || journal.show(id)).await? {
        Some(shown) => Ok(Json(shown)),
        None => Err(ApiError::NotFound(format!("no message {id} in the journal"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    connector: String,
}

/// `POST /api/messages/{id}/resend` with `{"connector": NAME}`: queued again, audited with the client's address.
pub async fn resend(
    State(state): State<AdminState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    id: Result<Path<u64>, PathRejection>,
    body: Result<Json<Resend>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|err| ApiError::BadRequest(format!("bad ID: {}", err.body_text())))?;
    let Json(Resend { connector }) = body.map_err(|err| ApiError::BadRequest(format!("bad body: {}; expected {{\"connector\": NAME}}", err.body_text())))?;
    known(&state, &connector)?;
    let by = client_of(client);
    let queues = state.queues.clone();
    let (target, who) = (connector.clone(), by.clone());
    let message_id = match tokio::task::spawn_blocking(move || queues.resend(&target, id, &who)).await {
        Ok(Ok(message_id)) => message_id,
        Ok(Err(StoreError::BadQuery(reason))) => return Err(ApiError::BadRequest(reason)),
        Ok(Err(err)) => return Err(ApiError::Internal(format!("resending message {id}: {err}"))),
        Err(err) => return Err(ApiError::Internal(format!("resending message {id}: {err}"))),
    };
    tracing::info!(id, connector, by, "journalled message resent through the admin API");
    Ok(Json(json!({ "resent": id, "connector": connector, "message_id": message_id })))
}

fn journal_of(state: &AdminState) -> Result<Journal, ApiError> {
    state.journal.clone().ok_or_else(|| ApiError::NotFound("no journal".into()))
}

/// `GET /api/outbox/{connector}?limit=N`
pub async fn outbox(
    State(state): State<AdminState>,
    Path(connector): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Vec<Queued>>, ApiError> {
    let limit = page_of(page)?.limit.unwrap_or(DEFAULT_LIMIT);
    known(&state, &connector)?;
    let queues = state.queues.clone();
    let what = format!("the outbox of `{connector}`");
    Ok(Json(blocking(what, move || queues.outbox(&connector, limit)).await?))
}

/// `GET /api/dlq/{connector}?after=ID&limit=N`
pub async fn dead_letters(
    State(state): State<AdminState>,
    Path(connector): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    let page = page_of(page)?;
    known(&state, &connector)?;
    let queues = state.queues.clone();
    let what = format!("the dead letters of `{connector}`");
    Ok(Json(blocking(what, move || queues.dead_letters(&connector, page.after, page.limit.unwrap_or(DEFAULT_LIMIT))).await?))
}

/// `GET /api/dlq/{connector}/{id}`
pub async fn dead_letter(State(state): State<AdminState>, path: Result<Path<(String, u64)>, PathRejection>) -> Result<Json<ShownDeadLetter>, ApiError> {
    let Path((connector, id)) = path.map_err(|err| ApiError::BadRequest(format!("dead letter IDs are numbers ({})", err.body_text())))?;
    known(&state, &connector)?;
    let queues = state.queues.clone();
    let what = format!("dead letter {id} of `{connector}`");
    let found = blocking(what, {
        let connector = connector.clone();
        move || queues.dead_letter(&connector, id)
    })
    .await?;
    let (letter, raw) = found.ok_or_else(|| no_dead_letter(&connector, id))?;
    Ok(Json(ShownDeadLetter { letter, raw: String::from_utf8_lossy(&raw).into_owned() }))
}

/// `POST /api/dlq/{connector}/replay`: back to the tail of the outbox.
pub async fn replay(
    state: State<AdminState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    connector: Path<String>,
    body: Result<Json<Action>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    act_on_dead_letters(state, client_of(client), connector, body, "replayed", Queues::replay).await
}

/// `POST /api/dlq/{connector}/purge`: deleted for good.
pub async fn purge(
    state: State<AdminState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    connector: Path<String>,
    body: Result<Json<Action>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    act_on_dead_letters(state, client_of(client), connector, body, "purged", Queues::purge).await
}

/// Who asked for an action, as the journal records it.
fn client_of(client: Option<Extension<ConnectInfo<SocketAddr>>>) -> String {
    client.map_or_else(|| "admin API".to_string(), |Extension(ConnectInfo(addr))| format!("admin API from {addr}"))
}

/// Replays or purges the selected dead letters on the blocking pool; the
/// answer counts them under `done`.
async fn act_on_dead_letters(
    State(state): State<AdminState>,
    by: String,
    Path(connector): Path<String>,
    body: Result<Json<Action>, JsonRejection>,
    done: &'static str,
    action: fn(&Queues, &str, Selection, &str) -> Result<u64, StoreError>,
) -> Result<Json<Value>, ApiError> {
    let which = selection(body)?;
    known(&state, &connector)?;
    let queues = state.queues.clone();
    let what = format!("dead letters of `{connector}` not {done}");
    let count = blocking(what, {
        let (connector, by) = (connector.clone(), by.clone());
        move || action(&queues, &connector, which, &by)
    })
    .await?;
    found_one(&connector, which, count)?;
    tracing::info!(connector, count, by, "dead letters {done} through the admin API");
    Ok(Json(json!({ done: count })))
}

/// `GET /api/plugins`: what `sluice plugins list` shows.
pub async fn plugins(State(state): State<AdminState>) -> Json<Vec<PluginStatus>> {
    Json(state.catalog.statuses())
}

/// `GET /api/interfaces`: what `sluice interfaces list` shows.
pub async fn interfaces(State(state): State<AdminState>) -> Json<Vec<InterfaceStatus>> {
    match &state.interfaces {
        Some(interfaces) => Json(interfaces.status().await),
        None => Json(Vec::new()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectedQuery {
    interface: Option<String>,
    limit: Option<usize>,
    /// List entries with a smaller ID only (the last ID of the previous page).
    before: Option<u64>,
}

/// `GET /api/rejected?interface=&limit=&before=`: refused messages, newest first.
pub async fn rejected(State(state): State<AdminState>, query: Result<Query<RejectedQuery>, QueryRejection>) -> Result<Json<Vec<RejectedEntry>>, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::BadRequest(format!("bad query: {} (expected interface=NAME, limit=N, before=ID)", err.body_text())))?;
    let rejected = state.rejected.clone().ok_or_else(|| ApiError::NotFound("no rejected store".into()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let entries = blocking("listing rejected messages".into(), move || rejected.list(query.interface.as_deref(), query.before, limit)).await?;
    Ok(Json(entries))
}

/// One refused message with its wire form.
#[derive(Debug, Serialize)]
pub struct ShownRejected {
    id: u64,
    #[serde(flatten)]
    record: RejectedRecord,
    /// The bytes as received (invalid UTF-8 replaced).
    raw: String,
}

/// `GET /api/rejected/{id}`
pub async fn rejected_one(State(state): State<AdminState>, id: Result<Path<u64>, PathRejection>) -> Result<Json<ShownRejected>, ApiError> {
    let Path(id) = id.map_err(|err| ApiError::BadRequest(format!("bad ID: {}", err.body_text())))?;
    let rejected = state.rejected.clone().ok_or_else(|| ApiError::NotFound("no rejected store".into()))?;
    match blocking(format!("reading rejected message {id}"), move || rejected.get(id)).await? {
        Some((record, raw)) => Ok(Json(ShownRejected { id, record, raw: String::from_utf8_lossy(&raw).into_owned() })),
        None => Err(ApiError::NotFound(format!("no rejected message {id}"))),
    }
}

fn known(state: &AdminState, connector: &str) -> Result<(), ApiError> {
    if state.queues.knows(connector) { Ok(()) } else { Err(ApiError::unknown_connector(connector)) }
}

fn page_of(page: Result<Query<Page>, QueryRejection>) -> Result<Page, ApiError> {
    page.map(|Query(page)| page).map_err(|err| ApiError::BadRequest(format!("bad query: {} (expected limit=N, after=ID)", err.body_text())))
}

fn selection(body: Result<Json<Action>, JsonRejection>) -> Result<Selection, ApiError> {
    const EXPECTED: &str = r#"expected {"id": N} for one dead letter or {"all": true} for all of them"#;
    let Json(action) = body.map_err(|err| ApiError::BadRequest(format!("bad body: {}; {EXPECTED}", err.body_text())))?;
    match (action.id, action.all) {
        (Some(id), false) => Ok(Selection::One(id)),
        (None, true) => Ok(Selection::All),
        _ => Err(ApiError::BadRequest(EXPECTED.into())),
    }
}

/// An action on one dead letter that touched none: it is not there.
fn found_one(connector: &str, which: Selection, count: u64) -> Result<(), ApiError> {
    match which {
        Selection::One(id) if count == 0 => Err(no_dead_letter(connector, id)),
        _ => Ok(()),
    }
}

fn no_dead_letter(connector: &str, id: u64) -> ApiError {
    ApiError::NotFound(format!("no dead letter {id} in `{connector}`"))
}

/// Runs a store call on the blocking pool; `what` names it in errors.
async fn blocking<T: Send + 'static>(what: String, call: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(StoreError::BadQuery(reason))) => Err(ApiError::BadRequest(reason)),
        Ok(Err(err)) => Err(ApiError::Internal(format!("{what}: {err}"))),
        Err(err) => Err(ApiError::Internal(format!("{what}: the store call did not finish ({err})"))),
    }
}
