//! Example validator: every observation declared numeric (OBX-2 = `NM`)
//! must carry numbers in OBX-5, in every repetition. Anything else is
//! refused with code 102 (data type error) at `OBX[n]-5`.
//!
//! It shows the usual shape of a validator: walk the segments, read fields
//! by path, answer with the first problem found.

use sluice_sdk::{ErrorCode, Issue, Message, PathError, Validator, Verdict};

pub struct ObxNumeric;

sluice_sdk::export_validator!(ObxNumeric);

impl Validator for ObxNumeric {
    fn validate(msg: &Message) -> Verdict {
        match first_non_numeric(msg) {
            Ok(None) => Verdict::Accept,
            Ok(Some(issue)) => Verdict::Reject(issue),
            Err(err) => Verdict::Error(err.into()),
        }
    }
}

fn first_non_numeric(msg: &Message) -> Result<Option<Issue>, PathError> {
    for obx in msg.segments().into_iter().filter(|s| s.id == "OBX") {
        if msg.get(&format!("{obx}-2"))?.as_deref() != Some("NM") {
            continue;
        }
        let field = format!("{obx}-5");
        for repetition in 1..=msg.repetitions(&field)? {
            // An empty repetition is not a value, so it cannot be a wrong one.
            let Some(value) = msg.get(&format!("{field}[{repetition}]"))? else { continue };
            if !is_hl7_number(&value) {
                let text = format!("{obx} is numeric (OBX-2 = NM) but OBX-5 repetition {repetition} is `{value}`, not a number");
                return Ok(Some(Issue::new(ErrorCode::DATA_TYPE_ERROR, text).at(field)));
            }
        }
    }
    Ok(None)
}

/// HL7's NM data type: an optional sign, digits and at most one decimal
/// point (`-1.5`, `+.5`, `007`). No exponent, no spaces, unlike Rust's
/// `f64::from_str`, which also takes `1e3`, `inf` and `NaN`.
fn is_hl7_number(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let digits = unsigned.bytes().filter(u8::is_ascii_digit).count();
    let points = unsigned.bytes().filter(|&b| b == b'.').count();
    digits > 0 && points <= 1 && digits + points == unsigned.len()
}

#[cfg(test)]
mod tests {
    use sluice_sdk::{ErrorCode, Verdict, testing};

    use super::{ObxNumeric, is_hl7_number};

    fn oru(obx: &[&str]) -> String {
        let mut msg = String::from("MSH|^~\\&|LAB|MAIN|EHR|WARD|20240101120000||ORU^R01|MSG1|P|2.5\nPID|1||42\nOBR|1\n");
        for (i, segment) in obx.iter().enumerate() {
            msg += &format!("OBX|{}|{segment}\n", i + 1);
        }
        msg
    }

    fn validate(obx: &[&str]) -> Verdict {
        testing::validate::<ObxNumeric>(&oru(obx), "{}")
    }

    #[test]
    fn accepts_numbers_in_every_repetition() {
        assert_eq!(validate(&["NM|GLU||5.4|mmol/L", "NM|BP||120~80~-1.5~+.5|mmHg", "NM|X||"]), Verdict::Accept);
    }

    #[test]
    fn ignores_observations_that_are_not_numeric() {
        assert_eq!(validate(&["ST|NOTE||see comment", "TX|NOTE||high~low", "|NONE||x"]), Verdict::Accept);
    }

    #[test]
    fn refuses_a_non_number_and_says_where() {
        let Verdict::Reject(issue) = validate(&["ST|NOTE||text", "NM|GLU||5.4", "NM|BP||120~high~80"]) else { panic!("expected a reject") };
        assert_eq!(issue.code, ErrorCode::DATA_TYPE_ERROR);
        assert_eq!(issue.location.as_deref(), Some("OBX[3]-5"));
        assert_eq!(issue.text, "OBX[3] is numeric (OBX-2 = NM) but OBX-5 repetition 2 is `high`, not a number");
    }

    #[test]
    fn skips_empty_repetitions_and_decodes_escapes() {
        assert_eq!(validate(&["NM|BP||120~~80"]), Verdict::Accept);
        // `\T\` is an escaped `&`: the value is `1&2`, which is not a number.
        let Verdict::Reject(issue) = validate(&["NM|X||1\\T\\2"]) else { panic!("expected a reject") };
        assert!(issue.text.ends_with("is `1&2`, not a number"), "{}", issue.text);
    }

    #[test]
    fn knows_the_nm_data_type() {
        for good in ["0", "42", "-1", "+1", "1.5", ".5", "5.", "-0.25", "007"] {
            assert!(is_hl7_number(good), "{good}");
        }
        for bad in ["", "-", ".", "+-1", "1.2.3", "1e3", "inf", "NaN", " 1", "1 ", "1,5", "<5"] {
            assert!(!is_hl7_number(bad), "{bad}");
        }
    }
}
