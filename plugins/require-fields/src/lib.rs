//! Stock validator `require-fields`: refuses a message (AR, code 101) in
//! which a configured field is missing or empty.
//!
//! Settings: `{ "paths": ["PID-3", "PID-5.1", "OBX[2]-5"] }`. A path reads
//! what it names: `PID-3` is the first repetition, `PID-3[2]` the second.
//! Missing or malformed `paths` answer every message with `error` (AE,
//! code 207), so a configuration mistake never passes messages unchecked.

use serde::Deserialize;
use sluice_sdk::{Issue, Message, PathError, Validator, Verdict, parse_path};

pub struct RequireFields;

sluice_sdk::export_validator!(RequireFields);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    paths: Vec<String>,
}

impl Validator for RequireFields {
    fn validate(msg: &Message) -> Verdict {
        let paths = match configured_paths() {
            Ok(paths) => paths,
            Err(issue) => return Verdict::Error(issue),
        };
        let separators = match separators(msg) {
            Ok(separators) => separators,
            Err(err) => return Verdict::Error(err.into()),
        };
        // The first missing path decides: the ACK's ERR segment carries the
        // one issue a verdict has, and the sender fixes one field at a time
        // anyway. Reporting in configuration order keeps it predictable.
        for path in &paths {
            match is_valued(msg, path, &separators) {
                Ok(true) => {}
                Ok(false) => return Verdict::Reject(Issue::required_field_missing(path)),
                Err(err) => return Verdict::Error(err.into()),
            }
        }
        Verdict::Accept
    }
}

/// The configured paths, each checked, so a typo is reported as such rather
/// than as a field missing from every message.
fn configured_paths() -> Result<Vec<String>, Issue> {
    let settings: Settings = sluice_sdk::settings()?;
    if settings.paths.is_empty() {
        return Err(Issue::invalid_settings("`paths` is empty: list the fields every message must have"));
    }
    for (i, path) in settings.paths.iter().enumerate() {
        parse_path(path).map_err(|err| Issue::invalid_settings(format_args!("paths[{i}]: {err}")))?;
    }
    Ok(settings.paths)
}

/// The message's component, repetition and subcomponent separators (MSH-2,
/// less the escape character).
fn separators(msg: &Message) -> Result<Vec<u8>, PathError> {
    let encoding = msg.get_raw("MSH-2")?.unwrap_or_default();
    Ok(encoding.iter().enumerate().filter(|&(i, _)| i != 2).map(|(_, &b)| b).collect())
}

/// Whether the part at `path` holds data. `get_raw` is `None` when it is
/// absent or empty; a value made only of separators (`^^`) carries no data
/// either, and `""` is HL7's explicit null, which a required field may not
/// be. An escaped separator (`\S\`) is data, which is why this reads the raw
/// value.
fn is_valued(msg: &Message, path: &str, separators: &[u8]) -> Result<bool, PathError> {
    let Some(raw) = msg.get_raw(path)? else { return Ok(false) };
    Ok(raw != b"\"\"" && raw.iter().any(|b| !separators.contains(b)))
}

#[cfg(test)]
mod tests {
    use sluice_sdk::{ErrorCode, Verdict, testing};

    use super::RequireFields;

    fn adt(pid: &str) -> String {
        format!("MSH|^~\\&|APP|FAC|RCV|RFAC|20240101120000||ADT^A01|MSG1|P|2.5\nPID|{pid}")
    }

    /// Validates an ADT with this PID against `{"paths": [...]}`.
    fn check(pid: &str, paths: &[&str]) -> Verdict {
        let quoted: Vec<String> = paths.iter().map(|p| format!("\"{p}\"")).collect();
        testing::validate::<RequireFields>(&adt(pid), &format!("{{\"paths\": [{}]}}", quoted.join(", ")))
    }

    #[track_caller]
    fn assert_missing(verdict: Verdict, path: &str) {
        let Verdict::Reject(issue) = verdict else { panic!("expected a reject for {path}, got {verdict:?}") };
        assert_eq!(issue.code, ErrorCode::REQUIRED_FIELD_MISSING);
        assert_eq!(issue.location.as_deref(), Some(path));
        assert_eq!(issue.text, format!("required field {path} is missing or empty"));
    }

    #[track_caller]
    fn assert_bad_settings(settings: &str, says: &str) {
        let verdict = testing::validate::<RequireFields>(&adt("1||42"), settings);
        let Verdict::Error(issue) = verdict else { panic!("expected an error for {settings}, got {verdict:?}") };
        assert_eq!(issue.code, ErrorCode::APPLICATION_INTERNAL_ERROR);
        assert!(issue.text.starts_with("invalid plugin settings: "), "{}", issue.text);
        assert!(issue.text.contains(says), "`{}` should say `{says}`", issue.text);
    }

    #[test]
    fn accepts_when_every_path_is_valued() {
        assert_eq!(check("1||12345^^^HOSP^MR||Doe^John", &["PID-3", "PID-3.4", "PID-5.2", "MSH-4"]), Verdict::Accept);
    }

    #[test]
    fn refuses_an_absent_segment_field_or_component() {
        assert_missing(check("1||12345", &["PID-3", "PID-5"]), "PID-5");
        assert_missing(check("1||12345", &["PID-3.2"]), "PID-3.2");
        assert_missing(check("1||12345", &["PV1-2"]), "PV1-2");
        assert_missing(check("1||12345", &["MSH-8"]), "MSH-8");
    }

    #[test]
    fn refuses_empty_fields_and_components() {
        assert_missing(check("1||||Doe", &["PID-3"]), "PID-3");
        assert_missing(check("1||42||^John", &["PID-5.1"]), "PID-5.1");
        assert_missing(check("1||42||Doe^", &["PID-5.2"]), "PID-5.2");
        assert_missing(check("1||42||^^", &["PID-5"]), "PID-5");
        assert_missing(check("1||42||&^", &["PID-5"]), "PID-5");
        assert_missing(check("1||\"\"", &["PID-3"]), "PID-3");
    }

    #[test]
    fn reports_the_first_missing_path_in_configured_order() {
        assert_missing(check("1", &["PID-5", "PID-3"]), "PID-5");
        assert_missing(check("1", &["PID-3", "PID-5"]), "PID-3");
    }

    #[test]
    fn reads_repetitions_by_path() {
        let two_ids = "1||12345^^^HOSP^MR~67890^^^LAB^PI";
        assert_eq!(check(two_ids, &["PID-3", "PID-3[2]", "PID-3[2].4"]), Verdict::Accept);
        assert_missing(check(two_ids, &["PID-3[3]"]), "PID-3[3]");
        // `PID-3` is the first repetition, even when a later one is valued.
        assert_missing(check("1||~67890", &["PID-3"]), "PID-3");
        assert_eq!(check("1||~67890", &["PID-3[2]"]), Verdict::Accept);
    }

    #[test]
    fn an_escaped_separator_is_data() {
        assert_eq!(check("1||42||\\S\\", &["PID-5"]), Verdict::Accept);
        assert_eq!(check("1||42||O\\T\\Brien^Pat", &["PID-5.1"]), Verdict::Accept);
    }

    #[test]
    fn refuses_settings_it_cannot_use() {
        assert_bad_settings("{}", "missing field `paths`");
        assert_bad_settings(r#"{"paths": "PID-3"}"#, "expected a sequence");
        assert_bad_settings(r#"{"paths": []}"#, "`paths` is empty");
        assert_bad_settings(r#"{"paths": ["PID-3", "pid-5"]}"#, "paths[1]: invalid HL7 path `pid-5`");
        assert_bad_settings(r#"{"paths": ["PID-3"], "path": ["PID-5"]}"#, "unknown field `path`");
    }
}
