//! Planners: turn args into the instants the attack runs at.
//!
//! Implement [`Planner`] and call [`export_planner!`](crate::export_planner). A one-shot
//! planner answers [`Schedule::once`] with every instant; a recurring one answers
//! [`Schedule::recurring`] with the firings whose nominal time is in
//! [`PlanContext::window`], drawing randomness from [`PlanContext::rng_for`] keyed by a
//! natural unit (a day, a cron tick) so that any split of time into windows gives the
//! same firings.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde::de::DeserializeOwned;

use crate::{Describe, PluginError, time};

/// Bindings generated from `wit/` for the `planner` world; the interfaces are the shared
/// ones of [`crate::wit`].
#[doc(hidden)]
// The generated export glue takes one argument per WIT parameter.
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "planner",
        path: "wit",
        with: {
            "cme:plugin/types@0.4.0": cme_plugin_sdk::wit::cme::plugin::types,
            "cme:plugin/log@0.4.0": cme_plugin_sdk::wit::cme::plugin::log,
        },
        pub_export_macro: true,
        export_macro_name: "__export_planner_world",
        default_bindings_module: "cme_plugin_sdk::planner::bindings",
    });
}

/// When and where a plan is being made.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// The engine's current time.
    pub now: DateTime<Utc>,
    /// The plan's time zone: dates without an offset and "today" are read in it.
    pub timezone: Tz,
    /// Seed for randomness; use [`PlanContext::rng`] so that plans replay exactly.
    pub seed: u64,
    /// The span the host asks about.
    pub window: Window,
}

/// The span of time a planner is asked about: `[from, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first instant of the window.
    pub from: DateTime<Utc>,
    /// The first instant after the window.
    pub until: DateTime<Utc>,
}

impl Window {
    /// Whether `t` is in `[from, until)`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.until
    }
}

impl PlanContext {
    /// A deterministic random generator (ChaCha8) seeded from the context: the same seed
    /// always yields the same sequence, on every machine and every release of the SDK.
    pub fn rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed)
    }

    /// The zone named in the args (refused naming `timezone`), or the plan's.
    pub fn zone_or(&self, name: Option<&str>) -> Result<Tz, PluginError> {
        match name {
            Some(name) => time::parse_zone(name).map_err(|m| PluginError::invalid("timezone", m)),
            None => Ok(self.timezone),
        }
    }

    /// A deterministic generator for one natural unit of a recurring plan (a day's number,
    /// a cron tick's timestamp): the same seed and key always give the same sequence,
    /// whichever window is being planned.
    pub fn rng_for(&self, key: i64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(mix(self.seed, key as u64))
    }
}

/// SplitMix64 of the seed and the key: distinct keys give unrelated seeds.
fn mix(seed: u64, key: u64) -> u64 {
    let mut z = seed ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a planner answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The instants to run the attack at, in any order.
    pub instants: Vec<DateTime<Utc>>,
    /// The plan goes on after the window: the host asks again for the next one.
    pub recurring: bool,
}

impl Schedule {
    /// Every instant of a plan that ends (the window was only a hint).
    pub fn once(instants: Vec<DateTime<Utc>>) -> Schedule {
        Schedule { instants, recurring: false }
    }

    /// The firings that belong to the window of a plan that goes on.
    pub fn recurring(instants: Vec<DateTime<Utc>>) -> Schedule {
        Schedule { instants, recurring: true }
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
    fn plan(ctx: &PlanContext, args: Self::Args) -> Result<Schedule, PluginError>;
}

#[doc(hidden)]
pub fn __describe<P: Planner>() -> bindings::PluginInfo {
    P::describe().into()
}

#[doc(hidden)]
pub fn __plan<P: Planner>(
    ctx: bindings::PlanContext,
    args: String,
    window: bindings::Window,
) -> Result<bindings::Schedule, bindings::PluginError> {
    let timezone = time::parse_zone(&ctx.timezone).map_err(|m| PluginError::invalid("timezone", m))?;
    let ctx = PlanContext {
        now: time::from_parts(ctx.now.seconds, ctx.now.nanoseconds),
        timezone,
        seed: ctx.seed,
        window: Window {
            from: time::from_parts(window.from.seconds, window.from.nanoseconds),
            until: time::from_parts(window.until.seconds, window.until.nanoseconds),
        },
    };
    let schedule = plan_json::<P>(&ctx, &args)?;
    Ok(bindings::Schedule {
        instants: schedule
            .instants
            .into_iter()
            .map(|t| {
                let (seconds, nanoseconds) = time::to_parts(t);
                bindings::Timestamp { seconds, nanoseconds }
            })
            .collect(),
        recurring: schedule.recurring,
    })
}

/// Parses the args as the host hands them over and plans: what the component's export
/// does, and what the mock host calls.
pub(crate) fn plan_json<P: Planner>(ctx: &PlanContext, args: &str) -> Result<Schedule, PluginError> {
    let args = crate::args::parse::<P::Args>(args)?;
    P::plan(ctx, args)
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
                window: $crate::planner::bindings::Window,
            ) -> ::std::result::Result<
                $crate::planner::bindings::Schedule,
                $crate::planner::bindings::PluginError,
            > {
                $crate::planner::__plan::<$planner>(ctx, args, window)
            }
        }
        $crate::planner::bindings::__export_planner_world!(__CmePlannerExport with_types_in $crate::planner::bindings);
    };
}
