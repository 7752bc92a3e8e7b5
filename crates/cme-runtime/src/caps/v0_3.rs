//! The 0.3.0 names of the capability interfaces, for components built against
//! `cme:plugin@0.3.0`. 0.4.0 added `compute` and a capability case and changed nothing
//! 0.3.0 has: each call converts its arguments to the 0.4.0 types (through serde), runs
//! the 0.4.0 host function (the same grant checks, fences and audit), and converts the
//! answer back.

use super::legacy::convert;
use crate::bindings::attack::cme::plugin as current;
use crate::bindings::v0_3::attack::cme::plugin as v3;
use crate::state::CallState;

type Answer<T> = wasmtime::Result<Result<T, v3::types::HostError>>;

impl v3::types::Host for CallState {}

impl v3::log::Host for CallState {
    async fn log(&mut self, level: v3::log::Level, message: String) -> wasmtime::Result<()> {
        current::log::Host::log(self, convert(level)?, message).await
    }
}

impl v3::http::Host for CallState {
    async fn send(&mut self, req: v3::http::Request) -> Answer<v3::http::Response> {
        convert(current::http::Host::send(self, convert(req)?).await?)
    }
}

impl v3::ec2::Host for CallState {
    async fn describe_instances(
        &mut self,
        region: String,
        filters: Vec<v3::ec2::Filter>,
    ) -> Answer<Vec<v3::ec2::Instance>> {
        convert(current::ec2::Host::describe_instances(self, region, convert(filters)?).await?)
    }

    async fn terminate_instances(&mut self, region: String, ids: Vec<String>) -> Answer<Vec<v3::ec2::Terminated>> {
        convert(current::ec2::Host::terminate_instances(self, region, ids).await?)
    }

    async fn stop_instances(
        &mut self,
        region: String,
        ids: Vec<String>,
        hold_ms: u64,
    ) -> Answer<Vec<v3::ec2::Terminated>> {
        convert(current::ec2::Host::stop_instances(self, region, ids, hold_ms).await?)
    }

    async fn reboot_instances(&mut self, region: String, ids: Vec<String>) -> Answer<Vec<v3::ec2::Terminated>> {
        convert(current::ec2::Host::reboot_instances(self, region, ids).await?)
    }

    async fn isolate_instances(
        &mut self,
        region: String,
        ids: Vec<String>,
        hold_ms: u64,
    ) -> Answer<Vec<v3::ec2::Terminated>> {
        convert(current::ec2::Host::isolate_instances(self, region, ids, hold_ms).await?)
    }

    async fn isolate_subnets(&mut self, region: String, subnet_ids: Vec<String>, hold_ms: u64) -> Answer<Vec<String>> {
        convert(current::ec2::Host::isolate_subnets(self, region, subnet_ids, hold_ms).await?)
    }
}

impl v3::ssh::Host for CallState {
    async fn upload(
        &mut self,
        target: v3::ssh::Target,
        remote_path: String,
        contents: Vec<u8>,
        mode: u32,
    ) -> Answer<()> {
        convert(current::ssh::Host::upload(self, convert(target)?, remote_path, contents, mode).await?)
    }

    async fn exec(&mut self, target: v3::ssh::Target, command: String, timeout_ms: u32) -> Answer<v3::ssh::ExecOutput> {
        convert(current::ssh::Host::exec(self, convert(target)?, command, timeout_ms).await?)
    }
}

impl v3::scripts::Host for CallState {
    async fn read(&mut self, name: String) -> Answer<Vec<u8>> {
        convert(current::scripts::Host::read(self, name).await?)
    }
}

impl v3::inventory::Host for CallState {
    async fn hosts(
        &mut self,
        name: String,
        tags: Vec<v3::types::KeyValue>,
    ) -> Answer<Vec<v3::inventory::InventoryHost>> {
        convert(current::inventory::Host::hosts(self, name, convert(tags)?).await?)
    }
}

impl v3::undo::Host for CallState {
    async fn arm(&mut self, target: v3::ssh::Target, command: String, after_ms: u64) -> Answer<String> {
        convert(current::undo::Host::arm(self, convert(target)?, command, after_ms).await?)
    }

    async fn arm_http(&mut self, request: v3::http::Request, after_ms: u64) -> Answer<String> {
        convert(current::undo::Host::arm_http(self, convert(request)?, after_ms).await?)
    }
}
