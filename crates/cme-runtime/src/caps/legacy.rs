//! The 0.1.0 names of the capability interfaces, for components built against
//! `cme:plugin@0.1.0`. The interfaces did not change in 0.2.0: each call converts its
//! arguments to the current types (same shape, through serde), runs the current host function
//! (the same grant checks, fences and audit), and converts the answer back.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::attack::cme::plugin as current;
use crate::bindings::legacy::attack::cme::plugin as legacy;
use crate::state::CallState;

/// One version's value as the other's: the types are generated from identical WIT.
pub(crate) fn convert<A: Serialize, B: DeserializeOwned>(value: A) -> wasmtime::Result<B> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| wasmtime::Error::msg(format!("converting between cme:plugin versions' types: {e}")))
}

impl legacy::types::Host for CallState {}

impl legacy::log::Host for CallState {
    async fn log(&mut self, level: legacy::log::Level, message: String) -> wasmtime::Result<()> {
        current::log::Host::log(self, convert(level)?, message).await
    }
}

impl legacy::http::Host for CallState {
    async fn send(
        &mut self,
        req: legacy::http::Request,
    ) -> wasmtime::Result<Result<legacy::http::Response, legacy::types::HostError>> {
        convert(current::http::Host::send(self, convert(req)?).await?)
    }
}

impl legacy::ec2::Host for CallState {
    async fn describe_instances(
        &mut self,
        region: String,
        filters: Vec<legacy::ec2::Filter>,
    ) -> wasmtime::Result<Result<Vec<legacy::ec2::Instance>, legacy::types::HostError>> {
        convert(current::ec2::Host::describe_instances(self, region, convert(filters)?).await?)
    }

    async fn terminate_instances(
        &mut self,
        region: String,
        instance_ids: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<legacy::ec2::Terminated>, legacy::types::HostError>> {
        convert(current::ec2::Host::terminate_instances(self, region, instance_ids).await?)
    }
}

impl legacy::ssh::Host for CallState {
    async fn upload(
        &mut self,
        target: legacy::ssh::Target,
        remote_path: String,
        contents: Vec<u8>,
        mode: u32,
    ) -> wasmtime::Result<Result<(), legacy::types::HostError>> {
        convert(current::ssh::Host::upload(self, convert(target)?, remote_path, contents, mode).await?)
    }

    async fn exec(
        &mut self,
        target: legacy::ssh::Target,
        command: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<legacy::ssh::ExecOutput, legacy::types::HostError>> {
        convert(current::ssh::Host::exec(self, convert(target)?, command, timeout_ms).await?)
    }
}

impl legacy::scripts::Host for CallState {
    async fn read(&mut self, name: String) -> wasmtime::Result<Result<Vec<u8>, legacy::types::HostError>> {
        convert(current::scripts::Host::read(self, name).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_error_keeps_its_case_and_text_across_versions() {
        let current = current::types::HostError::BudgetExhausted("the grant allows 1 HTTP requests per run".into());
        let old: legacy::types::HostError = convert(current).unwrap();
        assert!(
            matches!(old, legacy::types::HostError::BudgetExhausted(ref text) if text == "the grant allows 1 HTTP requests per run")
        );
    }
}
