//! A loaded plugin: its validated description and its pre-instantiated component.

use std::sync::Arc;

use serde_json::Value;

use crate::bindings::{attack::AttackPre, legacy, planner::PlannerPre, probe::ProbePre, v0_2, v0_3};
use crate::cache::Provenance;
use crate::error::CallError;
use crate::info::{PluginInfo, PluginKind, canonical_ref};
use crate::state::CallState;

/// A plugin ready to be called; cheap to clone. Every call instantiates it afresh.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

pub(crate) struct PluginInner {
    pub sha256: String,
    pub info: PluginInfo,
    pub validator: jsonschema::Validator,
    pub pre: Pre,
    pub provenance: Provenance,
}

/// A pre-instantiated component, by world and contract version.
#[derive(Clone)]
pub(crate) enum Pre {
    Planner(PlannerPre<CallState>),
    Attack(AttackPre<CallState>),
    Probe(ProbePre<CallState>),
    /// Built against `cme:plugin@0.3.0`.
    V03Planner(v0_3::planner::PlannerPre<CallState>),
    V03Attack(v0_3::attack::AttackPre<CallState>),
    V03Probe(v0_3::probe::ProbePre<CallState>),
    /// Built against `cme:plugin@0.2.0`.
    V02Planner(v0_2::planner::PlannerPre<CallState>),
    V02Attack(v0_2::attack::AttackPre<CallState>),
    V02Probe(v0_2::probe::ProbePre<CallState>),
    /// Built against `cme:plugin@0.1.0`: a one-shot planner.
    LegacyPlanner(legacy::planner::PlannerPre<CallState>),
    /// Built against `cme:plugin@0.1.0`.
    LegacyAttack(legacy::attack::AttackPre<CallState>),
}

impl Plugin {
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    pub fn kind(&self) -> PluginKind {
        match self.inner.pre {
            Pre::Planner(_) | Pre::V03Planner(_) | Pre::V02Planner(_) | Pre::LegacyPlanner(_) => PluginKind::Planner,
            Pre::Attack(_) | Pre::V03Attack(_) | Pre::V02Attack(_) | Pre::LegacyAttack(_) => PluginKind::Attack,
            Pre::Probe(_) | Pre::V03Probe(_) | Pre::V02Probe(_) => PluginKind::Probe,
        }
    }

    /// The contract version it was built against: `0.4.0`, or `0.3.0`, `0.2.0` or `0.1.0`
    /// for older components.
    pub fn contract(&self) -> &'static str {
        match self.inner.pre {
            Pre::Planner(_) | Pre::Attack(_) | Pre::Probe(_) => "0.4.0",
            Pre::V03Planner(_) | Pre::V03Attack(_) | Pre::V03Probe(_) => "0.3.0",
            Pre::V02Planner(_) | Pre::V02Attack(_) | Pre::V02Probe(_) => "0.2.0",
            Pre::LegacyPlanner(_) | Pre::LegacyAttack(_) => "0.1.0",
        }
    }

    /// Lowercase hex sha256 of the component's bytes.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.inner.info.name, self.inner.info.version)
    }

    /// Whether the component came from the artifact cache or was compiled (and how long
    /// that took).
    pub fn provenance(&self) -> Provenance {
        self.inner.provenance
    }

    /// The refs in canonical `module:Class` form.
    pub fn canonical_refs(&self) -> impl Iterator<Item = String> + '_ {
        self.inner.info.refs.iter().filter_map(|r| canonical_ref(r))
    }

    /// Validates args against the plugin's JSON Schema; the error carries the JSON
    /// pointer of the first offending value.
    pub fn validate_args(&self, args: &Value) -> Result<(), CallError> {
        match self.inner.validator.iter_errors(args).next() {
            None => Ok(()),
            Some(error) => {
                let pointer = error.instance_path().to_string();
                Err(CallError::InvalidArgs {
                    pointer: Some(if pointer.is_empty() { "/".into() } else { pointer }),
                    message: error.to_string(),
                })
            }
        }
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.id())
            .field("kind", &self.kind())
            .field("sha256", &self.sha256())
            .finish()
    }
}
