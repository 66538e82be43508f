//! The message path of one frame (DESIGN §1): parse MSH → validate → route →
//! persist → ACK. Validation and routing run the configured plugins
//! (`rules`); without any, every message is valid and every connector takes it.

mod reply;
mod rules;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::ack::{AckCode, AckMode, AckStamp, ErrorCode, Issue, Outcome, build_ack, build_ack_without_header};
use crate::hl7::{CharsetPolicy, Message};
use crate::metrics::Metrics;
use crate::plugin::{Catalog, MessageScope};
use crate::outbox::{CommitHandle, Committed, MessageMeta, NewMessage, dedupe_key};

pub use reply::Reply;
pub use rules::Rules;

pub struct Pipeline {
    charsets: CharsetPolicy,
    rules: Rules,
    plugins: Option<Arc<Catalog>>,
    store: CommitHandle,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    /// A pipeline without plugins: every connector takes every message.
    pub fn new(charsets: CharsetPolicy, connectors: Vec<Arc<str>>, store: CommitHandle, metrics: Arc<Metrics>) -> Pipeline {
        Pipeline { charsets, rules: Rules::unconditional(&connectors), plugins: None, store, metrics }
    }

    /// Validates and routes with `rules`, running the plugins of `catalog`.
    pub fn with_plugins(mut self, rules: Rules, catalog: Arc<Catalog>) -> Pipeline {
        self.rules = rules;
        self.plugins = Some(catalog);
        self
    }

    /// Processes one frame and says what to answer.
    pub async fn process(&self, frame: Bytes, peer: SocketAddr) -> Reply {
        let received_at_ms = crate::outbox::now_ms();
        let message = match Message::parse(frame.clone(), self.charsets) {
            Ok(message) => message,
            Err(err) => {
                let issue = Issue::from_parse_error(&err);
                tracing::warn!(%peer, error = %err, "message rejected: cannot be parsed");
                return self.refuse_unparsed(&frame, issue);
            }
        };
        let message = Arc::new(message);
        let header = message.header();
        let mode = AckMode::requested_by(header);

        let connectors = match self.validate_and_route(&message).await {
            Ok(connectors) => connectors,
            Err(outcome) => {
                if let Some(issue) = outcome.issue() {
                    tracing::info!(%peer, control_id = %lossy(&header.control_id), reason = %crate::logging::Phi(&issue.text), "message not accepted");
                }
                return self.answer(&message, mode, outcome);
            }
        };

        let accepted_ack = mode.code_for(&Outcome::Accepted).map(|code| build_ack(header, message.delimiters(), message.charset(), code, None, &AckStamp::now()));
        let new = NewMessage {
            meta: MessageMeta {
                received_at_ms,
                peer: peer.to_string(),
                sending_application: lossy(&header.sending_application),
                sending_facility: lossy(&header.sending_facility),
                message_type: lossy(&header.message_type),
                control_id: lossy(&header.control_id),
            },
            raw: message.raw().clone(),
            dedupe_key: dedupe_key(&header.sending_application, &header.sending_facility, &header.control_id),
            content_hash: xxhash_rust::xxh3::xxh3_128(message.raw()),
            connectors,
            ack: accepted_ack.clone(),
        };
        match self.store.commit(new).await {
            Ok(Committed::Stored { message_id }) => {
                tracing::debug!(%peer, message_id, control_id = %lossy(&header.control_id), "message stored");
                self.metrics.record_ack(mode.code_for(&Outcome::Accepted));
                Reply::ack(accepted_ack)
            }
            Ok(Committed::Duplicate { message_id, ack }) => {
                tracing::info!(%peer, message_id, control_id = %lossy(&header.control_id), "duplicate of a stored message; earlier ACK repeated");
                self.metrics.duplicates.inc();
                Reply::ack(ack)
            }
            Err(err) => {
                let issue = Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, format!("message not stored, please retry: {err}"));
                self.answer(&message, mode, Outcome::Errored(issue))
            }
        }
    }

    /// The validate and route steps: the connectors whose outbox takes this
    /// message, or the outcome that stops it.
    async fn validate_and_route(&self, message: &Arc<Message>) -> Result<Vec<Arc<str>>, Outcome> {
        let plugins = match &self.plugins {
            Some(catalog) if self.rules.uses_plugins() => catalog.snapshot(),
            _ => Arc::default(),
        };
        // The message's plugin instances go when it has been judged and routed.
        let mut scope = MessageScope::default();
        if let Some(outcome) = self.rules.validate(&plugins, &mut scope, message, &self.metrics).await {
            return Err(outcome);
        }
        self.rules.route(&plugins, &mut scope, message, &self.metrics).await
    }

    /// The ACK for a message that is not accepted (or an accepted one with no store involved).
    fn answer(&self, message: &Message, mode: AckMode, outcome: Outcome) -> Reply {
        let code = mode.code_for(&outcome);
        self.metrics.record_ack(code);
        let ack = code.map(|code| build_ack(message.header(), message.delimiters(), message.charset(), code, outcome.issue(), &AckStamp::now()));
        Reply::ack(ack)
    }

    /// A frame that is not a usable message: rejected in the sender's own
    /// dialect when its MSH can be read, else with a standard AR.
    pub fn refuse_unparsed(&self, frame: &[u8], issue: Issue) -> Reply {
        self.refuse_in_kind(frame, &issue).unwrap_or_else(|| {
            self.metrics.record_ack(Some(AckCode::AR));
            Reply::ack(Some(build_ack_without_header(AckCode::AR, &issue, &AckStamp::now())))
        })
    }

    /// Rejects a frame that will not be processed, answering in the sender's
    /// own dialect; `None` when its MSH cannot be read.
    pub fn refuse_in_kind(&self, frame: &[u8], issue: &Issue) -> Option<Reply> {
        let (header, delims) = Message::parse_header_of_partial(frame)?;
        let code = AckMode::requested_by(&header).code_for(&Outcome::Rejected(issue.clone()));
        self.metrics.record_ack(code);
        Some(Reply::ack(code.map(|code| build_ack(&header, &delims, crate::hl7::Charset::Ascii, code, Some(issue), &AckStamp::now()))))
    }
}

pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests;
