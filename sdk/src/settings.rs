//! The plugin's settings: the `config` table next to `plugin = "..."` in
//! the engine's configuration, handed over as JSON for each call.

use serde::de::DeserializeOwned;

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
/// sender's: the [`Issue`] has code 207 and a text saying what is wrong
/// (`invalid plugin settings: missing field `paths` at line 1 column 2`).
pub fn settings<T: DeserializeOwned>() -> Result<T, Issue> {
    serde_json::from_str(&backend::settings_json()).map_err(Issue::invalid_settings)
}
