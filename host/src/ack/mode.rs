//! Original and enhanced acknowledgement modes (HL7 v2 chapter 2.9.2/2.9.3).

use super::Issue;
use crate::hl7::Header;

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Durable in every matching outbox.
    Accepted,
    /// Permanent: the sender must not retry (bad MSH, validator reject, size limit).
    Rejected(Issue),
    /// Transient: the sender may retry (storage error, plugin trap or timeout).
    Errored(Issue),
}

impl Outcome {
    pub fn issue(&self) -> Option<&Issue> {
        match self {
            Outcome::Accepted => None,
            Outcome::Rejected(issue) | Outcome::Errored(issue) => Some(issue),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    AA,
    AE,
    AR,
    CA,
    CE,
    CR,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
            AckCode::CA => "CA",
            AckCode::CE => "CE",
            AckCode::CR => "CR",
        }
    }
}

/// When the sender wants an accept acknowledgement (MSH-15, HL7 table 0155).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptCondition {
    /// AL, and the default when MSH-15 is empty but MSH-16 asks for enhanced mode.
    Always,
    /// NE
    Never,
    /// ER: only when the message is not accepted.
    OnError,
    /// SU: only when it is.
    OnSuccess,
}

/// How a message is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// AA/AE/AR, always sent.
    Original,
    /// Commit ACKs CA/CE/CR, sent as MSH-15 asks.
    Enhanced(AcceptCondition),
}

impl AckMode {
    /// Enhanced mode when the message fills MSH-15 or MSH-16, else original
    /// (HL7 v2 chapter 2.9: both empty means the original rules apply).
    pub fn requested_by(header: &Header) -> AckMode {
        if header.accept_ack_type.is_empty() && header.application_ack_type.is_empty() {
            return AckMode::Original;
        }
        AckMode::Enhanced(match &header.accept_ack_type[..] {
            b"NE" => AcceptCondition::Never,
            b"ER" => AcceptCondition::OnError,
            b"SU" => AcceptCondition::OnSuccess,
            _ => AcceptCondition::Always,
        })
    }

    /// The MSA-1 code for an outcome, or `None` when no ACK is to be sent.
    pub fn code_for(self, outcome: &Outcome) -> Option<AckCode> {
        match (self, outcome) {
            (AckMode::Original, Outcome::Accepted) => Some(AckCode::AA),
            (AckMode::Original, Outcome::Errored(_)) => Some(AckCode::AE),
            (AckMode::Original, Outcome::Rejected(_)) => Some(AckCode::AR),
            (AckMode::Enhanced(when), outcome) => {
                let accepted = matches!(outcome, Outcome::Accepted);
                let send = match when {
                    AcceptCondition::Always => true,
                    AcceptCondition::Never => false,
                    AcceptCondition::OnError => !accepted,
                    AcceptCondition::OnSuccess => accepted,
                };
                send.then_some(match outcome {
                    Outcome::Accepted => AckCode::CA,
                    Outcome::Errored(_) => AckCode::CE,
                    Outcome::Rejected(_) => AckCode::CR,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::ErrorCode;
    use bytes::Bytes;

    fn header(msh15: &'static str, msh16: &'static str) -> Header {
        Header {
            accept_ack_type: Bytes::from_static(msh15.as_bytes()),
            application_ack_type: Bytes::from_static(msh16.as_bytes()),
            ..Header::default()
        }
    }

    #[test]
    fn original_mode_when_msh15_and_msh16_are_empty() {
        let mode = AckMode::requested_by(&header("", ""));
        let bad = Outcome::Rejected(Issue::new(ErrorCode::REQUIRED_FIELD_MISSING, "x"));
        let err = Outcome::Errored(Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, "x"));
        assert_eq!(mode, AckMode::Original);
        assert_eq!(mode.code_for(&Outcome::Accepted), Some(AckCode::AA));
        assert_eq!(mode.code_for(&bad), Some(AckCode::AR));
        assert_eq!(mode.code_for(&err), Some(AckCode::AE));
    }

    #[test]
    fn enhanced_mode_honours_msh15() {
        let bad = Outcome::Rejected(Issue::new(ErrorCode::REQUIRED_FIELD_MISSING, "x"));
        let err = Outcome::Errored(Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, "x"));
        let ok = Outcome::Accepted;
        let codes = |msh15, msh16| {
            let mode = AckMode::requested_by(&header(msh15, msh16));
            [mode.code_for(&ok), mode.code_for(&bad), mode.code_for(&err)]
        };
        use AckCode::*;
        assert_eq!(codes("AL", "NE"), [Some(CA), Some(CR), Some(CE)]);
        assert_eq!(codes("NE", "AL"), [None, None, None]);
        assert_eq!(codes("ER", "NE"), [None, Some(CR), Some(CE)]);
        assert_eq!(codes("SU", ""), [Some(CA), None, None]);
        assert_eq!(codes("", "AL"), [Some(CA), Some(CR), Some(CE)]);
    }
}
