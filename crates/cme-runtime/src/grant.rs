//! Grants: what an operator allows a plugin to do. A host call must fit both the
//! plugin's declaration (from `describe()`) and the grant. Each capability unit
//! (`caps::<interface>`) owns its rule; this module holds the words they share. Pure
//! code, no I/O.

pub use cme_grant::{Ec2Grant, Fences, Grant, GrantError, HttpGrant, SshGrant};

use crate::info::Capability;

/// Why a call was refused: the text names the missing declaration or grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denial(pub String);

pub(crate) fn not_declared(what: &str) -> Denial {
    Denial(format!("{what} is not among the capabilities the plugin declared in describe()"))
}

pub(crate) fn not_granted(what: &str) -> Denial {
    Denial(format!("{what} is not granted to this plugin"))
}

/// The grant that allows exactly what a plugin declares (never link-local addresses,
/// one termination and one SSH session per run): what built-in plugins get. Each unit
/// adds its part.
pub fn as_declared(declared: &[Capability]) -> Grant {
    crate::caps::as_declared(declared)
}
