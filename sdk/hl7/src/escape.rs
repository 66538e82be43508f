//! HL7 escape sequences (chapter 2.7): `\F\ \S\ \T\ \R\ \E\ \P\ \Xhh..\ \.br\`.
//! Decoding works on raw field bytes (delimiters are ASCII in every supported
//! charset) and yields text; encoding turns text back into field bytes.

use super::{Charset, Delimiters};

/// Decodes a field's raw bytes into text: escape sequences first (they may
/// produce raw bytes through `\X..\`), then the charset.
pub fn unescape(raw: &[u8], delims: &Delimiters, charset: Charset) -> String {
    let Some(esc) = delims.escape.filter(|e| raw.contains(e)) else {
        return charset.decode(raw).into_owned();
    };
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.iter().position(|&b| b == esc) {
        bytes.extend_from_slice(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(len) = after.iter().position(|&b| b == esc) else {
            // An escape character with no closing one is data, kept as sent.
            bytes.extend_from_slice(&rest[start..]);
            rest = &[];
            break;
        };
        let body = &after[..len];
        if !decode_sequence(body, delims, &mut bytes) {
            // Unknown or charset-switching sequences are kept verbatim.
            bytes.push(esc);
            bytes.extend_from_slice(body);
            bytes.push(esc);
        }
        rest = &after[len + 1..];
    }
    bytes.extend_from_slice(rest);
    charset.decode(&bytes).into_owned()
}

/// Appends the bytes one escape sequence stands for; false when it is not one
/// Sluice interprets.
fn decode_sequence(body: &[u8], delims: &Delimiters, out: &mut Vec<u8>) -> bool {
    let single = |b: Option<u8>, out: &mut Vec<u8>| match b {
        Some(b) => {
            out.push(b);
            true
        }
        None => false,
    };
    match body {
        b"F" => single(Some(delims.field), out),
        b"S" => single(Some(delims.component), out),
        b"R" => single(delims.repetition, out),
        b"E" => single(delims.escape, out),
        b"T" => single(delims.subcomponent, out),
        b"P" => single(delims.truncation, out),
        b".br" => single(Some(b'\n'), out),
        // Highlighting on/off carries no text.
        b"H" | b"N" => true,
        [b'X', hex @ ..] if !hex.is_empty() && hex.len() % 2 == 0 => {
            let Some(decoded) = decode_hex(hex) else { return false };
            out.extend_from_slice(&decoded);
            true
        }
        _ => false,
    }
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    hex.chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// Encodes text as field bytes: separators and the escape character become
/// escape sequences, line breaks `\.br\`, other control characters and
/// characters the charset cannot hold `\Xhh\` (their UTF-8 bytes, or `?` when
/// that is not meaningful in the target set).
pub fn escape(text: &str, delims: &Delimiters, charset: Charset) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let esc = delims.escape;
    for c in text.chars() {
        // What the charset cannot hold is written `?`, escaped like any other
        // `?` (a message may declare it as a separator).
        let c = if charset.holds(c) { c } else { '?' };
        let seq: Option<&[u8]> = match c {
            _ if c as u32 == delims.field as u32 => Some(b"F"),
            _ if c as u32 == delims.component as u32 => Some(b"S"),
            _ if Some(c as u32) == delims.repetition.map(u32::from) => Some(b"R"),
            _ if Some(c as u32) == delims.escape.map(u32::from) => Some(b"E"),
            _ if Some(c as u32) == delims.subcomponent.map(u32::from) => Some(b"T"),
            _ if Some(c as u32) == delims.truncation.map(u32::from) => Some(b"P"),
            // `\.br\` holds a dot: where the dot is a separator, `\X0A\` (below) says the same.
            '\n' if !delims.is_special(b'.') => Some(b".br"),
            _ => None,
        };
        match (seq, esc) {
            (Some(seq), Some(esc)) => {
                out.push(esc);
                out.extend_from_slice(seq);
                out.push(esc);
            }
            // Without an escape character a separator cannot be written; a
            // space keeps the structure of the message intact.
            (Some(_), None) => out.push(b' '),
            (None, Some(esc)) if c.is_ascii_control() => {
                out.push(esc);
                out.extend_from_slice(format!("X{:02X}", c as u32).as_bytes());
                out.push(esc);
            }
            (None, None) if c.is_ascii_control() => out.push(b' '),
            _ => {
                charset.encode_char(c, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std() -> Delimiters {
        Delimiters::default()
    }

    #[test]
    fn decodes_every_standard_sequence() {
        let d = std();
        let raw = br"a\F\b\S\c\T\d\R\e\E\f\.br\g";
        assert_eq!(unescape(raw, &d, Charset::Utf8), "a|b^c&d~e\\f\ng");
        assert_eq!(unescape(br"\X0D0A\", &d, Charset::Utf8), "\r\n");
        assert_eq!(unescape(br"M\XFC\ller", &d, Charset::Latin1), "Müller");
        assert_eq!(unescape(br"\XC3BC\", &d, Charset::Utf8), "ü");
        assert_eq!(unescape(br"\H\bold\N\", &d, Charset::Utf8), "bold");
    }

    #[test]
    fn a_line_break_is_hex_escaped_where_the_dot_is_a_separator() {
        // Found by the escape_roundtrip fuzzer (tests/fuzz): `\.br\` would put
        // a raw separator into the field and split it.
        let d = Delimiters::from_msh(b'|', b"^~\\.").unwrap();
        let escaped = escape("a\nb", &d, Charset::Utf8);
        assert!(!escaped.contains(&b'.'), "{:?}", String::from_utf8_lossy(&escaped));
        assert_eq!(unescape(&escaped, &d, Charset::Utf8), "a\nb");
        assert_eq!(escape("a\nb", &std(), Charset::Utf8), b"a\\.br\\b", "the usual delimiters keep `\\.br\\`");
    }

    #[test]
    fn the_stand_in_for_a_character_the_charset_lacks_is_escaped_where_it_is_a_separator() {
        // Found by the ack_builder fuzzer (tests/fuzz): with `?` as the escape
        // character, the `?` written for a character Latin-1 cannot hold
        // opened a bogus escape sequence.
        let d = Delimiters::from_msh(b'|', b"^~?&").unwrap();
        let escaped = escape("a\u{2713}b\u{3}c", &d, Charset::Latin1);
        assert_eq!(unescape(&escaped, &d, Charset::Latin1), "a?b\u{3}c", "{:?}", String::from_utf8_lossy(&escaped));
        assert_eq!(escape("a\u{2713}b", &std(), Charset::Latin1), b"a?b", "a plain `?` where it is not special");
    }

    #[test]
    fn keeps_unknown_and_unterminated_sequences() {
        let d = std();
        assert_eq!(unescape(br"\Zabc\", &d, Charset::Utf8), r"\Zabc\");
        assert_eq!(unescape(br"\XZZ\", &d, Charset::Utf8), r"\XZZ\");
        assert_eq!(unescape(br"50\ off", &d, Charset::Utf8), r"50\ off");
    }

    #[test]
    fn uses_the_message_delimiters() {
        let d = Delimiters::from_msh(b'*', b"^~#&").unwrap();
        assert_eq!(unescape(b"a#F#b#E#c", &d, Charset::Utf8), "a*b#c");
        assert_eq!(escape("a*b#c|d", &d, Charset::Utf8), b"a#F#b#E#c|d");
    }

    #[test]
    fn escape_then_unescape_is_identity() {
        let d = std();
        for text in ["plain", "a|b^c&d~e\\f", "line\nbreak", "cr\rhere", "Grüße", "tab\t", "", "\\"] {
            for cs in [Charset::Utf8, Charset::Latin1] {
                let encoded = escape(text, &d, cs);
                assert_eq!(unescape(&encoded, &d, cs), text, "{cs:?} {encoded:?}");
            }
        }
    }

    #[test]
    fn unrepresentable_characters_become_question_marks() {
        assert_eq!(escape("5 €", &std(), Charset::Latin1), b"5 ?");
        assert_eq!(escape("ü", &std(), Charset::Ascii), b"?");
    }
}
