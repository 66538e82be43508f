//! Reading what an MLLP exchange turns on: the MSH-10 of the message sent,
//! and the MSA (and ERR) of the ACK that came back. Each side is read with
//! the separators of its own MSH; nothing else of either is judged, so an
//! ACK with a sparse MSH (no MSH-9, no MSH-10) is still understood.

use crate::hl7::{Charset, CharsetPolicy, Delimiters, escape};

use super::super::bindings::mllp::Ack;

/// The acknowledgment codes of HL7 table 0008.
const CODES: [&str; 6] = ["AA", "AE", "AR", "CA", "CE", "CR"];

/// A message split into segments, with its delimiters.
struct Segments<'a> {
    delims: Delimiters,
    segments: Vec<&'a [u8]>,
}

impl<'a> Segments<'a> {
    fn read(raw: &'a [u8]) -> Result<Segments<'a>, String> {
        let raw = raw.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(raw);
        let segments: Vec<&[u8]> = raw.split(|&b| b == b'\r' || b == b'\n').filter(|s| !s.iter().all(u8::is_ascii_whitespace)).collect();
        let msh = segments.first().map(|s| s.trim_ascii_start()).filter(|s| s.starts_with(b"MSH")).ok_or("it does not start with an MSH segment")?;
        let &field = msh.get(3).ok_or("its MSH declares no separators")?;
        let encoding = &msh[4..];
        let encoding = &encoding[..encoding.iter().position(|&b| b == field).unwrap_or(encoding.len())];
        let delims = Delimiters::from_msh(field, encoding).map_err(|err| format!("its MSH-1/MSH-2 are unusable ({err})"))?;
        let mut segments = segments;
        segments[0] = msh;
        Ok(Segments { delims, segments })
    }

    /// The first segment with this ID.
    fn first(&self, id: &[u8]) -> Option<&'a [u8]> {
        let sep = self.delims.field;
        self.segments.iter().copied().find(|s| s.split(|&b| b == sep).next() == Some(id))
    }

    /// Field `n` of `segment`, raw; MSH counts its field separator as MSH-1.
    fn field(&self, segment: &'a [u8], n: usize) -> &'a [u8] {
        let sep = self.delims.field;
        let index = if segment.starts_with(b"MSH") { n - 1 } else { n };
        segment.split(|&b| b == sep).nth(index).unwrap_or_default()
    }

    fn component(&self, field: &'a [u8], n: usize) -> &'a [u8] {
        field.split(|&b| b == self.delims.component).nth(n - 1).unwrap_or_default()
    }

    fn charset(&self) -> Charset {
        let msh18 = self.field(self.segments[0], 18);
        let first = match self.delims.repetition {
            Some(rep) => msh18.split(|&b| b == rep).next().unwrap_or_default(),
            None => msh18,
        };
        CharsetPolicy::default().resolve(first).unwrap_or(Charset::Utf8)
    }

    fn text(&self, raw: &[u8]) -> String {
        escape::unescape(raw, &self.delims, self.charset())
    }
}

/// MSH-10 of a message to be sent, byte for byte; the reason when it has none.
pub fn control_id(message: &[u8]) -> Result<&[u8], String> {
    let segments = Segments::read(message)?;
    let id = segments.field(segments.segments[0], 10);
    if id.iter().all(u8::is_ascii_whitespace) {
        return Err("it has no MSH-10 (message control ID) to match the ACK against".into());
    }
    Ok(id)
}

/// Checks an ACK against the control ID it must acknowledge: `Err` (a bad
/// ACK) unless it has an MSA with a known code whose MSA-2 is `control_id`
/// byte for byte.
pub fn check(raw: &[u8], control_id: &[u8]) -> Result<Ack, String> {
    let ack = Segments::read(raw).map_err(|err| format!("the reply is not an HL7 message: {err}"))?;
    let msa = ack.first(b"MSA").ok_or("the reply has no MSA segment")?;
    let code = ack.field(msa, 1);
    let Some(code) = CODES.iter().find(|c| c.as_bytes() == code) else {
        return Err(format!("MSA-1 `{}` is not an acknowledgment code", String::from_utf8_lossy(code)));
    };
    let acked = ack.field(msa, 2);
    if acked != control_id {
        return Err(format!("MSA-2 `{}` does not match the message's MSH-10 `{}`", String::from_utf8_lossy(acked), String::from_utf8_lossy(control_id)));
    }
    let mut text = ack.text(ack.field(msa, 3));
    if text.trim().is_empty()
        && let Some(err) = ack.first(b"ERR")
    {
        let user_message = ack.field(err, 8);
        let code_text = ack.component(ack.field(err, 3), 2);
        text = ack.text(if user_message.is_empty() { code_text } else { user_message });
    }
    Ok(Ack { code: code.to_string(), text, raw: raw.to_vec() })
}
