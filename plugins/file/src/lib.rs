//! Stock connector `file`: writes each message, as received, to its own
//! file in a directory.
//!
//! Settings:
//!
//! | key       | default              | meaning                                          |
//! |-----------|----------------------|--------------------------------------------------|
//! | `dir`     | required             | the directory to write into; it must exist and be granted to the plugin |
//! | `pattern` | `"{control_id}.hl7"` | the file name, with placeholders (below)         |
//!
//! | placeholder    | value                                             |
//! |----------------|---------------------------------------------------|
//! | `{control_id}` | MSH-10                                            |
//! | `{type}`       | MSH-9.1 and MSH-9.2 joined with `_` (`ADT_A01`)   |
//! | `{sender}`     | MSH-3.1 (sending application)                     |
//! | `{facility}`   | MSH-4.1 (sending facility)                        |
//! | `{timestamp}`  | MSH-7.1 as sent (`20240101120000+0100`)           |
//! | `{attempt}`    | the delivery attempt, from 1                      |
//!
//! The plugin sees only the directories the configuration grants it; they
//! appear at the same path inside the sandbox:
//!
//! ```toml
//! [connectors.archive]
//! plugin = "file"
//! config = { dir = "/var/lib/sluice/out", pattern = "{type}-{control_id}.hl7" }
//!
//! [plugins.file]
//! allow.write_dirs = ["/var/lib/sluice/out"]
//! ```
//!
//! A value can never leave the directory or hide the file: every character
//! other than letters, digits and `-_.+=@,` becomes `_` (so `/`, `\`, NUL
//! and control characters never get through), a `.` that would start or
//! end the value or follow another `.` becomes `_`, and an empty value is
//! `_`. Distinct values can thus give the same name, and the later message
//! then replaces the earlier file: use `{control_id}` in the pattern.
//!
//! Each file is written under a hidden temporary name (`.NAME.tmp`) in the
//! same directory, synced, then renamed over `NAME`, so a reader never sees
//! half a message, and a delivery repeated after a crash rewrites the same
//! file.
//!
//! Results: written is delivered. A directory that is missing, not granted
//! or not writable, and any other write error, retry (the operator can fix
//! them). Settings that cannot be used (a missing or unknown key, an
//! unknown placeholder, a `/` in the pattern) and a file name longer than
//! the file system allows reject the message, with a text naming the
//! setting.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde::Deserialize;
use sluice_sdk::{Connector, Delivery, Header, Issue, Message};

pub struct FileConnector;

sluice_sdk::export_connector!(FileConnector);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    dir: String,
    #[serde(default = "default_pattern")]
    pattern: String,
}

fn default_pattern() -> String {
    "{control_id}.hl7".to_owned()
}

/// The longest file name most file systems take (ext4, XFS, APFS: 255
/// bytes), less what the temporary name adds.
const MAX_NAME: usize = 255 - TEMP_EXTRA;
/// `.` before and `.tmp` after the final name.
const TEMP_EXTRA: usize = 5;

impl Connector for FileConnector {
    fn deliver(msg: &Message, attempt: u32) -> Delivery {
        let (dir, pattern) = match read_settings() {
            Ok(settings) => settings,
            Err(issue) => return Delivery::Reject(issue.text),
        };
        let name = pattern.file_name(&msg.header(), attempt);
        if name.len() > MAX_NAME {
            return Delivery::Reject(format!("file name `{name}` is {} bytes, more than the {MAX_NAME} allowed: shorten `pattern`", name.len()));
        }
        let dir = Path::new(&dir);
        if let Err(err) = check_dir(dir) {
            return Delivery::Retry(err);
        }
        match write_atomically(dir, &name, &msg.raw()) {
            Ok(()) => Delivery::Delivered,
            Err(err) => Delivery::Retry(format!("cannot write `{}`: {err}", dir.join(&name).display())),
        }
    }
}

fn read_settings() -> Result<(String, Pattern), Issue> {
    let settings: Settings = sluice_sdk::settings()?;
    if settings.dir.is_empty() {
        return Err(Issue::invalid_settings("`dir`: is empty; name the directory to write into"));
    }
    let pattern = Pattern::parse(&settings.pattern).map_err(|why| Issue::invalid_settings(format_args!("`pattern`: {why}")))?;
    Ok((settings.dir, pattern))
}

/// Tells a missing or ungranted directory (the operator can fix it) apart
/// from a failed write. Inside the sandbox a directory that is not granted
/// looks missing.
fn check_dir(dir: &Path) -> Result<(), String> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("`{}` (setting `dir`) is not a directory", dir.display())),
        Err(err) => {
            Err(format!("directory `{}` (setting `dir`) is missing or not granted to the plugin ([plugins.file] allow.write_dirs): {err}", dir.display()))
        }
    }
}

/// Writes `bytes` to `dir/name` so that the file is either absent, as it
/// was, or complete: a hidden temporary file in the same directory (a
/// rename does not cross file systems), synced, then renamed over the name.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!(".{name}.tmp"));
    let written = File::create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(err) = written.and_then(|()| fs::rename(&temp, dir.join(name))) {
        // Best effort: a leftover is overwritten by the next attempt anyway.
        let _ = fs::remove_file(&temp);
        return Err(err);
    }
    sync_dir(dir)
}

/// Makes the rename itself durable: the message leaves the outbox once this
/// returns. File systems that cannot sync a directory answer `Unsupported`
/// or `InvalidInput`; there the rename is as durable as they make it.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(err) if matches!(err.kind(), io::ErrorKind::Unsupported | io::ErrorKind::InvalidInput) => Ok(()),
        other => other,
    }
}

/// A file name pattern, checked once per call: literal text and placeholders.
#[derive(Debug, PartialEq, Eq)]
struct Pattern(Vec<Part>);

#[derive(Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    ControlId,
    Type,
    Sender,
    Facility,
    Timestamp,
    Attempt,
}

const FIELDS: &[(&str, Field)] = &[
    ("control_id", Field::ControlId),
    ("type", Field::Type),
    ("sender", Field::Sender),
    ("facility", Field::Facility),
    ("timestamp", Field::Timestamp),
    ("attempt", Field::Attempt),
];

impl Pattern {
    fn parse(pattern: &str) -> Result<Pattern, String> {
        if pattern.is_empty() {
            return Err("is empty; the default is {control_id}.hl7".to_owned());
        }
        if pattern.starts_with('.') {
            return Err(format!("`{pattern}` would make hidden files; start it with something other than `.`"));
        }
        let mut parts = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            let literal_end = rest.find(['{', '}']).unwrap_or(rest.len());
            let (literal, tail) = rest.split_at(literal_end);
            if !literal.is_empty() {
                check_literal(literal)?;
                parts.push(Part::Literal(literal.to_owned()));
            }
            rest = tail;
            if let Some(after) = rest.strip_prefix('{') {
                let Some((name, tail)) = after.split_once('}') else {
                    return Err(format!("`{{` in `{pattern}` has no closing `}}`"));
                };
                let field = FIELDS.iter().find(|(known, _)| *known == name).map(|&(_, field)| field).ok_or_else(|| {
                    let known: Vec<String> = FIELDS.iter().map(|(known, _)| format!("{{{known}}}")).collect();
                    format!("unknown placeholder `{{{name}}}` in `{pattern}` (known: {})", known.join(", "))
                })?;
                parts.push(Part::Field(field));
                rest = tail;
            } else if rest.starts_with('}') {
                return Err(format!("`}}` in `{pattern}` closes no placeholder"));
            }
        }
        if !parts.iter().any(|part| matches!(part, Part::Field(_))) {
            return Err(format!("`{pattern}` has no placeholder, so every message would overwrite the same file; use {{control_id}}"));
        }
        Ok(Pattern(parts))
    }

    fn file_name(&self, header: &Header, attempt: u32) -> String {
        let mut name = String::new();
        for part in &self.0 {
            match part {
                Part::Literal(text) => name.push_str(text),
                Part::Field(field) => name.push_str(&sanitise(&value(*field, header, attempt))),
            }
        }
        name
    }
}

/// The pattern's own text must name a file in `dir`, not a path.
fn check_literal(literal: &str) -> Result<(), String> {
    if let Some(c) = literal.chars().find(|&c| c == '/' || c == '\\' || c.is_control()) {
        return Err(format!("{} is not allowed: the pattern names a file in `dir`, nothing else", describe(c)));
    }
    if literal.contains("..") {
        return Err("`..` is not allowed: the pattern names a file in `dir`, nothing else".to_owned());
    }
    Ok(())
}

fn describe(c: char) -> String {
    match c {
        '/' | '\\' => format!("`{c}`"),
        _ => format!("control character U+{:04X}", u32::from(c)),
    }
}

fn value(field: Field, header: &Header, attempt: u32) -> String {
    match field {
        Field::ControlId => header.control_id.clone(),
        Field::Type if header.trigger_event.is_empty() => header.message_code.clone(),
        Field::Type => format!("{}_{}", header.message_code, header.trigger_event),
        Field::Sender => header.sending_application.clone(),
        Field::Facility => header.sending_facility.clone(),
        Field::Timestamp => header.timestamp.clone(),
        Field::Attempt => attempt.to_string(),
    }
}

/// A message's value made safe for a file name: no separator, control
/// character or `..`, no leading or trailing dot, never empty.
fn sanitise(value: &str) -> String {
    let mut safe = String::with_capacity(value.len());
    for c in value.chars() {
        let c = if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '=' | '@' | ',') { c } else { '_' };
        let lone_dot = c == '.' && !safe.is_empty() && !safe.ends_with('.');
        safe.push(if c == '.' && !lone_dot { '_' } else { c });
    }
    if safe.ends_with('.') {
        safe.pop();
        safe.push('_');
    }
    if safe.is_empty() {
        safe.push('_');
    }
    safe
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use sluice_sdk::{Delivery, testing};
    use tempfile::TempDir;

    use super::{FileConnector, Pattern, sanitise};

    const ADT: &str = "MSH|^~\\&|ADMIT^1.2^ISO|MAIN HOSP|EHR|WARD|20240101120000+0100||ADT^A01^ADT_A01|MSG1|P|2.5\nPID|1||42";
    const ADT_RAW: &[u8] = b"MSH|^~\\&|ADMIT^1.2^ISO|MAIN HOSP|EHR|WARD|20240101120000+0100||ADT^A01^ADT_A01|MSG1|P|2.5\rPID|1||42";

    fn settings(dir: &Path, pattern: Option<&str>) -> String {
        let dir = dir.to_str().expect("temporary directories have UTF-8 paths");
        match pattern {
            Some(pattern) => format!(r#"{{"dir": "{dir}", "pattern": "{pattern}"}}"#),
            None => format!(r#"{{"dir": "{dir}"}}"#),
        }
    }

    /// The names in `dir`, sorted, hidden ones included.
    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[track_caller]
    fn assert_bad_settings(settings: &str, says: &str) {
        let delivery = testing::deliver::<FileConnector>(ADT, 1, settings);
        let Delivery::Reject(text) = delivery else { panic!("expected a reject for {settings}, got {delivery:?}") };
        assert!(text.starts_with("invalid plugin settings: "), "{text}");
        assert!(text.contains(says), "`{text}` should say `{says}`");
    }

    #[test]
    fn writes_the_raw_message_under_its_control_id() {
        let dir = TempDir::new().unwrap();
        assert_eq!(testing::deliver::<FileConnector>(ADT, 1, &settings(dir.path(), None)), Delivery::Delivered);
        assert_eq!(files(dir.path()), ["MSG1.hl7"], "no temporary file left");
        assert_eq!(fs::read(dir.path().join("MSG1.hl7")).unwrap(), ADT_RAW);
    }

    #[test]
    fn fills_every_placeholder() {
        let dir = TempDir::new().unwrap();
        let pattern = "{type}-{sender}-{facility}-{timestamp}-{control_id}-{attempt}.txt";
        assert_eq!(testing::deliver::<FileConnector>(ADT, 3, &settings(dir.path(), Some(pattern))), Delivery::Delivered);
        assert_eq!(files(dir.path()), ["ADT_A01-ADMIT-MAIN_HOSP-20240101120000+0100-MSG1-3.txt"]);
    }

    #[test]
    fn a_repeated_delivery_rewrites_the_same_file() {
        let dir = TempDir::new().unwrap();
        // What a crash between writing and renaming leaves behind.
        fs::write(dir.path().join(".MSG1.hl7.tmp"), b"half a mess").unwrap();
        fs::write(dir.path().join("MSG1.hl7"), b"an older copy").unwrap();
        assert_eq!(testing::deliver::<FileConnector>(ADT, 2, &settings(dir.path(), None)), Delivery::Delivered);
        assert_eq!(files(dir.path()), ["MSG1.hl7"]);
        assert_eq!(fs::read(dir.path().join("MSG1.hl7")).unwrap(), ADT_RAW);
    }

    #[test]
    fn values_cannot_escape_the_directory() {
        let dir = TempDir::new().unwrap();
        let hostile = "MSH|^~\\&|..|\\E\\etc|||||ADT^A01|../../etc/passwd|P|2.5";
        let pattern = "{sender}-{facility}-{timestamp}-{control_id}.hl7";
        assert_eq!(testing::deliver::<FileConnector>(hostile, 1, &settings(dir.path(), Some(pattern))), Delivery::Delivered);
        assert_eq!(files(dir.path()), ["__-_etc-_-_._.__etc_passwd.hl7"]);
    }

    #[test]
    fn sanitises_values() {
        let cases = [
            ("MSG1", "MSG1"),
            ("", "_"),
            ("a/b\\c", "a_b_c"),
            ("..", "__"),
            ("...x", "_._x"),
            ("a..b", "a._b"),
            (".hidden", "_hidden"),
            ("x.", "x_"),
            ("1.2.3", "1.2.3"),
            ("tab\there\0nul\r\n", "tab_here_nul__"),
            ("Müller Straße", "Müller_Straße"),
            ("a:b*c?d\"e<f>g|h", "a_b_c_d_e_f_g_h"),
            ("20240101+0100", "20240101+0100"),
        ];
        for (value, want) in cases {
            assert_eq!(sanitise(value), want, "{value:?}");
        }
    }

    #[test]
    fn a_missing_directory_retries() {
        let dir = TempDir::new().unwrap();
        let missing = dir.path().join("not-yet");
        let Delivery::Retry(text) = testing::deliver::<FileConnector>(ADT, 1, &settings(&missing, None)) else { panic!("expected a retry") };
        assert!(text.contains(&format!("directory `{}` (setting `dir`) is missing or not granted to the plugin", missing.display())), "{text}");

        let not_a_dir = dir.path().join("plain");
        fs::write(&not_a_dir, b"").unwrap();
        let Delivery::Retry(text) = testing::deliver::<FileConnector>(ADT, 1, &settings(&not_a_dir, None)) else { panic!("expected a retry") };
        assert!(text.ends_with("(setting `dir`) is not a directory"), "{text}");
    }

    #[test]
    fn an_overlong_name_is_rejected() {
        let dir = TempDir::new().unwrap();
        let long_id = "X".repeat(260);
        let msg = format!("MSH|^~\\&|A|B|C|D|1||ADT^A01|{long_id}|P|2.5");
        let Delivery::Reject(text) = testing::deliver::<FileConnector>(&msg, 1, &settings(dir.path(), None)) else { panic!("expected a reject") };
        assert!(text.ends_with("is 264 bytes, more than the 250 allowed: shorten `pattern`"), "{text}");
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn parses_patterns() {
        use super::Field::*;
        use super::Part::*;
        assert_eq!(Pattern::parse("{control_id}.hl7").unwrap(), Pattern(vec![Field(ControlId), Literal(".hl7".into())]));
        assert_eq!(Pattern::parse("in-{type}{attempt}").unwrap(), Pattern(vec![Literal("in-".into()), Field(Type), Field(Attempt)]));
    }

    #[test]
    fn refuses_settings_it_cannot_use() {
        let dir = TempDir::new().unwrap();
        let with = |pattern: &str| settings(dir.path(), Some(pattern));
        assert_bad_settings("{}", "missing field `dir`");
        assert_bad_settings(r#"{"dir": ""}"#, "`dir`: is empty");
        assert_bad_settings(r#"{"dir": 7}"#, "`dir`: invalid type: integer `7`");
        assert_bad_settings(r#"{"dir": "/tmp", "patern": "x"}"#, "unknown field `patern`");
        assert_bad_settings(
            &with("{control_id}.{ext}"),
            "`pattern`: unknown placeholder `{ext}` in `{control_id}.{ext}` (known: {control_id}, {type}, {sender}, {facility}, {timestamp}, {attempt})",
        );
        assert_bad_settings(&with("{control_id"), "`pattern`: `{` in `{control_id` has no closing `}`");
        assert_bad_settings(&with("x}{control_id}"), "`pattern`: `}` in `x}{control_id}` closes no placeholder");
        assert_bad_settings(&with(""), "`pattern`: is empty");
        assert_bad_settings(&with("out.hl7"), "`pattern`: `out.hl7` has no placeholder");
        assert_bad_settings(&with("sub/{control_id}"), "`pattern`: `/` is not allowed");
        assert_bad_settings(&with("sub\\\\{control_id}"), "`pattern`: `\\` is not allowed");
        assert_bad_settings(&with("..{control_id}"), "`pattern`: `..{control_id}` would make hidden files");
        assert_bad_settings(&with("x..{control_id}"), "`pattern`: `..` is not allowed");
        assert_bad_settings(&with("x\\t{control_id}"), "`pattern`: control character U+0009 is not allowed");
        assert!(files(dir.path()).is_empty());
    }
}
