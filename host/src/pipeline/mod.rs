//! The message path of one frame (DESIGN §1): parse MSH → validate → route →
//! persist → ACK. Validation and routing run the configured plugins
//! (`rules`, per interface); without any, every message is valid and every
//! connector takes it. What a sender gets back is its interface's ACK policy.

mod reply;
mod rules;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::ack::{AckCode, AckStamp, ErrorCode, Issue, Outcome, build_ack, build_ack_without_header};
use crate::config::{AckModeSetting, OnNack};
use crate::hl7::{Charset, CharsetPolicy, Delimiters, Header, Message};
use crate::interface::{InterfaceRules, SenderPolicy, sender_label};
use crate::journal::JournalFacts;
use crate::metrics::Metrics;
use crate::outbox::{CommitHandle, Committed, MessageMeta, NewMessage, Rejected, RejectedRecord, StoreError, dedupe_key};
use crate::plugin::{Catalog, MessageScope};

pub use reply::Reply;
pub use rules::Rules;

pub struct Pipeline {
    charsets: CharsetPolicy,
    plugins: Option<Arc<Catalog>>,
    store: CommitHandle,
    /// Where refused messages are kept; `None` in tests without a store.
    rejected: Option<Rejected>,
    metrics: Arc<Metrics>,
}

/// A frame's header, when its MSH could be read, to answer in kind.
struct Head<'a> {
    header: &'a Header,
    delimiters: &'a Delimiters,
    charset: Charset,
    /// PID-3.1, for the journal (empty when the message was not parsed whole).
    patient_id: String,
}

/// The patient identifier the journal indexes: PID-3.1 (first repetition).
fn patient_id(message: &Message) -> String {
    static PATH: std::sync::OnceLock<Option<crate::hl7::FieldPath>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| "PID-3.1".parse().ok()).as_ref().and_then(|path| message.text_at(path)).unwrap_or_default()
}

impl Pipeline {
    /// A pipeline without plugins: rules that name plugins find none loaded.
    pub fn new(charsets: CharsetPolicy, store: CommitHandle, metrics: Arc<Metrics>) -> Pipeline {
        Pipeline { charsets, plugins: None, store, rejected: None, metrics }
    }

    /// Runs the validators and routers of each interface's rules from `catalog`.
    pub fn with_plugins(mut self, catalog: Arc<Catalog>) -> Pipeline {
        self.plugins = Some(catalog);
        self
    }

    /// Keeps every refused message in `rejected`.
    pub fn with_rejected(mut self, rejected: Rejected) -> Pipeline {
        self.rejected = Some(rejected);
        self
    }

    /// Processes one frame received on `interface` and says what to answer.
    pub async fn process(&self, frame: Bytes, peer: SocketAddr, interface: &InterfaceRules) -> Reply {
        let received_at_ms = crate::outbox::now_ms();
        let message = match Message::parse(frame.clone(), self.charsets) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(%peer, interface = %interface.name, error = %err, "message rejected: cannot be parsed");
                return self.refuse_partial(&frame, peer, interface, Issue::from_parse_error(&err), false).await;
            }
        };
        let message = Arc::new(message);
        let header = message.header();
        let policy = interface.ack.for_sender(&header.sending_application, &header.sending_facility);
        let head = Head { header, delimiters: message.delimiters(), charset: message.charset(), patient_id: patient_id(&message) };

        let connectors = match self.validate_and_route(&interface.rules, &message).await {
            Ok(connectors) => connectors,
            Err(outcome) => {
                if let Some(issue) = outcome.issue() {
                    tracing::info!(%peer, interface = %interface.name, control_id = %lossy(&header.control_id), reason = %crate::logging::Phi(&issue.text), "message not accepted");
                }
                return self.refuse(message.raw(), Some(head), peer, interface, policy, outcome, false).await;
            }
        };

        let mode = policy.mode(header);
        let code = mode.and_then(|mode| mode.code_for(&Outcome::Accepted));
        let accepted_ack = code.map(|code| build_ack(header, message.delimiters(), message.charset(), code, None, &AckStamp::now()));
        let new = NewMessage {
            meta: meta_of(header, peer, received_at_ms),
            raw: message.raw().clone(),
            dedupe_key: dedupe_key(&header.sending_application, &header.sending_facility, &header.control_id),
            content_hash: xxhash_rust::xxh3::xxh3_128(message.raw()),
            connectors,
            ack: accepted_ack.clone(),
            journal: Some(JournalFacts {
                interface: interface.name.to_string(),
                patient_id: head.patient_id.clone(),
                ack_code: code.map_or("none", AckCode::as_str).to_string(),
                reason: None,
            }),
        };
        let sender = sender_label(&header.sending_application, &header.sending_facility);
        match self.store.commit(new).await {
            Ok(Committed::Stored { message_id }) => {
                tracing::debug!(%peer, message_id, control_id = %lossy(&header.control_id), "message stored");
                self.metrics.record_ack(code);
                Reply::answer(accepted_ack, code, sender)
            }
            Ok(Committed::Duplicate { message_id, ack }) => {
                tracing::info!(%peer, message_id, control_id = %lossy(&header.control_id), "duplicate of a stored message; earlier ACK repeated");
                self.metrics.duplicates.inc();
                Reply::answer(ack, code, sender)
            }
            Err(err) => {
                let issue = Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, format!("message not stored, please retry: {err}"));
                self.refuse(message.raw(), Some(head), peer, interface, policy, Outcome::Errored(issue), false).await
            }
        }
    }

    /// The validate and route steps: the connectors whose outbox takes this
    /// message, or the outcome that stops it.
    async fn validate_and_route(&self, rules: &Rules, message: &Arc<Message>) -> Result<Vec<Arc<str>>, Outcome> {
        let plugins = match &self.plugins {
            Some(catalog) if rules.uses_plugins() => catalog.snapshot(),
            _ => Arc::default(),
        };
        // The message's plugin instances go when it has been judged and routed.
        let mut scope = MessageScope::default();
        if let Some(outcome) = rules.validate(&plugins, &mut scope, message, &self.metrics).await {
            return Err(outcome);
        }
        rules.route(&plugins, &mut scope, message, &self.metrics).await
    }

    /// Refuses a frame that is not (or not wholly) a usable message: an
    /// oversized frame's head, one cut off by `frame_timeout`, one that does
    /// not parse. Answered in the sender's own dialect when its MSH can be
    /// read, else with a standard AR.
    pub async fn refuse_partial(&self, frame: &[u8], peer: SocketAddr, interface: &InterfaceRules, issue: Issue, truncated: bool) -> Reply {
        let outcome = Outcome::Rejected(issue);
        match Message::parse_header_of_partial(frame) {
            Some((header, delimiters)) => {
                let policy = interface.ack.for_sender(&header.sending_application, &header.sending_facility);
                let head = Head { header: &header, delimiters: &delimiters, charset: Charset::Ascii, patient_id: String::new() };
                self.refuse(frame, Some(head), peer, interface, policy, outcome, truncated).await
            }
            None => self.refuse(frame, None, peer, interface, interface.ack.without_sender(), outcome, truncated).await,
        }
    }

    /// Answers a message that is not accepted as its sender's policy says
    /// (a NACK, nothing, or closing the connection) and keeps it, with the
    /// reason, in the rejected store.
    #[allow(clippy::too_many_arguments)]
    async fn refuse(
        &self,
        raw: &[u8],
        head: Option<Head<'_>>,
        peer: SocketAddr,
        interface: &InterfaceRules,
        policy: SenderPolicy,
        outcome: Outcome,
        truncated: bool,
    ) -> Reply {
        let on = if matches!(outcome, Outcome::Rejected(_)) { policy.on_reject } else { policy.on_error };
        let issue = outcome.issue().cloned().unwrap_or_else(|| Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, "not accepted"));
        let (code, ack) = match &head {
            _ if policy.ack_mode == AckModeSetting::None => (None, None),
            Some(head) => {
                let code = policy.mode(head.header).and_then(|mode| mode.code_for(&outcome));
                (code, code.map(|code| build_ack(head.header, head.delimiters, head.charset, code, Some(&issue), &AckStamp::now())))
            }
            // The first bytes of a frame cut short, with no MSH in them: nothing to answer.
            None if truncated => (None, None),
            // No MSH to answer in kind: a standard AR (HL7 has no AE without a header).
            None => (Some(AckCode::AR), Some(build_ack_without_header(AckCode::AR, &issue, &AckStamp::now()))),
        };
        let close = on == OnNack::Close;
        if close {
            self.metrics.nacks_closed.inc();
        } else {
            self.metrics.record_ack(code);
        }
        let sender = head.as_ref().map_or_else(|| sender_label(b"", b""), |h| sender_label(&h.header.sending_application, &h.header.sending_facility));
        let reply = if close { Reply::close(sender) } else { Reply::answer(ack.clone(), code, sender) };
        self.keep_rejected(raw, head.as_ref(), peer, interface, &reply, ack.as_deref(), &issue, truncated).await;
        reply
    }

    #[allow(clippy::too_many_arguments)]
    async fn keep_rejected(
        &self,
        raw: &[u8],
        head: Option<&Head<'_>>,
        peer: SocketAddr,
        interface: &InterfaceRules,
        reply: &Reply,
        ack: Option<&[u8]>,
        issue: &Issue,
        truncated: bool,
    ) {
        let Some(rejected) = self.rejected.clone() else { return };
        let meta = head.map(|h| meta_of(h.header, peer, crate::outbox::now_ms()));
        let patient = head.map(|h| h.patient_id.clone()).unwrap_or_default();
        let ack = ack.unwrap_or_default().to_vec();
        let record = RejectedRecord {
            interface: interface.name.to_string(),
            peer: peer.to_string(),
            received_at_ms: crate::outbox::now_ms(),
            sending_application: meta.as_ref().map(|m| m.sending_application.clone()).unwrap_or_default(),
            sending_facility: meta.as_ref().map(|m| m.sending_facility.clone()).unwrap_or_default(),
            message_type: meta.as_ref().map(|m| m.message_type.clone()).unwrap_or_default(),
            control_id: meta.map(|m| m.control_id).unwrap_or_default(),
            answer: reply.answer.to_string(),
            reason: issue.text.clone(),
            truncated,
        };
        let raw = raw.to_vec();
        // A synced write: off the runtime threads, it is not on the accepted path.
        match tokio::task::spawn_blocking(move || rejected.keep(&record, &raw, &ack, &patient)).await {
            Ok(Ok(id)) => tracing::debug!(%peer, id, "refused message kept in the rejected store"),
            // The shortage itself is logged once, when it starts.
            Ok(Err(err @ StoreError::DiskFull(_))) => tracing::debug!(%peer, error = %err, "refused message not kept: disk nearly full"),
            Ok(Err(err)) => tracing::error!(%peer, interface = %interface.name, error = %err, "refused message could not be kept in the rejected store"),
            Err(err) => tracing::error!(%peer, error = %err, "rejected store write did not finish"),
        }
    }
}

fn meta_of(header: &Header, peer: SocketAddr, received_at_ms: u64) -> MessageMeta {
    MessageMeta {
        received_at_ms,
        peer: peer.to_string(),
        sending_application: lossy(&header.sending_application),
        sending_facility: lossy(&header.sending_facility),
        message_type: lossy(&header.message_type),
        control_id: lossy(&header.control_id),
        journal_id: None,
    }
}

pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests;
