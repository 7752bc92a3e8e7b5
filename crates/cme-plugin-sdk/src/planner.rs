//! Planners: turn args into the instants the attack runs at.
//!
//! Implement [`Planner`] and call [`export_planner!`](crate::export_planner).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde::de::DeserializeOwned;

use crate::{Describe, PluginError, time};

/// Bindings generated from `wit/` for the `planner` world.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "planner",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_planner_world",
        default_bindings_module: "cme_plugin_sdk::planner::bindings",
    });
}

crate::describe::impl_into_plugin_info!();

/// When and where a plan is being made.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// The engine's current time.
    pub now: DateTime<Utc>,
    /// The plan's time zone: dates without an offset and "today" are read in it.
    pub timezone: Tz,
    /// Seed for randomness; use [`PlanContext::rng`] so that plans replay exactly.
    pub seed: u64,
}

impl PlanContext {
    /// A deterministic random generator (ChaCha8) seeded from the context: the same seed
    /// always yields the same sequence, on every machine and every release of the SDK.
    pub fn rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed)
    }
}

/// A planner plugin.
pub trait Planner {
    /// The args, deserialized from the plan's JSON with field-named errors.
    type Args: DeserializeOwned;
    /// Describes the plugin (no capabilities are available while this runs).
    fn describe() -> Describe;
    /// Returns the instants to run the attack at. Return
    /// [`PluginError::InvalidArgs`] naming the field for args that cannot be planned.
    fn plan(ctx: &PlanContext, args: Self::Args) -> Result<Vec<DateTime<Utc>>, PluginError>;
}

#[doc(hidden)]
pub fn __describe<P: Planner>() -> bindings::PluginInfo {
    P::describe().into()
}

#[doc(hidden)]
pub fn __plan<P: Planner>(
    ctx: bindings::PlanContext,
    args: String,
) -> Result<Vec<bindings::Timestamp>, bindings::PluginError> {
    let timezone = time::parse_zone(&ctx.timezone).map_err(|m| PluginError::invalid("timezone", m))?;
    let ctx = PlanContext {
        now: time::from_parts(ctx.now.seconds, ctx.now.nanoseconds),
        timezone,
        seed: ctx.seed,
    };
    let args = crate::args::parse::<P::Args>(&args)?;
    let instants = P::plan(&ctx, args)?;
    Ok(instants
        .into_iter()
        .map(|t| {
            let (seconds, nanoseconds) = time::to_parts(t);
            bindings::Timestamp { seconds, nanoseconds }
        })
        .collect())
}

/// Exports a [`Planner`] implementation as the component's `planner` world.
///
/// ```ignore
/// cme_plugin_sdk::export_planner!(MyPlanner);
/// ```
#[macro_export]
macro_rules! export_planner {
    ($planner:ty) => {
        #[doc(hidden)]
        pub struct __CmePlannerExport;
        impl $crate::planner::bindings::Guest for __CmePlannerExport {
            fn describe() -> $crate::planner::bindings::PluginInfo {
                $crate::planner::__describe::<$planner>()
            }
            fn plan(
                ctx: $crate::planner::bindings::PlanContext,
                args: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::planner::bindings::Timestamp>,
                $crate::planner::bindings::PluginError,
            > {
                $crate::planner::__plan::<$planner>(ctx, args)
            }
        }
        $crate::planner::bindings::__export_planner_world!(__CmePlannerExport with_types_in $crate::planner::bindings);
    };
}
