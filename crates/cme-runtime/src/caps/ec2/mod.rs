//! `cme:plugin/ec2` over `cme_cloud::ec2`. The grant's and the `[ec2]` fence's required tags are added to every
//! describe; terminate accepts only instances the same run described, re-checks their
//! tags and state right before, and counts them against the run's termination budget.
//! In a dry run EC2's own DryRun is used. Without an EC2 backend: `unavailable`.

mod budgets;
mod disrupt;

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use cme_cloud::ec2::{Ec2 as Ec2Backend, Ec2Error, Filter as CloudFilter, Instance as CloudInstance};

use super::Unit;
use crate::audit::Decision;
use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::ec2::{Filter, Host, Instance, Terminated};
use crate::bindings::wit_types::KeyValue;
use crate::grant::{Denial, Ec2Grant, Fences, Grant, not_declared, not_granted};
use crate::info::Capability;
use crate::state::CallState;

/// The `ec2` unit.
pub(crate) struct Ec2;

/// What one run keeps: the instances it described (by id, with their region: the only
/// ones it may terminate) and how many it terminated.
#[derive(Default)]
pub(crate) struct Ec2Run {
    discovered: HashMap<String, String>,
    /// The subnets of the instances it described: subnet id -> (region, VPC id).
    subnets: HashMap<String, (String, String)>,
    /// Instances terminated, stopped or isolated (what `max_terminations_per_run` counts).
    terminated: u32,
}

/// An EC2 call as the grant rule sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ec2Use<'a> {
    Describe { region: &'a str },
    Terminate { region: &'a str },
    /// Stop, reboot, isolate (instances or subnets).
    Disrupt { region: &'a str },
}

impl Unit for Ec2 {
    const INTERFACE: &'static str = "cme:plugin/ec2";
    type RunState = Ec2Run;
    type Use<'a> = Ec2Use<'a>;

    /// The region must be declared (a terminate declaration covers describe), granted
    /// (terminating only when the grant says so) and inside the `[ec2]` fence.
    fn check(declared: &[Capability], grant: &Grant, fences: &Fences, using: Ec2Use<'_>) -> Result<(), Denial> {
        let region_in = |regions: &[String], region: &str| regions.is_empty() || regions.iter().any(|r| r == region);
        let (region, what) = match using {
            Ec2Use::Describe { region } => (region, "ec2 describe-instances"),
            Ec2Use::Terminate { region } => (region, "ec2 terminate-instances"),
            Ec2Use::Disrupt { region } => (region, "ec2 stop, reboot or isolate"),
        };
        let declared_here = declared.iter().any(|c| match (c, using) {
            (Capability::Ec2Describe { regions }, Ec2Use::Describe { .. }) => region_in(regions, region),
            (Capability::Ec2Terminate { regions }, Ec2Use::Describe { .. } | Ec2Use::Terminate { .. }) => {
                region_in(regions, region)
            }
            (Capability::Ec2Disrupt { regions }, Ec2Use::Describe { .. } | Ec2Use::Disrupt { .. }) => {
                region_in(regions, region)
            }
            _ => false,
        });
        if !declared_here {
            return Err(not_declared(&format!("{what} in region {region}")));
        }
        let Some(ec2) = &grant.ec2 else { return Err(not_granted(what)) };
        match using {
            Ec2Use::Terminate { .. } if !ec2.terminate => return Err(not_granted(what)),
            Ec2Use::Disrupt { .. } if !ec2.disrupt => return Err(not_granted(what)),
            _ => {}
        }
        if !region_in(&ec2.regions, region) {
            return Err(Denial(format!("{what} in region {region} is not granted (granted regions: {:?})", ec2.regions)));
        }
        fences.check_ec2_region(region).map_err(|reason| Denial(format!("{what}: {reason}")))
    }

    /// The declared regions; terminating when declared, one instance per run.
    fn grant_as_declared(declared: &[Capability], grant: &mut Grant) {
        for capability in declared {
            if let Capability::Ec2Describe { regions }
            | Capability::Ec2Terminate { regions }
            | Capability::Ec2Disrupt { regions } = capability
            {
                let ec2 = grant.ec2.get_or_insert_with(|| Ec2Grant {
                    regions: Vec::new(),
                    required_tags: BTreeMap::new(),
                    terminate: false,
                    disrupt: false,
                    max_terminations_per_run: 1,
                });
                ec2.regions.extend(regions.iter().cloned());
                ec2.terminate |= matches!(capability, Capability::Ec2Terminate { .. });
                ec2.disrupt |= matches!(capability, Capability::Ec2Disrupt { .. });
            }
        }
    }
}

impl Host for CallState {
    async fn describe_instances(
        &mut self,
        region: String,
        filters: Vec<Filter>,
    ) -> wasmtime::Result<Result<Vec<Instance>, HostError>> {
        const CALL: &str = "ec2.describe-instances";
        if let Err(denied) = self.admit::<Ec2>(CALL, &region, Ec2Use::Describe { region: &region })? {
            return Ok(Err(denied));
        }
        let caps = self.caps.as_ref().expect("admitted calls have capabilities");
        let Some(ec2) = caps.backends.ec2.clone() else {
            return Ok(Err(self.unavailable(CALL, &region, "ec2")));
        };
        let mut all: Vec<CloudFilter> =
            filters.into_iter().map(|f| CloudFilter { name: f.name, values: f.values }).collect();
        match required_tag_filters(self) {
            Ok(tags) => all.extend(tags),
            Err(reason) => return Ok(Err(self.fenced(CALL, region, reason))),
        }
        match ec2.describe_instances(&region, &all).await {
            Ok(instances) => {
                let caps = self.caps.as_mut().expect("admitted");
                for instance in &instances {
                    caps.units.ec2.discovered.insert(instance.instance_id.clone(), region.clone());
                    if let (Some(subnet), Some(vpc)) = (&instance.subnet_id, &instance.vpc_id) {
                        caps.units.ec2.subnets.insert(subnet.clone(), (region.clone(), vpc.clone()));
                    }
                    for address in instance.private_ip.iter().chain(&instance.public_ip) {
                        caps.addresses.insert(address.clone(), instance.instance_id.clone());
                    }
                }
                self.audit(CALL, region, Decision::Allowed, Some(format!("{} instances", instances.len())));
                Ok(Ok(instances
                    .into_iter()
                    .map(|i| Instance {
                        instance_id: i.instance_id,
                        state: i.state,
                        instance_type: i.instance_type,
                        availability_zone: i.availability_zone,
                        private_ip: i.private_ip,
                        public_ip: i.public_ip,
                        tags: i.tags.into_iter().map(|(key, value)| KeyValue { key, value }).collect(),
                        subnet_id: i.subnet_id,
                        vpc_id: i.vpc_id,
                        security_groups: i.security_groups,
                    })
                    .collect()))
            }
            Err(e) => Ok(Err(self.ec2_failed(CALL, region, e))),
        }
    }

    async fn terminate_instances(
        &mut self,
        region: String,
        instance_ids: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Terminated>, HostError>> {
        const CALL: &str = "ec2.terminate-instances";
        let target = format!("{region}: {}", instance_ids.join(","));
        let using = Ec2Use::Terminate { region: &region };
        let (ec2, still) =
            match self.instances_to_change(CALL, &target, &region, &instance_ids, using, Some("terminations")).await? {
                Ok(checked) => checked,
                Err(refused) => return Ok(Err(refused)),
            };
        let dry_run = self.caps.as_ref().is_some_and(|c| c.dry_run);
        if let Err(reason) = budgets::charge(self.charge(dry_run), &ec2, &region, &still).await {
            self.audit(CALL, target, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::BudgetExhausted(reason)));
        }
        self.begin(CALL, &target);
        match ec2.terminate_instances(&region, &instance_ids, dry_run).await {
            Ok(done) => {
                let caps = self.caps.as_mut().expect("admitted");
                caps.units.ec2.terminated += instance_ids.len() as u32;
                if dry_run {
                    caps.actions.push(format!(
                        "would terminate {} in {region} (EC2 DryRun succeeded)",
                        instance_ids.join(", ")
                    ));
                }
                let states: Vec<String> =
                    done.iter().map(|t| format!("{}: {}", t.instance_id, t.current_state)).collect();
                self.audit(CALL, target, Decision::Allowed, Some(states.join(", ")));
                Ok(Ok(done
                    .into_iter()
                    .map(|t| Terminated {
                        instance_id: t.instance_id,
                        previous_state: t.previous_state,
                        current_state: t.current_state,
                    })
                    .collect()))
            }
            Err(e) => Ok(Err(self.ec2_failed(CALL, target, e))),
        }
    }

    async fn stop_instances(
        &mut self,
        region: String,
        instance_ids: Vec<String>,
        hold_ms: u64,
    ) -> wasmtime::Result<Result<Vec<Terminated>, HostError>> {
        self.disrupt_instances(disrupt::Operation::Stop, region, instance_ids, hold_ms).await
    }

    async fn reboot_instances(
        &mut self,
        region: String,
        instance_ids: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Terminated>, HostError>> {
        self.disrupt_instances(disrupt::Operation::Reboot, region, instance_ids, 0).await
    }

    async fn isolate_instances(
        &mut self,
        region: String,
        instance_ids: Vec<String>,
        hold_ms: u64,
    ) -> wasmtime::Result<Result<Vec<Terminated>, HostError>> {
        self.disrupt_instances(disrupt::Operation::Isolate, region, instance_ids, hold_ms).await
    }

    async fn isolate_subnets(
        &mut self,
        region: String,
        subnet_ids: Vec<String>,
        hold_ms: u64,
    ) -> wasmtime::Result<Result<Vec<String>, HostError>> {
        self.isolate_subnets_of_run(region, subnet_ids, hold_ms).await
    }
}

/// `tag:KEY = [VALUE]` for each tag the grant and the `[ec2]` fence require.
fn required_tag_filters(state: &CallState) -> Result<Vec<CloudFilter>, String> {
    let Some(caps) = state.caps.as_ref() else { return Ok(Vec::new()) };
    let granted = caps.grant.ec2.as_ref().map(|g| g.required_tags.clone()).unwrap_or_default();
    let tags = caps.backends.fences.required_tags(&granted).map_err(|refusal| refusal.to_string())?;
    Ok(tags.into_iter().map(|(k, v)| CloudFilter { name: format!("tag:{k}"), values: vec![v] }).collect())
}

impl CallState {
    /// What every change to instances checks before it acts, in this order: declared and
    /// granted (`using`), an EC2 backend, ids given, each one described by this run in
    /// `region`, the run's budget (`counted`: what the refusal calls the instances it
    /// counts; None: not counted), and each one re-read right before: still running,
    /// still carrying the required tags. The backend and the instances as re-read; every
    /// refusal is audited.
    pub(super) async fn instances_to_change(
        &mut self,
        call: &'static str,
        target: &str,
        region: &str,
        ids: &[String],
        using: Ec2Use<'_>,
        counted: Option<&str>,
    ) -> wasmtime::Result<Result<(Arc<Ec2Backend>, Vec<CloudInstance>), HostError>> {
        if let Err(denied) = self.admit::<Ec2>(call, target, using)? {
            return Ok(Err(denied));
        }
        let caps = self.caps.as_ref().expect("admitted calls have capabilities");
        let Some(ec2) = caps.backends.ec2.clone() else {
            return Ok(Err(self.unavailable(call, target, "ec2")));
        };
        if ids.is_empty() {
            return Ok(Err(HostError::InvalidArgument("instance-ids is empty".into())));
        }
        if let Some(stranger) = ids.iter().find(|id| caps.units.ec2.discovered.get(*id).map(String::as_str) != Some(region)) {
            let reason = format!("instance {stranger} was not returned by this run's describe-instances in {region}");
            return Ok(Err(self.fenced(call, target.to_string(), reason)));
        }
        if let Some(counted) = counted
            && let Err(reason) = self.within_run_budget(ids.len(), counted)
        {
            self.audit(call, target.to_string(), Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::BudgetExhausted(reason)));
        }
        let mut recheck = match required_tag_filters(self) {
            Ok(tags) => tags,
            Err(reason) => return Ok(Err(self.fenced(call, target.to_string(), reason))),
        };
        recheck.push(CloudFilter { name: "instance-id".into(), values: ids.to_vec() });
        recheck.push(CloudFilter { name: "instance-state-name".into(), values: vec!["running".into()] });
        let still = match ec2.describe_instances(region, &recheck).await {
            Ok(still) => still,
            Err(e) => return Ok(Err(self.ec2_failed(call, target.to_string(), e))),
        };
        if let Some(gone) = ids.iter().find(|id| !still.iter().any(|i| &i.instance_id == *id)) {
            let reason = format!("instance {gone} is no longer running with the granted tags");
            return Ok(Err(self.fenced(call, target.to_string(), reason)));
        }
        Ok(Ok((ec2, still)))
    }

    /// Whether `count` more fit the run's budget: the grant's and the `[ec2]` fence's
    /// `max_terminations_per_run`, over everything the run took out (`counted`: what the
    /// refusal calls them).
    pub(super) fn within_run_budget(&self, count: usize, counted: &str) -> Result<(), String> {
        let caps = self.caps.as_ref().expect("admitted");
        let granted = caps.grant.ec2.as_ref().map_or(0, |g| g.max_terminations_per_run);
        let (budget, by) = Fences::budget(granted, caps.backends.fences.ec2.max_terminations_per_run, "[ec2]");
        if caps.units.ec2.terminated.saturating_add(count as u32) > budget {
            return Err(format!("{by} allows {budget} {counted} per run"));
        }
        Ok(())
    }

    fn fenced(&mut self, call: &str, target: String, reason: String) -> HostError {
        self.audit(call, target, Decision::Denied(reason.clone()), None);
        HostError::Denied(reason)
    }

    fn ec2_failed(&mut self, call: &str, target: String, error: Ec2Error) -> HostError {
        let message = error.to_string();
        self.audit(call, target, Decision::Allowed, Some(message.clone()));
        match error {
            Ec2Error::InvalidArgument(m) => HostError::InvalidArgument(m),
            Ec2Error::Upstream { .. } | Ec2Error::Unreachable { .. } => HostError::Upstream(message),
        }
    }
}
