//! The separators a message declares in MSH-1 and MSH-2 (HL7 v2 chapter 2.5).
//! Every message carries its own; nothing here assumes `|^~\&`.

use super::ParseError;

/// Field, component, repetition, escape, subcomponent and (v2.7+) truncation
/// characters. Optional ones are absent when MSH-2 is shorter than usual.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: u8,
    pub component: u8,
    pub repetition: Option<u8>,
    pub escape: Option<u8>,
    pub subcomponent: Option<u8>,
    pub truncation: Option<u8>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            field: b'|',
            component: b'^',
            repetition: Some(b'~'),
            escape: Some(b'\\'),
            subcomponent: Some(b'&'),
            truncation: None,
        }
    }
}

impl Delimiters {
    /// Reads MSH-1 (`field`) and MSH-2 (`encoding`: the bytes up to the next
    /// field separator). Rejects separators that would make the message
    /// ambiguous: repeated, alphanumeric, or a segment terminator.
    pub fn from_msh(field: u8, encoding: &[u8]) -> Result<Self, ParseError> {
        if encoding.is_empty() || encoding.len() > 5 {
            return Err(ParseError::BadEncodingCharacters);
        }
        let mut seen = vec![field];
        for &b in encoding {
            if seen.contains(&b) {
                return Err(ParseError::BadEncodingCharacters);
            }
            seen.push(b);
        }
        if seen.iter().any(|b| !is_valid_separator(*b)) {
            return Err(ParseError::BadEncodingCharacters);
        }
        let at = |i: usize| encoding.get(i).copied();
        Ok(Delimiters {
            field,
            component: encoding[0],
            repetition: at(1),
            escape: at(2),
            subcomponent: at(3),
            truncation: at(4),
        })
    }

    /// MSH-2 as it would be written for these delimiters.
    pub fn encoding_characters(&self) -> Vec<u8> {
        let mut out = vec![self.component];
        out.extend(
            [self.repetition, self.escape, self.subcomponent, self.truncation]
                .into_iter()
                .map_while(|c| c),
        );
        out
    }

    /// Whether `b` is any of the declared separators or the escape character.
    pub fn is_special(&self, b: u8) -> bool {
        b == self.field
            || b == self.component
            || Some(b) == self.repetition
            || Some(b) == self.escape
            || Some(b) == self.subcomponent
            || Some(b) == self.truncation
    }
}

fn is_valid_separator(b: u8) -> bool {
    b.is_ascii_graphic() && !b.is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_standard_and_custom_separators() {
        assert_eq!(Delimiters::from_msh(b'|', b"^~\\&").unwrap(), Delimiters::default());
        let d = Delimiters::from_msh(b'*', b"^~\\&").unwrap();
        assert_eq!(d.field, b'*');
        assert_eq!(d.encoding_characters(), b"^~\\&");
        let d = Delimiters::from_msh(b'|', b"^~\\&#").unwrap();
        assert_eq!(d.truncation, Some(b'#'));
        let d = Delimiters::from_msh(b'|', b"^").unwrap();
        assert_eq!((d.repetition, d.escape), (None, None));
    }

    #[test]
    fn refuses_ambiguous_separators() {
        for (f, enc) in [(b'|', &b"^^\\&"[..]), (b'|', b"|~\\&"), (b'|', b"A~\\&"), (b'|', b""), (b'|', b"^~\\&#$"), (b'|', b"^~\r&")] {
            assert!(Delimiters::from_msh(f, enc).is_err(), "{:?}", String::from_utf8_lossy(enc));
        }
    }
}
