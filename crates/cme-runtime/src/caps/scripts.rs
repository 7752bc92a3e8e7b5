//! `cme:plugin/scripts`: reads from the engine's script library (shipped scripts plus an
//! operator's directory); names that leave the library are refused.

use cme_cloud::scripts::ScriptError;

use super::Unit;
use crate::audit::Decision;
use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::scripts::Host;
use crate::grant::{Denial, Fences, Grant, not_declared, not_granted};
use crate::info::Capability;
use crate::state::CallState;

/// The `scripts` unit.
pub(crate) struct Scripts;

impl Unit for Scripts {
    const INTERFACE: &'static str = "cme:plugin/scripts";
    type RunState = ();
    type Use<'a> = ();

    fn check(declared: &[Capability], grant: &Grant, _fences: &Fences, _: ()) -> Result<(), Denial> {
        if !declared.iter().any(|c| matches!(c, Capability::Scripts)) {
            return Err(not_declared("scripts"));
        }
        if !grant.scripts {
            return Err(not_granted("scripts"));
        }
        Ok(())
    }

    fn grant_as_declared(declared: &[Capability], grant: &mut Grant) {
        grant.scripts |= declared.contains(&Capability::Scripts);
    }
}

impl Host for CallState {
    async fn read(&mut self, name: String) -> wasmtime::Result<Result<Vec<u8>, HostError>> {
        const CALL: &str = "scripts.read";
        if let Err(denied) = self.admit::<Scripts>(CALL, &name, ())? {
            return Ok(Err(denied));
        }
        let library = &self.caps.as_ref().expect("admitted calls have capabilities").backends.scripts;
        Ok(match library.read(&name) {
            Ok(bytes) => {
                self.audit(CALL, name, Decision::Allowed, Some(format!("{} bytes", bytes.len())));
                Ok(bytes)
            }
            Err(error @ ScriptError::Refused(_)) => {
                self.audit(CALL, name, Decision::Denied(error.to_string()), None);
                Err(HostError::Denied(error.to_string()))
            }
            Err(error) => {
                self.audit(CALL, name, Decision::Allowed, Some(error.to_string()));
                Err(HostError::InvalidArgument(error.to_string()))
            }
        })
    }
}
