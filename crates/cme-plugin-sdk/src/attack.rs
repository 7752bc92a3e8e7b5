//! Attacks: do the damage through the host's capabilities.
//!
//! Implement [`Attack`] and call [`export_attack!`](crate::export_attack). Capabilities
//! are the modules [`http`], [`ec2`], [`ssh`] and [`scripts`]; each call returns a
//! [`HostError`] value when the host refuses or fails it, never a trap.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Describe, PluginError, time};

/// Bindings generated from `wit/` for the `attack` world; the interfaces are the shared
/// ones of [`crate::wit`].
#[doc(hidden)]
// The generated export glue takes one argument per WIT parameter.
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "attack",
        path: "wit",
        with: {
            "cme:plugin/types@0.4.0": cme_plugin_sdk::wit::cme::plugin::types,
            "cme:plugin/log@0.4.0": cme_plugin_sdk::wit::cme::plugin::log,
            "cme:plugin/http@0.4.0": cme_plugin_sdk::wit::cme::plugin::http,
            "cme:plugin/ec2@0.4.0": cme_plugin_sdk::wit::cme::plugin::ec2,
            "cme:plugin/ssh@0.4.0": cme_plugin_sdk::wit::cme::plugin::ssh,
            "cme:plugin/scripts@0.4.0": cme_plugin_sdk::wit::cme::plugin::scripts,
            "cme:plugin/inventory@0.4.0": cme_plugin_sdk::wit::cme::plugin::inventory,
            "cme:plugin/undo@0.4.0": cme_plugin_sdk::wit::cme::plugin::undo,
            "cme:plugin/compute@0.4.0": cme_plugin_sdk::wit::cme::plugin::compute,
        },
        pub_export_macro: true,
        export_macro_name: "__export_attack_world",
        default_bindings_module: "cme_plugin_sdk::attack::bindings",
    });
}

pub use crate::capabilities::{compute, ec2, http, inventory, scripts, ssh, undo};
pub use crate::{HostError, KeyValue};

/// The run being executed.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Unique id of this run (the executor id).
    pub run_id: String,
    /// The engine's current time.
    pub now: DateTime<Utc>,
    /// True when capabilities only record what they would do: report what would happen.
    pub dry_run: bool,
    /// Time left before the host ends the call.
    pub time_left: Duration,
}

impl RunContext {
    /// A random generator (ChaCha8) seeded from the run id: picks differ between runs
    /// and can be replayed for one run.
    pub fn rng(&self) -> rand_chacha::ChaCha8Rng {
        use rand_core::SeedableRng;
        // FNV-1a: stable across builds, unlike std's hasher.
        let seed = self
            .run_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        rand_chacha::ChaCha8Rng::seed_from_u64(seed)
    }
}

/// What an attack did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One line for people.
    pub summary: String,
    /// What was affected: instance ids, URLs, addresses.
    pub targets: Vec<String>,
    /// Details, a JSON object.
    pub details: Value,
}

impl Report {
    /// A report with a summary, no targets and empty details.
    pub fn new(summary: impl Into<String>) -> Self {
        Report { summary: summary.into(), targets: Vec::new(), details: Value::Object(Default::default()) }
    }

    /// Adds something the attack affected: an instance id, a URL, an address.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.targets.push(target.into());
        self
    }

    /// Sets the details, a JSON object (`json!({"status": 200})`).
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// An attack plugin.
pub trait Attack {
    /// The args, deserialized from the plan's JSON with field-named errors.
    type Args: DeserializeOwned;
    /// Describes the plugin (no capabilities are available while this runs).
    fn describe() -> Describe;
    /// Runs the attack.
    fn run(ctx: &RunContext, args: Self::Args) -> Result<Report, PluginError>;
}

#[doc(hidden)]
pub fn __describe<A: Attack>() -> bindings::PluginInfo {
    A::describe().into()
}

#[doc(hidden)]
pub fn __run<A: Attack>(
    ctx: bindings::RunContext,
    args: String,
) -> Result<bindings::AttackReport, bindings::PluginError> {
    let ctx = RunContext {
        run_id: ctx.run_id,
        now: time::from_parts(ctx.now.seconds, ctx.now.nanoseconds),
        dry_run: ctx.dry_run,
        time_left: Duration::from_millis(ctx.deadline_ms),
    };
    let report = run_json::<A>(&ctx, &args)?;
    Ok(bindings::AttackReport { summary: report.summary, targets: report.targets, details: report.details.to_string() })
}

/// Parses the args as the host hands them over (JSON text) and runs the attack: what the
/// component's export does, and what the mock host calls.
pub(crate) fn run_json<A: Attack>(ctx: &RunContext, args: &str) -> Result<Report, PluginError> {
    let args = crate::args::parse::<A::Args>(args)?;
    A::run(ctx, args)
}

/// Exports an [`Attack`] implementation as the component's `attack` world.
///
/// ```ignore
/// cme_plugin_sdk::export_attack!(MyAttack);
/// ```
#[macro_export]
macro_rules! export_attack {
    ($attack:ty) => {
        #[doc(hidden)]
        pub struct __CmeAttackExport;
        impl $crate::attack::bindings::Guest for __CmeAttackExport {
            fn describe() -> $crate::attack::bindings::PluginInfo {
                $crate::attack::__describe::<$attack>()
            }
            fn run(
                ctx: $crate::attack::bindings::RunContext,
                args: ::std::string::String,
            ) -> ::std::result::Result<
                $crate::attack::bindings::AttackReport,
                $crate::attack::bindings::PluginError,
            > {
                $crate::attack::__run::<$attack>(ctx, args)
            }
        }
        $crate::attack::bindings::__export_attack_world!(__CmeAttackExport with_types_in $crate::attack::bindings);
    };
}
