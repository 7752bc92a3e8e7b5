//! `cme:plugin/scripts`. This engine has no script library yet: calls are checked and
//! audited like any other, then answered `unavailable`.

use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::scripts::Host;
use crate::grant::CapabilityUse;
use crate::state::CallState;

impl Host for CallState {
    async fn read(&mut self, name: String) -> wasmtime::Result<Result<Vec<u8>, HostError>> {
        self.unavailable("scripts.read", &name, CapabilityUse::Scripts, "the script library")
    }
}
