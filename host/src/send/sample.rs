//! The built-in sample message for load runs: an ADT^A01 of about 1 KB.

/// An ADT^A01 with the given control ID, padded to about `size` bytes with an NTE.
pub fn adt_a01(control_id: &str, size: usize) -> Vec<u8> {
    let mut message = format!(
        "MSH|^~\\&|SLUICE-LOAD|LOADFAC|RECEIVER|RECVFAC|20260101120000||ADT^A01^ADT_A01|{control_id}|P|2.5.1\r\
EVN|A01|20260101120000\r\
PID|1||{control_id}^^^HOSP^MR||Doe^John^Q^^^^L||19800101|M|||1 Main Street^^Springfield^IL^62701^USA^H||(555)555-0100^PRN^PH|||S||ACC{control_id}\r\
PV1|1|I|ICU^101^A^HOSP||||1234^Welby^Marcus^^^Dr|||MED||||7|||1234^Welby^Marcus^^^Dr|IN||||||||||||||||||||||||||20260101115500\r\
AL1|1|DA|PEN^Penicillin^LOCAL|SV|Rash\r"
    )
    .into_bytes();
    let padding = size.saturating_sub(message.len() + 10);
    if padding > 0 {
        message.extend_from_slice(b"NTE|1||");
        message.extend(std::iter::repeat_n(b'x', padding));
        message.push(b'\r');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_valid_message_of_the_requested_size() {
        let raw = adt_a01("C1", 1024);
        assert!((1000..=1040).contains(&raw.len()), "{}", raw.len());
        let m = crate::hl7::Message::parse(raw.into(), Default::default()).unwrap();
        assert_eq!(&m.header().control_id[..], b"C1");
    }
}
