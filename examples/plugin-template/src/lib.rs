//! Validator `patient-id`: a message must carry the patient's identifier
//! of one type from one assigning authority in PID-3, such as the hospital's
//! medical record number (`12345^^^HOSP^MR`). Any repetition may carry it.
//!
//! Settings (the `config` table next to `plugin = "patient-id"`):
//!
//! ```json
//! { "authority": "HOSP", "type": "MR" }
//! ```
//!
//! `authority` is PID-3.4.1 (required), `type` PID-3.5 (default `MR`).
//! Settings that cannot be used answer every message with `Error` (AE, code
//! 207), so a typo never lets messages through unchecked.
//!
//! This crate is the template to copy for a new plugin; the same rule in
//! Python is `examples/python-validator`.

use serde::Deserialize;
use sluice_sdk::{ErrorCode, Issue, Message, PathError, Validator, Verdict};

pub struct PatientId;

sluice_sdk::export_validator!(PatientId);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    authority: String,
    #[serde(rename = "type", default = "medical_record_number")]
    kind: String,
}

fn medical_record_number() -> String {
    "MR".into()
}

impl Validator for PatientId {
    fn validate(msg: &Message) -> Verdict {
        // Read on every call: one instance serves one message, and one
        // message may meet this plugin in several steps with other settings.
        let settings = match settings() {
            Ok(settings) => settings,
            Err(issue) => return Verdict::Error(issue),
        };
        match check(msg, &settings) {
            Ok(None) => Verdict::Accept,
            Ok(Some(issue)) => Verdict::Reject(issue),
            Err(err) => Verdict::Error(err.into()),
        }
    }
}

fn settings() -> Result<Settings, Issue> {
    let settings: Settings = sluice_sdk::settings()?;
    if settings.authority.is_empty() {
        return Err(Issue::invalid_settings("`authority` must name the assigning authority (PID-3.4), e.g. \"HOSP\""));
    }
    if settings.kind.is_empty() {
        return Err(Issue::invalid_settings("`type` must be an identifier type code (PID-3.5), e.g. \"MR\""));
    }
    Ok(settings)
}

/// The reason to refuse the message, if there is one.
fn check(msg: &Message, settings: &Settings) -> Result<Option<Issue>, PathError> {
    if msg.count("PID") == 0 {
        return Ok(Some(Issue::new(ErrorCode::SEGMENT_SEQUENCE_ERROR, "the message has no PID segment").at("PID")));
    }
    for i in 1..=msg.repetitions("PID-3")? {
        let id = msg.get(&format!("PID-3[{i}].1"))?;
        let authority = msg.get(&format!("PID-3[{i}].4.1"))?;
        let kind = msg.get(&format!("PID-3[{i}].5"))?;
        if id.is_some() && authority.as_deref() == Some(&settings.authority) && kind.as_deref() == Some(&settings.kind) {
            return Ok(None);
        }
    }
    let text = format!("PID-3 has no {} identifier from {}", settings.kind, settings.authority);
    Ok(Some(Issue::new(ErrorCode::REQUIRED_FIELD_MISSING, text).at("PID-3")))
}

#[cfg(test)]
mod tests {
    use sluice_sdk::{ErrorCode, Issue, Verdict, testing};

    use super::PatientId;

    const HOSP: &str = r#"{"authority": "HOSP"}"#;

    fn adt(pid3: &str) -> String {
        format!("MSH|^~\\&|EHR|MAIN|LIS|LAB|20240101||ADT^A01|MSG1|P|2.5\nPID|1||{pid3}||Doe^John\n")
    }

    fn refusal(verdict: Verdict) -> Issue {
        match verdict {
            Verdict::Reject(issue) => issue,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_identifier_from_the_authority() {
        assert_eq!(testing::validate::<PatientId>(&adt("12345^^^HOSP^MR"), HOSP), Verdict::Accept);
    }

    #[test]
    fn accepts_it_in_a_later_repetition_with_a_full_assigning_authority() {
        let pid3 = "999^^^OTHER^MR~12345^^^HOSP&1.2.3&ISO^MR";
        assert_eq!(testing::validate::<PatientId>(&adt(pid3), HOSP), Verdict::Accept);
    }

    #[test]
    fn refuses_other_authorities_types_and_empty_ids_at_pid_3() {
        for pid3 in ["12345^^^OTHER^MR", "12345^^^HOSP^PI", "^^^HOSP^MR", ""] {
            let issue = refusal(testing::validate::<PatientId>(&adt(pid3), HOSP));
            assert_eq!(issue.code, ErrorCode::REQUIRED_FIELD_MISSING, "{pid3}");
            assert_eq!(issue.text, "PID-3 has no MR identifier from HOSP", "{pid3}");
            assert_eq!(issue.location.as_deref(), Some("PID-3"), "{pid3}");
        }
    }

    #[test]
    fn the_identifier_type_is_a_setting() {
        let settings = r#"{"authority": "HOSP", "type": "PI"}"#;
        assert_eq!(testing::validate::<PatientId>(&adt("12345^^^HOSP^PI"), settings), Verdict::Accept);
        assert_eq!(refusal(testing::validate::<PatientId>(&adt("12345^^^HOSP^MR"), settings)).text, "PID-3 has no PI identifier from HOSP");
    }

    #[test]
    fn refuses_a_message_without_pid() {
        let issue = refusal(testing::validate::<PatientId>("MSH|^~\\&|EHR|MAIN|LIS|LAB|20240101||ADT^A01|MSG1|P|2.5\nEVN|A01\n", HOSP));
        assert_eq!((issue.code, issue.location.as_deref()), (ErrorCode::SEGMENT_SEQUENCE_ERROR, Some("PID")));
    }

    #[test]
    fn unusable_settings_answer_error_207() {
        for settings in ["{}", r#"{"authority": ""}"#, r#"{"authority": "HOSP", "typ": "MR"}"#] {
            match testing::validate::<PatientId>(&adt("12345^^^HOSP^MR"), settings) {
                Verdict::Error(issue) => {
                    assert_eq!(issue.code, ErrorCode::APPLICATION_INTERNAL_ERROR, "{settings}");
                    assert!(issue.text.starts_with("invalid plugin settings"), "{settings}: {}", issue.text);
                }
                other => panic!("{settings}: expected an error, got {other:?}"),
            }
        }
    }
}
