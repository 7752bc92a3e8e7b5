//! Plugin names. The host compiles this very file into `cme-model` (`#[path]`): the engine,
//! the mock host and `cme plugins new` judge names by one rule, from one copy.

/// Whether `name` is a valid plugin name: kebab-case (lowercase ASCII words of letters
/// and digits joined by single `-`), starting with a letter, at most 64 characters. The
/// engine, the mock host and `cme plugins new` all judge names by this rule.
///
/// ```
/// assert!(cme_plugin_sdk::is_plugin_name("kill-pod-2"));
/// assert!(!cme_plugin_sdk::is_plugin_name("Kill_Pod"));
/// assert!(!cme_plugin_sdk::is_plugin_name("kill--pod"));
/// ```
pub fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .split('-')
            .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && name.starts_with(|c: char| c.is_ascii_lowercase())
}
