//! Stock router `match`: a connector takes the messages whose header
//! matches the configured patterns.
//!
//! Settings (every key optional):
//!
//! ```json
//! { "types": ["ORU^R01", "ADT^*"], "sending_application": ["LAB*"], "sending_facility": ["MAIN"],
//!   "receiving_application": ["EHR"], "receiving_facility": ["*"] }
//! ```
//!
//! Every criterion given must match (AND); within one, any pattern may
//! (OR). No criterion at all takes every message. Patterns are globs, `*`
//! for any run of characters and `?` for one, compared case-sensitively with
//! the first component of the MSH field (MSH-3.1, ...), decoded. A `types`
//! entry `CODE^TRIGGER` is matched against MSH-9.1 and MSH-9.2; without `^`
//! it matches the code with any trigger. Settings that cannot be used answer
//! `Err` (code 207): the sender gets AE, and no message is routed on a typo.

use serde::Deserialize;
use sluice_sdk::{Header, Issue, Message, Router};

pub struct Match;

sluice_sdk::export_router!(Match);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    types: Option<Vec<String>>,
    sending_application: Option<Vec<String>>,
    sending_facility: Option<Vec<String>>,
    receiving_application: Option<Vec<String>>,
    receiving_facility: Option<Vec<String>>,
}

impl Router for Match {
    fn route(msg: &Message, _connector: &str) -> Result<bool, Issue> {
        let settings: Settings = sluice_sdk::settings()?;
        settings.check()?;
        Ok(settings.matches(&msg.header()))
    }
}

impl Settings {
    fn matches(&self, header: &Header) -> bool {
        let any = |patterns: &Option<Vec<String>>, value: &str| patterns.as_ref().is_none_or(|ps| ps.iter().any(|p| glob(p, value)));
        self.types.as_ref().is_none_or(|types| types.iter().any(|t| type_matches(t, header)))
            && any(&self.sending_application, &header.sending_application)
            && any(&self.sending_facility, &header.sending_facility)
            && any(&self.receiving_application, &header.receiving_application)
            && any(&self.receiving_facility, &header.receiving_facility)
    }

    /// Refuses what would silently route nothing: an empty list (which no
    /// message can match) or a type with more than a code and a trigger.
    fn check(&self) -> Result<(), Issue> {
        let criteria = [
            ("types", &self.types),
            ("sending_application", &self.sending_application),
            ("sending_facility", &self.sending_facility),
            ("receiving_application", &self.receiving_application),
            ("receiving_facility", &self.receiving_facility),
        ];
        if let Some((name, _)) = criteria.iter().find(|(_, list)| list.as_ref().is_some_and(Vec::is_empty)) {
            return Err(Issue::invalid_settings(format!("`{name}` is empty, so no message could match: remove it or list patterns")));
        }
        for (i, t) in self.types.iter().flatten().enumerate() {
            if t.matches('^').count() > 1 {
                return Err(Issue::invalid_settings(format!("types[{i}]: `{t}` is not CODE or CODE^TRIGGER (like ORU^R01 or ADT^*)")));
            }
        }
        Ok(())
    }
}

fn type_matches(pattern: &str, header: &Header) -> bool {
    match pattern.split_once('^') {
        Some((code, trigger)) => glob(code, &header.message_code) && glob(trigger, &header.trigger_event),
        None => glob(pattern, &header.message_code),
    }
}

/// `*` matches any run of characters (none included), `?` exactly one, and
/// anything else itself. Hand-written: a dozen lines do not need a crate.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    // The last `*` seen: where the pattern resumes after it, and where the
    // text it has taken so far ends. On a mismatch it takes one more
    // character and matching resumes from there.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((resume, end)) => {
                    star = Some((resume, end + 1));
                    p = resume;
                    t = end + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use sluice_sdk::{ErrorCode, testing};

    use super::{Match, glob};

    const ORU: &str = "MSH|^~\\&|LAB^1.2.3^ISO|MAIN|EHR|WARD 7|20240101120000||ORU^R01^ORU_R01|MSG1|P|2.5\nOBR|1";
    const ADT: &str = "MSH|^~\\&|ADMIT|MAIN|EHR|WARD 7|20240101120000||ADT^A08|MSG2|P|2.5\nPID|1||42";

    #[track_caller]
    fn takes(message: &str, settings: &str) -> bool {
        testing::route::<Match>(message, "lab", settings).unwrap()
    }

    #[track_caller]
    fn assert_bad_settings(settings: &str, says: &str) {
        let issue = testing::route::<Match>(ORU, "lab", settings).unwrap_err();
        assert_eq!(issue.code, ErrorCode::APPLICATION_INTERNAL_ERROR);
        assert!(issue.text.starts_with("invalid plugin settings: "), "{}", issue.text);
        assert!(issue.text.contains(says), "`{}` should say `{says}`", issue.text);
    }

    #[test]
    fn no_criteria_takes_everything() {
        assert!(takes(ORU, "{}"));
        assert!(takes(ADT, "{}"));
    }

    #[test]
    fn matches_types_by_code_and_trigger() {
        assert!(takes(ORU, r#"{"types": ["ORU^R01"]}"#));
        assert!(!takes(ORU, r#"{"types": ["ORU^R03"]}"#));
        assert!(takes(ORU, r#"{"types": ["ORU"]}"#), "a code alone takes any trigger");
        assert!(takes(ADT, r#"{"types": ["ADT^*"]}"#));
        assert!(takes(ADT, r#"{"types": ["ADT^A0?"]}"#));
        assert!(!takes(ADT, r#"{"types": ["ADT^A1?"]}"#));
        assert!(takes(ADT, r#"{"types": ["ORU^R01", "ADT^A08"]}"#), "any type in the list");
        assert!(!takes(ADT, r#"{"types": ["ADT^A01"]}"#));
    }

    #[test]
    fn matches_the_first_component_of_sender_and_receiver() {
        assert!(takes(ORU, r#"{"sending_application": ["LAB*"]}"#), "MSH-3.1 is LAB");
        assert!(!takes(ORU, r#"{"sending_application": ["LAB^1.2.3^ISO"]}"#));
        assert!(!takes(ADT, r#"{"sending_application": ["LAB*"]}"#));
        assert!(takes(ORU, r#"{"sending_facility": ["MAIN"], "receiving_application": ["E?R"], "receiving_facility": ["WARD *"]}"#));
        assert!(!takes(ORU, r#"{"receiving_facility": ["ward *"]}"#), "case-sensitive");
    }

    #[test]
    fn every_criterion_must_match() {
        assert!(takes(ORU, r#"{"types": ["ORU^*"], "sending_application": ["LAB", "MICRO"]}"#));
        assert!(!takes(ORU, r#"{"types": ["ORU^*"], "sending_application": ["MICRO"]}"#));
        assert!(!takes(ADT, r#"{"types": ["ORU^*"], "sending_application": ["*"]}"#));
    }

    #[test]
    fn matches_decoded_values_and_empty_ones() {
        let escaped = "MSH|^~\\&|LAB\\T\\CO||||||ORU^R01|MSG3|P|2.5";
        assert!(takes(escaped, r#"{"sending_application": ["LAB&CO"]}"#));
        assert!(takes(escaped, r#"{"sending_facility": ["*"]}"#), "`*` matches an empty field");
        assert!(!takes(escaped, r#"{"sending_facility": ["?*"]}"#));
    }

    #[test]
    fn refuses_settings_it_cannot_use() {
        assert_bad_settings(r#"{"type": ["ORU^R01"]}"#, "unknown field `type`");
        assert_bad_settings(r#"{"types": "ORU^R01"}"#, "expected a sequence");
        assert_bad_settings(r#"{"sending_facility": []}"#, "`sending_facility` is empty");
        assert_bad_settings(r#"{"types": ["ADT^A01", "ORU^R01^ORU_R01"]}"#, "types[1]: `ORU^R01^ORU_R01` is not CODE or CODE^TRIGGER");
    }

    #[test]
    fn globs() {
        let cases = [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything", true),
            ("LAB", "LAB", true),
            ("LAB", "LABS", false),
            ("LAB*", "LAB", true),
            ("LAB*", "LABCORP", true),
            ("*CORP", "LABCORP", true),
            ("L*B*P", "LABCORP", true),
            ("L*B*X", "LABCORP", false),
            ("A?C", "ABC", true),
            ("A?C", "AC", false),
            ("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa", false),
            ("Mü?ler", "Müller", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob(pattern, text), want, "{pattern:?} vs {text:?}");
        }
    }
}
