//! Escapes and charsets: for any separators a message may declare and any
//! text the charset can hold, unescape(escape(x)) == x and decode(encode(x))
//! == x; unescaping any bytes never panics.
//! Input: MSH-1 and MSH-2 (up to 6 bytes), a charset choice, then the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_fuzz::hl7::{Charset, Delimiters, escape};

fuzz_target!(|data: &[u8]| {
    let [field, len, choice, rest @ ..] = data else { return };
    let len = usize::from(*len % 6).min(rest.len());
    let (encoding, text) = rest.split_at(len);
    let Ok(delims) = Delimiters::from_msh(*field, encoding) else { return };
    let charset = [Charset::Utf8, Charset::Latin1, Charset::Ascii][usize::from(*choice % 3)];

    // Any bytes unescape to some text.
    let _ = escape::unescape(text, &delims, charset);

    let text: String = String::from_utf8_lossy(text).chars().filter(|&c| charset.holds(c)).collect();
    let mut encoded = Vec::new();
    for c in text.chars() {
        assert!(charset.encode_char(c, &mut encoded));
    }
    assert_eq!(charset.decode(&encoded), text, "decode(encode(x)) == x");

    let escaped = escape::escape(&text, &delims, charset);
    for b in [Some(delims.field), Some(delims.component), delims.repetition, delims.subcomponent, Some(b'\r'), Some(b'\n')].into_iter().flatten() {
        if delims.escape.is_some() {
            assert!(!escaped.contains(&b), "the escaped text has no separator {b:#04x}: {escaped:?}");
        }
    }
    if delims.escape.is_some() {
        assert_eq!(escape::unescape(&escaped, &delims, charset), text, "unescape(escape(x)) == x");
    }
});
