//! A parsed HL7 v2 message: the bytes as received, the delimiters from its
//! own MSH, and the position of every segment. Fields are split on demand,
//! so parsing costs one pass over the bytes whatever the message's size.

use std::ops::Range;

use bytes::Bytes;

use super::{Charset, CharsetPolicy, Delimiters, FieldPath, Header, ParseError, escape};

#[derive(Debug, Clone)]
pub struct Message {
    raw: Bytes,
    delims: Delimiters,
    charset: Charset,
    segments: Vec<Range<usize>>,
    header: Header,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

impl Message {
    /// Parses a message: MSH-1/MSH-2 give the delimiters, `\r`, `\n` and
    /// `\r\n` all end segments, MSH-18 (under `charsets`) gives the charset.
    pub fn parse(raw: Bytes, charsets: CharsetPolicy) -> Result<Message, ParseError> {
        let start = leading_noise(&raw);
        let segments = split_segments(&raw, start);
        let msh = segments.first().cloned().ok_or(ParseError::Empty)?;
        let delims = read_delimiters(&raw[msh.clone()])?;
        let header = Header::read(&raw, msh, &delims);
        header.check_required()?;
        let charset = charsets.resolve(&header.charset).map_err(ParseError::UnknownCharset)?;
        Ok(Message { raw, delims, charset, segments, header })
    }

    /// Reads only the header from the first bytes of a frame that will not
    /// be processed (too large, too slow), so the sender can be told why.
    /// The MSH segment must be complete within `head`.
    pub fn parse_header_of_partial(head: &[u8]) -> Option<(Header, Delimiters)> {
        let start = leading_noise(head);
        let end = start + head[start..].iter().position(|&b| b == b'\r' || b == b'\n')?;
        let raw = Bytes::copy_from_slice(&head[..end]);
        let delims = read_delimiters(&raw[start..end]).ok()?;
        Some((Header::read(&raw, start..end, &delims), delims))
    }

    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn delimiters(&self) -> &Delimiters {
        &self.delims
    }

    pub fn charset(&self) -> Charset {
        self.charset
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Segments in order, as raw bytes without their terminator.
    pub fn segments(&self) -> impl Iterator<Item = &[u8]> {
        self.segments.iter().map(|r| &self.raw[r.clone()])
    }

    /// The raw (still escaped) bytes at `path`, or `None` when the message
    /// does not have that segment, field, repetition or component.
    pub fn raw_at(&self, path: &FieldPath) -> Option<&[u8]> {
        let (field, is_msh) = self.field_at(path)?;
        if is_msh && path.field <= 2 {
            // MSH-1 and MSH-2 are the delimiters themselves: never split them.
            return (path.repetition == 1 && path.component.unwrap_or(1) == 1).then_some(field);
        }
        let rep = nth_part(field, self.delims.repetition, path.repetition)?;
        let Some(component) = path.component else { return Some(rep) };
        let comp = nth_part(rep, Some(self.delims.component), component)?;
        match path.subcomponent {
            None => Some(comp),
            Some(sub) => nth_part(comp, self.delims.subcomponent, sub),
        }
    }

    /// The decoded text at `path`: escape sequences resolved, charset applied.
    pub fn text_at(&self, path: &FieldPath) -> Option<String> {
        self.raw_at(path).map(|raw| escape::unescape(raw, &self.delims, self.charset))
    }

    /// How many repetitions the field at `path` has (the path's repetition,
    /// component and subcomponent are ignored); 0 when it is absent or empty.
    pub fn repetitions(&self, path: &FieldPath) -> usize {
        match self.field_at(path) {
            None | Some((b"", _)) => 0,
            Some((_, true)) if path.field <= 2 => 1,
            Some((field, _)) => match self.delims.repetition {
                Some(rep) => memchr::memchr_iter(rep, field).count() + 1,
                None => 1,
            },
        }
    }

    /// Segment IDs in message order (`MSH`, `PID`, `OBX`, `OBX`, ...).
    pub fn segment_ids(&self) -> impl Iterator<Item = &[u8]> {
        self.segments().map(|s| segment_id(s, self.delims.field))
    }

    /// The whole field a path points into, and whether it is in MSH.
    fn field_at(&self, path: &FieldPath) -> Option<(&[u8], bool)> {
        let field_sep = self.delims.field;
        let segment = self.segments().filter(|s| segment_id(s, field_sep) == path.segment).nth(path.occurrence - 1)?;
        let is_msh = &path.segment == b"MSH";
        Some((field_of(segment, path.field, is_msh, &self.delims)?, is_msh))
    }
}

/// A segment's ID: everything before its first field separator.
fn segment_id(segment: &[u8], field_sep: u8) -> &[u8] {
    let end = memchr::memchr(field_sep, segment).unwrap_or(segment.len());
    &segment[..end]
}

/// Whitespace and a UTF-8 byte order mark that some senders put before MSH.
fn leading_noise(raw: &[u8]) -> usize {
    let mut start = 0;
    if raw.starts_with(UTF8_BOM) {
        start = UTF8_BOM.len();
    }
    start + raw[start..].iter().take_while(|b| b.is_ascii_whitespace()).count()
}

/// Splits on `\r`, `\n` or `\r\n`; blank lines are not segments.
fn split_segments(raw: &[u8], start: usize) -> Vec<Range<usize>> {
    let mut segments = Vec::with_capacity(16);
    let mut from = start;
    for end in memchr::memchr2_iter(b'\r', b'\n', &raw[start..]).map(|i| i + start).chain([raw.len()]) {
        if raw[from..end].iter().any(|b| !b.is_ascii_whitespace()) {
            segments.push(from..end);
        }
        from = end + 1;
    }
    segments
}

fn read_delimiters(msh: &[u8]) -> Result<Delimiters, ParseError> {
    if !msh.starts_with(b"MSH") {
        return Err(ParseError::NoMsh);
    }
    let &field = msh.get(3).ok_or(ParseError::BadEncodingCharacters)?;
    let encoding = &msh[4..];
    let len = encoding.iter().position(|&b| b == field).unwrap_or(encoding.len());
    Delimiters::from_msh(field, &encoding[..len])
}

/// Field `n` of a segment. For MSH, field 1 is the field separator itself and
/// field 2 the encoding characters (HL7 numbers MSH fields that way).
fn field_of<'a>(segment: &'a [u8], n: usize, is_msh: bool, delims: &Delimiters) -> Option<&'a [u8]> {
    if is_msh {
        if n == 1 {
            return segment.get(3..4);
        }
        return segment.split(|&b| b == delims.field).nth(n - 1);
    }
    segment.split(|&b| b == delims.field).nth(n)
}

fn nth_part(value: &[u8], sep: Option<u8>, n: usize) -> Option<&[u8]> {
    match sep {
        Some(sep) => value.split(|&b| b == sep).nth(n - 1),
        None => (n == 1).then_some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &[u8] = b"MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240101120000||ADT^A01^ADT_A01|MSG00001|P|2.5.1\r\
EVN|A01|20240101120000\r\
PID|1||12345^^^HOSP^MR~67890^^^LAB^PI||Doe^John^Q||19800101|M|||1 Main St^^Town^ST^12345\r\
OBX|1|ST|CODE1||first\r\
OBX|2|ST|CODE2||second^part&sub\r";

    fn parse(raw: &[u8]) -> Message {
        Message::parse(Bytes::copy_from_slice(raw), CharsetPolicy::default()).unwrap()
    }

    fn text(m: &Message, path: &str) -> Option<String> {
        m.text_at(&path.parse().unwrap())
    }

    #[test]
    fn reads_fields_by_path() {
        let m = parse(ADT);
        assert_eq!(text(&m, "PID-3.1").as_deref(), Some("12345"));
        assert_eq!(text(&m, "PID-3[2].1").as_deref(), Some("67890"));
        assert_eq!(text(&m, "PID-3[2].4").as_deref(), Some("LAB"));
        assert_eq!(text(&m, "PID-5").as_deref(), Some("Doe^John^Q"));
        assert_eq!(text(&m, "PID-5.2").as_deref(), Some("John"));
        assert_eq!(text(&m, "OBX[2]-5.1").as_deref(), Some("second"));
        assert_eq!(text(&m, "OBX[2]-5.2.2").as_deref(), Some("sub"));
        assert_eq!(text(&m, "OBX-5").as_deref(), Some("first"));
        assert_eq!(text(&m, "MSH-1").as_deref(), Some("|"));
        assert_eq!(text(&m, "MSH-2").as_deref(), Some("^~\\&"));
        assert_eq!(text(&m, "MSH-9.2").as_deref(), Some("A01"));
        assert_eq!(text(&m, "MSH-10").as_deref(), Some("MSG00001"));
    }

    #[test]
    fn absent_parts_are_none_and_empty_parts_are_empty() {
        let m = parse(ADT);
        assert_eq!(text(&m, "OBX[3]-5"), None);
        assert_eq!(text(&m, "PID-99"), None);
        assert_eq!(text(&m, "PID-3[3]"), None);
        assert_eq!(text(&m, "PID-5.9"), None);
        assert_eq!(text(&m, "PID-2").as_deref(), Some(""));
        assert_eq!(text(&m, "ZZZ-1"), None);
    }

    #[test]
    fn counts_repetitions_and_lists_segments() {
        let m = parse(ADT);
        let reps = |p: &str| m.repetitions(&p.parse().unwrap());
        assert_eq!((reps("PID-3"), reps("PID-3[2].1"), reps("PID-5"), reps("PID-2"), reps("PID-99"), reps("ZZZ-1")), (2, 2, 1, 0, 0, 0));
        assert_eq!(reps("MSH-2"), 1);
        let ids: Vec<&[u8]> = m.segment_ids().collect();
        assert_eq!(ids, [&b"MSH"[..], b"EVN", b"PID", b"OBX", b"OBX"]);
    }

    #[test]
    fn a_segment_id_must_match_exactly() {
        let m = parse(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPIDX|wrong\rPID|1||right");
        assert_eq!(text(&m, "PID-1").as_deref(), Some("1"));
        assert_eq!(text(&m, "PID-3").as_deref(), Some("right"));
    }

    #[test]
    fn honours_the_message_own_delimiters() {
        let m = parse(b"MSH*^~\\&*APP*FAC*R*RF*20240101**ORU^R01*ID 1 *P*2.3\rPID*1**A|B^C");
        assert_eq!(m.delimiters().field, b'*');
        assert_eq!(text(&m, "MSH-3").as_deref(), Some("APP"));
        assert_eq!(text(&m, "MSH-10").as_deref(), Some("ID 1 "));
        assert_eq!(text(&m, "PID-3.1").as_deref(), Some("A|B"));
        assert_eq!(text(&m, "PID-3.2").as_deref(), Some("C"));
    }

    #[test]
    fn accepts_every_segment_terminator() {
        for sep in [&b"\r"[..], b"\n", b"\r\n"] {
            let raw = [&b"MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5"[..], sep, b"PID|1||42", sep, b"PV1|1|I", sep].concat();
            let m = parse(&raw);
            assert_eq!(m.segments().count(), 3, "{sep:?}");
            assert_eq!(text(&m, "PID-3").as_deref(), Some("42"));
            assert_eq!(text(&m, "PV1-2").as_deref(), Some("I"));
        }
    }

    #[test]
    fn decodes_escapes_and_charsets_in_fields() {
        let m = parse(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5||||||8859/1\rPID|1||1||M\xfcller\\S\\Hans\\F\\x");
        assert_eq!(m.charset(), Charset::Latin1);
        assert_eq!(text(&m, "PID-5").as_deref(), Some("Müller^Hans|x"));
    }

    #[test]
    fn tolerates_leading_whitespace_and_bom() {
        let m = parse(b"\xEF\xBB\xBF\r\n  MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5");
        assert_eq!(&m.header().control_id[..], b"X");
    }

    #[test]
    fn reports_why_a_message_cannot_be_parsed() {
        let cases: [(&[u8], ParseError); 5] = [
            (b"", ParseError::Empty),
            (b"PID|1||42", ParseError::NoMsh),
            (b"MSH|", ParseError::BadEncodingCharacters),
            (b"MSH|^~\\&|A|B|C|D|1||ADT^A01||P|2.5", ParseError::MissingField("MSH-10")),
            (b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5||||||KLINGON", ParseError::UnknownCharset("KLINGON".into())),
        ];
        for (raw, want) in cases {
            assert_eq!(Message::parse(Bytes::copy_from_slice(raw), CharsetPolicy::default()).unwrap_err(), want);
        }
    }

    #[test]
    fn reads_the_header_of_a_partial_frame() {
        let (header, delims) = Message::parse_header_of_partial(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|CID|P|2.5\rPID|1||trunc").unwrap();
        assert_eq!(&header.control_id[..], b"CID");
        assert_eq!(delims.field, b'|');
        // The MSH itself is cut off: its fields cannot be trusted.
        assert!(Message::parse_header_of_partial(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|CI").is_none());
    }
}
