//! A planner built against `cme:plugin@0.1.0` (one `plan(ctx, args)`, no window): the
//! host must keep loading it and run it as a one-shot planner. Args: `{"in_seconds": N}`
//! plans one run N seconds after `now`; it logs through the 0.1.0 `log` import.

wit_bindgen::generate!({ world: "planner", path: "../../../wit/legacy/v0.1.0" });

use cme::plugin::log::{Level, log};

struct LegacyPlanner;

impl Guest for LegacyPlanner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy-planner".into(),
            version: "0.1.0".into(),
            refs: vec!["legacy_planner:LegacyPlanner".into()],
            description: "A planner built against cme:plugin@0.1.0.".into(),
            args_schema: r#"{"type":"object","required":["in_seconds"],"properties":{"in_seconds":{"type":"integer","minimum":1}}}"#.into(),
            example_args: r#"{"in_seconds":60}"#.into(),
            capabilities: Vec::new(),
        }
    }

    fn plan(ctx: PlanContext, args: String) -> Result<Vec<Timestamp>, PluginError> {
        log(Level::Info, "planning with the 0.1.0 contract");
        let seconds: i64 = args
            .split(|c: char| !c.is_ascii_digit())
            .find(|part| !part.is_empty())
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(|| PluginError::InvalidArgs("in_seconds: not a number".into()))?;
        Ok(vec![Timestamp { seconds: ctx.now.seconds + seconds, nanoseconds: 0 }])
    }
}

export!(LegacyPlanner);
