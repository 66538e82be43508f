//! The plugin's settings: the `config` table next to `plugin = "..."` in
//! the engine's configuration, handed over as JSON for each call.
//!
//! [`settings`] decodes them into any `serde` type; [`duration`] reads a
//! time span the way the engine's own configuration writes them.

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{self, DeserializeOwned, Visitor};

use crate::{Issue, backend};

/// Decodes this use of the plugin's settings into `T` (`{}` when the
/// configuration gives none).
///
/// Settings are read per call, not cached: the host may give each message a
/// fresh instance, and the same plugin may be configured twice with
/// different settings.
///
/// # Errors
///
/// Settings that do not fit `T` are a configuration mistake, not the
/// sender's: the [`Issue`] has code 207 and a text saying what is wrong,
/// naming the setting when the mistake is inside one
/// (`invalid plugin settings: missing field `paths` at line 1 column 2`,
/// `invalid plugin settings: `timeout`: invalid type: boolean `true`, ...`).
pub fn settings<T: DeserializeOwned>() -> Result<T, Issue> {
    let json = backend::settings_json();
    let mut de = serde_json::Deserializer::from_str(&json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        // Only a value that does not fit has a setting to name: the path is
        // `.` for a missing or unknown key (serde's text names it already),
        // and malformed JSON is not inside any setting.
        let path = err.path().to_string();
        let err = err.into_inner();
        match err.classify() {
            serde_json::error::Category::Data if path != "." => Issue::invalid_settings(format_args!("`{path}`: {err}")),
            _ => Issue::invalid_settings(err),
        }
    })?;
    de.end().map_err(Issue::invalid_settings)?;
    Ok(value)
}

/// Reads a time span setting: text as in the engine's configuration
/// (`"30s"`, `"1500ms"`, `"2m 30s"`) or a number of milliseconds. Use it
/// with serde's `deserialize_with`:
///
/// ```
/// use std::time::Duration;
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Settings {
///     #[serde(default = "thirty_seconds", deserialize_with = "sluice_sdk::settings::duration")]
///     timeout: Duration,
/// }
///
/// fn thirty_seconds() -> Duration {
///     Duration::from_secs(30)
/// }
///
/// let parse = |json| serde_json::from_str::<Settings>(json).map(|s| s.timeout);
/// assert_eq!(parse(r#"{"timeout": "2m 30s"}"#).unwrap(), Duration::from_secs(150));
/// assert_eq!(parse(r#"{"timeout": 1500}"#).unwrap(), Duration::from_millis(1500));
/// assert_eq!(parse("{}").unwrap(), Duration::from_secs(30));
/// assert!(parse(r#"{"timeout": "soon"}"#).is_err());
/// ```
pub fn duration<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    de.deserialize_any(DurationVisitor)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"30s\", \"500ms\" or \"2m\", or a number of milliseconds")
    }

    fn visit_u64<E: de::Error>(self, millis: u64) -> Result<Duration, E> {
        Ok(Duration::from_millis(millis))
    }

    fn visit_i64<E: de::Error>(self, millis: i64) -> Result<Duration, E> {
        u64::try_from(millis).map(Duration::from_millis).map_err(|_| E::custom(format_args!("{millis} ms: a duration cannot be negative")))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        humantime::parse_duration(text).map_err(|err| E::custom(format_args!("`{text}` is not a duration ({err}); write it like \"30s\", \"500ms\" or \"2m\"")))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use crate::testing::with_settings;
    use crate::{Issue, settings};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(deserialize_with = "super::duration")]
        timeout: Duration,
        #[serde(default)]
        names: Vec<String>,
    }

    fn read(json: &str) -> Result<Sample, Issue> {
        with_settings(json, settings::<Sample>)
    }

    #[track_caller]
    fn assert_refused(json: &str, text: &str) {
        let issue = read(json).unwrap_err();
        assert_eq!(issue.text, text);
    }

    #[test]
    fn reads_durations_as_text_or_milliseconds() {
        assert_eq!(read(r#"{"timeout": "30s"}"#).unwrap().timeout, Duration::from_secs(30));
        assert_eq!(read(r#"{"timeout": "250ms"}"#).unwrap().timeout, Duration::from_millis(250));
        assert_eq!(read(r#"{"timeout": "1m 30s"}"#).unwrap().timeout, Duration::from_secs(90));
        assert_eq!(read(r#"{"timeout": 1500}"#).unwrap().timeout, Duration::from_millis(1500));
        assert_eq!(read(r#"{"timeout": 1, "names": ["a"]}"#).unwrap().names, ["a"]);
    }

    #[test]
    fn names_the_setting_that_does_not_fit() {
        assert_refused(
            r#"{"timeout": "soon"}"#,
            "invalid plugin settings: `timeout`: `soon` is not a duration (expected number at 0); write it like \"30s\", \"500ms\" or \"2m\" at line 1 column 18",
        );
        assert_refused(r#"{"timeout": -5}"#, "invalid plugin settings: `timeout`: -5 ms: a duration cannot be negative at line 1 column 14");
        assert_refused(
            r#"{"timeout": true}"#,
            "invalid plugin settings: `timeout`: invalid type: boolean `true`, expected a duration such as \"30s\", \"500ms\" or \"2m\", or a number of milliseconds at line 1 column 16",
        );
        assert_refused(
            r#"{"timeout": 1, "names": ["a", 2]}"#,
            "invalid plugin settings: `names[1]`: invalid type: integer `2`, expected a string at line 1 column 31",
        );
    }

    #[test]
    fn object_level_mistakes_keep_serde_text() {
        assert_refused("{}", "invalid plugin settings: missing field `timeout` at line 1 column 2");
        assert!(read(r#"{"timeout": 1, "timeuot": 2}"#).unwrap_err().text.contains("unknown field `timeuot`"));
        assert!(read(r#"{"timeout": 1} x"#).unwrap_err().text.starts_with("invalid plugin settings: trailing characters"));
    }
}
