//! Typed args: the host hands plugins JSON text; plugins want structs.
//!
//! ```
//! use cme_plugin_sdk::{PluginError, args};
//! #[derive(Debug, serde::Deserialize)]
//! struct Args { times: u32 }
//! assert_eq!(args::parse::<Args>(r#"{"times": 3}"#).unwrap().times, 3);
//! let wrong = args::parse::<Args>(r#"{"times": "3"}"#).unwrap_err();
//! assert_eq!(wrong, PluginError::InvalidArgs("times: invalid type: string \"3\", expected u32".into()));
//! ```

use serde::de::DeserializeOwned;

use crate::PluginError;

/// Parses `json` into `T`. Errors name the offending field by its path, e.g.
/// `times: invalid type: string "3", expected u32`, so that users see which arg is wrong.
pub fn parse<T: DeserializeOwned>(json: &str) -> Result<T, PluginError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // serde_json appends " at line 1 column 17", which means nothing to a user
        // who wrote the args as part of a larger document.
        let message = strip_position(&inner.to_string());
        if path == "." {
            PluginError::InvalidArgs(message)
        } else {
            PluginError::InvalidArgs(format!("{path}: {message}"))
        }
    })
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Args {
        times: u32,
        window: Window,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Window {
        from: String,
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse::<Args>(r#"{"times":"3","window":{"from":"x"}}"#).unwrap_err();
        assert_eq!(err, PluginError::InvalidArgs("times: invalid type: string \"3\", expected u32".into()));
    }

    #[test]
    fn nested_missing_field_names_its_parent() {
        let err = parse::<Args>(r#"{"times":3,"window":{}}"#).unwrap_err();
        assert_eq!(err, PluginError::InvalidArgs("window: missing field `from`".into()));
    }

    #[test]
    fn malformed_json_is_invalid_args() {
        assert!(matches!(parse::<Args>("{"), Err(PluginError::InvalidArgs(_))));
    }
}
