//! `cme:plugin/ssh`. This engine has no SSH backend yet: calls are checked and audited
//! like any other, then answered `unavailable`.

use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::ssh::{ExecOutput, Host, Target};
use crate::grant::CapabilityUse;
use crate::state::CallState;

impl Host for CallState {
    async fn upload(&mut self, target: Target, remote_path: String, _contents: Vec<u8>, _mode: u32) -> wasmtime::Result<Result<(), HostError>> {
        let target = format!("{}@{}:{}{}", target.user, target.address, target.port, remote_path);
        self.unavailable("ssh.upload", &target, CapabilityUse::Ssh, "ssh")
    }

    async fn exec(&mut self, target: Target, _command: String, _timeout_ms: u32) -> wasmtime::Result<Result<ExecOutput, HostError>> {
        let target = format!("{}@{}:{}", target.user, target.address, target.port);
        self.unavailable("ssh.exec", &target, CapabilityUse::Ssh, "ssh")
    }
}
