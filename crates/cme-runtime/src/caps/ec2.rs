//! `cme:plugin/ec2`. This engine has no EC2 backend yet: calls are checked and audited
//! like any other, then answered `unavailable`.

use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::ec2::{Filter, Host, Instance, Terminated};
use crate::grant::CapabilityUse;
use crate::state::CallState;

impl Host for CallState {
    async fn describe_instances(&mut self, region: String, _filters: Vec<Filter>) -> wasmtime::Result<Result<Vec<Instance>, HostError>> {
        self.unavailable("ec2.describe-instances", &region, CapabilityUse::Ec2Describe { region: &region }, "ec2")
    }

    async fn terminate_instances(&mut self, region: String, instance_ids: Vec<String>) -> wasmtime::Result<Result<Vec<Terminated>, HostError>> {
        let target = format!("{region}: {}", instance_ids.join(","));
        self.unavailable("ec2.terminate-instances", &target, CapabilityUse::Ec2Terminate { region: &region }, "ec2")
    }
}
