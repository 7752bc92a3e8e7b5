//! Probes: tell whether a system is healthy, through the host's `http` capability.
//!
//! Implement [`Probe`] and call [`export_probe!`](crate::export_probe). A probe is never
//! a dry run (its requests are real), so it should only read. Answer
//! `Verdict::unhealthy(...)` for a system that is not as it should be; return an error
//! only when the probe cannot tell (the engine counts that as unhealthy too).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Describe, PluginError, time};

/// Bindings generated from `wit/` for the `probe` world; the interfaces are the shared
/// ones of [`crate::wit`].
#[doc(hidden)]
// The generated export glue takes one argument per WIT parameter.
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "probe",
        path: "wit",
        with: {
            "cme:plugin/types@0.4.0": cme_plugin_sdk::wit::cme::plugin::types,
            "cme:plugin/log@0.4.0": cme_plugin_sdk::wit::cme::plugin::log,
            "cme:plugin/http@0.4.0": cme_plugin_sdk::wit::cme::plugin::http,
        },
        pub_export_macro: true,
        export_macro_name: "__export_probe_world",
        default_bindings_module: "cme_plugin_sdk::probe::bindings",
    });
}

pub use crate::capabilities::http;
pub use crate::{HostError, KeyValue};

/// The check being made.
#[derive(Debug, Clone)]
pub struct ProbeContext {
    /// Unique id of this check.
    pub check_id: String,
    /// The engine's current time.
    pub now: DateTime<Utc>,
    /// Time left before the host ends the call.
    pub time_left: Duration,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// True when the system is as it should be.
    pub healthy: bool,
    /// One line for people.
    pub reason: String,
    /// What was measured, a JSON object.
    pub values: Value,
}

impl Verdict {
    /// The system is as it should be; `reason` says how it was judged.
    pub fn healthy(reason: impl Into<String>) -> Verdict {
        Verdict { healthy: true, reason: reason.into(), values: Value::Object(Default::default()) }
    }

    /// The system is not as it should be; `reason` says what is wrong.
    pub fn unhealthy(reason: impl Into<String>) -> Verdict {
        Verdict { healthy: false, reason: reason.into(), values: Value::Object(Default::default()) }
    }

    /// Sets what was measured, a JSON object (`json!({"status": 503})`).
    pub fn values(mut self, values: Value) -> Verdict {
        self.values = values;
        self
    }
}

/// A probe plugin.
pub trait Probe {
    /// The args, deserialized from the plan's JSON with field-named errors.
    type Args: DeserializeOwned;
    /// Describes the plugin (no capabilities are available while this runs).
    fn describe() -> Describe;
    /// Checks.
    fn check(ctx: &ProbeContext, args: Self::Args) -> Result<Verdict, PluginError>;
}

#[doc(hidden)]
pub fn __describe<P: Probe>() -> bindings::PluginInfo {
    P::describe().into()
}

#[doc(hidden)]
pub fn __check<P: Probe>(
    ctx: bindings::ProbeContext,
    args: String,
) -> Result<bindings::Verdict, bindings::PluginError> {
    let ctx = ProbeContext {
        check_id: ctx.check_id,
        now: time::from_parts(ctx.now.seconds, ctx.now.nanoseconds),
        time_left: Duration::from_millis(ctx.deadline_ms),
    };
    let verdict = check_json::<P>(&ctx, &args)?;
    Ok(bindings::Verdict { healthy: verdict.healthy, reason: verdict.reason, values: verdict.values.to_string() })
}

/// Parses the args as the host hands them over and checks: what the component's export
/// does, and what the mock host calls.
pub(crate) fn check_json<P: Probe>(ctx: &ProbeContext, args: &str) -> Result<Verdict, PluginError> {
    let args = crate::args::parse::<P::Args>(args)?;
    P::check(ctx, args)
}

/// Exports a [`Probe`] implementation as the component's `probe` world.
///
/// ```ignore
/// cme_plugin_sdk::export_probe!(MyProbe);
/// ```
#[macro_export]
macro_rules! export_probe {
    ($probe:ty) => {
        #[doc(hidden)]
        pub struct __CmeProbeExport;
        impl $crate::probe::bindings::Guest for __CmeProbeExport {
            fn describe() -> $crate::probe::bindings::PluginInfo {
                $crate::probe::__describe::<$probe>()
            }
            fn check(
                ctx: $crate::probe::bindings::ProbeContext,
                args: ::std::string::String,
            ) -> ::std::result::Result<$crate::probe::bindings::Verdict, $crate::probe::bindings::PluginError> {
                $crate::probe::__check::<$probe>(ctx, args)
            }
        }
        $crate::probe::bindings::__export_probe_world!(__CmeProbeExport with_types_in $crate::probe::bindings);
    };
}
