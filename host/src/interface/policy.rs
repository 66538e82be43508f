//! The ACK policy of an interface: its own `ack_mode`, `on_reject` and
//! `on_error`, overridden by the first sender rule whose globs match the
//! message's MSH-3 and MSH-4 (without case).

use crate::ack::{AcceptCondition, AckMode};
use crate::config::{AckModeSetting, AckPolicyConfig, OnNack};
use crate::hl7::Header;

#[derive(Debug, Clone, Default)]
pub struct AckPolicy {
    default: SenderPolicy,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    application: glob::Pattern,
    facility: glob::Pattern,
    ack_mode: Option<AckModeSetting>,
    on_reject: Option<OnNack>,
    on_error: Option<OnNack>,
}

/// What one sender gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderPolicy {
    pub ack_mode: AckModeSetting,
    pub on_reject: OnNack,
    pub on_error: OnNack,
}

const NO_CASE: glob::MatchOptions = glob::MatchOptions { case_sensitive: false, require_literal_separator: false, require_literal_leading_dot: false };

impl AckPolicy {
    /// The config was checked: every glob compiles (a bad one would match nothing).
    pub fn from_config(config: &AckPolicyConfig) -> AckPolicy {
        let pattern =
            |text: &str| glob::Pattern::new(text).unwrap_or_else(|_| glob::Pattern::new(&glob::Pattern::escape(text)).expect("an escaped pattern compiles"));
        AckPolicy {
            default: SenderPolicy { ack_mode: config.ack_mode, on_reject: config.on_reject, on_error: config.on_error },
            rules: config
                .senders
                .iter()
                .map(|rule| Rule {
                    application: pattern(&rule.sending_application),
                    facility: pattern(&rule.sending_facility),
                    ack_mode: rule.ack_mode,
                    on_reject: rule.on_reject,
                    on_error: rule.on_error,
                })
                .collect(),
        }
    }

    /// The policy for a message from this MSH-3/MSH-4 (raw bytes, compared as text).
    pub fn for_sender(&self, application: &[u8], facility: &[u8]) -> SenderPolicy {
        let (application, facility) = (String::from_utf8_lossy(application), String::from_utf8_lossy(facility));
        let Some(rule) = self.rules.iter().find(|r| r.application.matches_with(&application, NO_CASE) && r.facility.matches_with(&facility, NO_CASE)) else {
            return self.default;
        };
        SenderPolicy {
            ack_mode: rule.ack_mode.unwrap_or(self.default.ack_mode),
            on_reject: rule.on_reject.unwrap_or(self.default.on_reject),
            on_error: rule.on_error.unwrap_or(self.default.on_error),
        }
    }

    /// The policy for a frame whose MSH cannot be read.
    pub fn without_sender(&self) -> SenderPolicy {
        self.default
    }
}

impl SenderPolicy {
    /// How this message is acknowledged; `None`: no ACK at all (`ack_mode = "none"`).
    pub fn mode(&self, header: &Header) -> Option<AckMode> {
        match self.ack_mode {
            AckModeSetting::Auto => Some(AckMode::requested_by(header)),
            AckModeSetting::Original => Some(AckMode::Original),
            AckModeSetting::Enhanced => Some(match AckMode::requested_by(header) {
                AckMode::Enhanced(when) => AckMode::Enhanced(when),
                // Nothing asked: commit ACKs always.
                AckMode::Original => AckMode::Enhanced(AcceptCondition::Always),
            }),
            AckModeSetting::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SenderRule;
    use bytes::Bytes;

    fn header(msh15: &'static str, msh16: &'static str) -> Header {
        Header { accept_ack_type: Bytes::from_static(msh15.as_bytes()), application_ack_type: Bytes::from_static(msh16.as_bytes()), ..Header::default() }
    }

    fn policy() -> AckPolicy {
        AckPolicy::from_config(&AckPolicyConfig {
            ack_mode: AckModeSetting::Auto,
            on_reject: OnNack::Nack,
            on_error: OnNack::Nack,
            senders: vec![
                SenderRule { sending_application: "OLDDEV*".into(), on_reject: Some(OnNack::Close), ..SenderRule::default() },
                SenderRule {
                    sending_application: "RIS".into(),
                    sending_facility: "RAD?".into(),
                    ack_mode: Some(AckModeSetting::Original),
                    ..SenderRule::default()
                },
                SenderRule { sending_application: "PUMP".into(), ack_mode: Some(AckModeSetting::None), ..SenderRule::default() },
            ],
        })
    }

    #[test]
    fn the_first_matching_rule_decides_and_unset_fields_inherit() {
        let policy = policy();
        let old = policy.for_sender(b"olddev-7", b"WARD");
        assert_eq!(old, SenderPolicy { ack_mode: AckModeSetting::Auto, on_reject: OnNack::Close, on_error: OnNack::Nack });
        assert_eq!(policy.for_sender(b"RIS", b"RAD1").ack_mode, AckModeSetting::Original);
        assert_eq!(policy.for_sender(b"RIS", b"RADIOLOGY").ack_mode, AckModeSetting::Auto, "? is one character");
        assert_eq!(policy.for_sender(b"EHR", b"HOSP"), SenderPolicy::default());
    }

    #[test]
    fn modes_override_or_honour_msh15_and_msh16() {
        let policy = policy();
        let enhanced = header("AL", "NE");
        assert_eq!(policy.for_sender(b"EHR", b"").mode(&enhanced), Some(AckMode::Enhanced(AcceptCondition::Always)), "auto honours MSH-15");
        assert_eq!(policy.for_sender(b"RIS", b"RAD1").mode(&enhanced), Some(AckMode::Original), "original overrides MSH-15");
        assert_eq!(policy.for_sender(b"PUMP", b"").mode(&enhanced), None);
        let forced = SenderPolicy { ack_mode: AckModeSetting::Enhanced, ..SenderPolicy::default() };
        assert_eq!(forced.mode(&header("", "")), Some(AckMode::Enhanced(AcceptCondition::Always)));
        assert_eq!(forced.mode(&header("ER", "")), Some(AckMode::Enhanced(AcceptCondition::OnError)));
    }
}
