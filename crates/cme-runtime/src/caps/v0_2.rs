//! The 0.2.0 names of the capability interfaces, for components built against
//! `cme:plugin@0.2.0`. 0.3.0 added functions and fields; what 0.2.0 has kept its shape:
//! each call converts its arguments to the 0.3.0 types (through serde; a field 0.3.0
//! added to an answer is dropped), runs the 0.3.0 host function (the same grant checks,
//! fences and audit), and converts the answer back.

use super::legacy::convert;
use crate::bindings::attack::cme::plugin as current;
use crate::bindings::v0_2::attack::cme::plugin as v2;
use crate::state::CallState;

impl v2::types::Host for CallState {}

impl v2::log::Host for CallState {
    async fn log(&mut self, level: v2::log::Level, message: String) -> wasmtime::Result<()> {
        current::log::Host::log(self, convert(level)?, message).await
    }
}

impl v2::http::Host for CallState {
    async fn send(
        &mut self,
        req: v2::http::Request,
    ) -> wasmtime::Result<Result<v2::http::Response, v2::types::HostError>> {
        convert(current::http::Host::send(self, convert(req)?).await?)
    }
}

impl v2::ec2::Host for CallState {
    async fn describe_instances(
        &mut self,
        region: String,
        filters: Vec<v2::ec2::Filter>,
    ) -> wasmtime::Result<Result<Vec<v2::ec2::Instance>, v2::types::HostError>> {
        convert(current::ec2::Host::describe_instances(self, region, convert(filters)?).await?)
    }

    async fn terminate_instances(
        &mut self,
        region: String,
        instance_ids: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<v2::ec2::Terminated>, v2::types::HostError>> {
        convert(current::ec2::Host::terminate_instances(self, region, instance_ids).await?)
    }
}

impl v2::ssh::Host for CallState {
    async fn upload(
        &mut self,
        target: v2::ssh::Target,
        remote_path: String,
        contents: Vec<u8>,
        mode: u32,
    ) -> wasmtime::Result<Result<(), v2::types::HostError>> {
        convert(current::ssh::Host::upload(self, convert(target)?, remote_path, contents, mode).await?)
    }

    async fn exec(
        &mut self,
        target: v2::ssh::Target,
        command: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<v2::ssh::ExecOutput, v2::types::HostError>> {
        convert(current::ssh::Host::exec(self, convert(target)?, command, timeout_ms).await?)
    }
}

impl v2::scripts::Host for CallState {
    async fn read(&mut self, name: String) -> wasmtime::Result<Result<Vec<u8>, v2::types::HostError>> {
        convert(current::scripts::Host::read(self, name).await?)
    }
}

impl v2::inventory::Host for CallState {
    async fn hosts(
        &mut self,
        name: String,
        tags: Vec<v2::types::KeyValue>,
    ) -> wasmtime::Result<Result<Vec<v2::inventory::InventoryHost>, v2::types::HostError>> {
        convert(current::inventory::Host::hosts(self, name, convert(tags)?).await?)
    }
}

impl v2::undo::Host for CallState {
    async fn arm(
        &mut self,
        target: v2::ssh::Target,
        command: String,
        after_ms: u64,
    ) -> wasmtime::Result<Result<String, v2::types::HostError>> {
        convert(current::undo::Host::arm(self, convert(target)?, command, after_ms).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_of_0_3_0_reads_as_0_2_0_without_the_fields_it_added() {
        let instance = current::ec2::Instance {
            instance_id: "i-1".into(),
            state: "running".into(),
            instance_type: "t3.micro".into(),
            availability_zone: "eu-west-1a".into(),
            private_ip: Some("10.0.0.1".into()),
            public_ip: None,
            tags: vec![],
            subnet_id: Some("subnet-1".into()),
            vpc_id: Some("vpc-1".into()),
            security_groups: vec!["sg-1".into()],
        };
        let old: v2::ec2::Instance = convert(instance).unwrap();
        assert_eq!((old.instance_id.as_str(), old.private_ip.as_deref()), ("i-1", Some("10.0.0.1")));
    }
}
