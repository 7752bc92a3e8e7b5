//! A planner built against `cme:plugin@0.2.0`: the host must keep loading it and asking
//! it about windows. Args: `{"in_seconds": N}` plans one run N seconds after the window's
//! start (one-shot); it logs through the 0.2.0 `log` import.

// The generated export glue takes one argument per flattened WIT value (a window is four).
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({ world: "planner", path: "../../../wit/legacy/v0.2.0" });
}
use bindings::*;

use cme::plugin::log::{Level, log};

struct V2Planner;

impl Guest for V2Planner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v2-planner".into(),
            version: "0.2.0".into(),
            refs: vec!["v2_planner:V2Planner".into()],
            description: "A planner built against cme:plugin@0.2.0.".into(),
            args_schema: r#"{"type":"object","required":["in_seconds"],"properties":{"in_seconds":{"type":"integer","minimum":1}}}"#.into(),
            example_args: r#"{"in_seconds":60}"#.into(),
            capabilities: Vec::new(),
        }
    }

    fn plan(_ctx: PlanContext, args: String, window: Window) -> Result<Schedule, PluginError> {
        log(Level::Info, "planning with the 0.2.0 contract");
        let seconds: i64 = args
            .split(|c: char| !c.is_ascii_digit())
            .find(|part| !part.is_empty())
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(|| PluginError::InvalidArgs("in_seconds: not a number".into()))?;
        let at = Timestamp { seconds: window.from.seconds + seconds, nanoseconds: 0 };
        Ok(Schedule { instants: vec![at], recurring: false })
    }
}

export!(V2Planner);
