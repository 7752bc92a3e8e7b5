//! `cme:plugin/ec2` over `cme_cloud::ec2`. The grant's and the `[ec2]` fence's required tags are added to every
//! describe; terminate accepts only instances the same run described, re-checks their
//! tags and state right before, and counts them against the run's termination budget.
//! In a dry run EC2's own DryRun is used. Without an EC2 backend: `unavailable`.

use cme_cloud::ec2::{Ec2Error, Filter as CloudFilter};

use crate::audit::Decision;
use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::ec2::{Filter, Host, Instance, Terminated};
use crate::bindings::wit_types::KeyValue;
use crate::grant::{CapabilityUse, Fences};
use crate::state::CallState;

impl Host for CallState {
    async fn describe_instances(
        &mut self,
        region: String,
        filters: Vec<Filter>,
    ) -> wasmtime::Result<Result<Vec<Instance>, HostError>> {
        const CALL: &str = "ec2.describe-instances";
        if let Err(denied) = self.admit(CALL, &region, CapabilityUse::Ec2Describe { region: &region })? {
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
                    caps.discovered.insert(instance.instance_id.clone(), region.clone());
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
        if let Err(denied) = self.admit(CALL, &target, CapabilityUse::Ec2Terminate { region: &region })? {
            return Ok(Err(denied));
        }
        let caps = self.caps.as_ref().expect("admitted calls have capabilities");
        let Some(ec2) = caps.backends.ec2.clone() else {
            return Ok(Err(self.unavailable(CALL, &target, "ec2")));
        };
        if instance_ids.is_empty() {
            return Ok(Err(HostError::InvalidArgument("instance-ids is empty".into())));
        }
        if let Some(stranger) = instance_ids.iter().find(|id| caps.discovered.get(*id) != Some(&region)) {
            let reason = format!("instance {stranger} was not returned by this run's describe-instances in {region}");
            self.audit(CALL, target, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::Denied(reason)));
        }
        let granted = caps.grant.ec2.as_ref().map_or(0, |g| g.max_terminations_per_run);
        let (budget, by) = Fences::budget(granted, caps.backends.fences.ec2.max_terminations_per_run, "[ec2]");
        if caps.terminated.saturating_add(instance_ids.len() as u32) > budget {
            let reason = format!("{by} allows {budget} terminations per run");
            self.audit(CALL, target, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::BudgetExhausted(reason)));
        }
        // Re-check right before acting: still running, still carrying the required tags.
        let mut recheck = match required_tag_filters(self) {
            Ok(tags) => tags,
            Err(reason) => return Ok(Err(self.fenced(CALL, target, reason))),
        };
        recheck.push(CloudFilter { name: "instance-id".into(), values: instance_ids.clone() });
        recheck.push(CloudFilter { name: "instance-state-name".into(), values: vec!["running".into()] });
        let still = match ec2.describe_instances(&region, &recheck).await {
            Ok(still) => {
                if let Some(gone) = instance_ids.iter().find(|id| !still.iter().any(|i| &i.instance_id == *id)) {
                    let reason = format!("instance {gone} is no longer running with the granted tags");
                    self.audit(CALL, target, Decision::Denied(reason.clone()), None);
                    return Ok(Err(HostError::Denied(reason)));
                }
                still
            }
            Err(e) => return Ok(Err(self.ec2_failed(CALL, target, e))),
        };
        let dry_run = self.caps.as_ref().is_some_and(|c| c.dry_run);
        let charge = {
            let caps = self.caps.as_ref().expect("admitted");
            crate::caps::budgets::Charge {
                rules: caps.backends.budgets.groups.clone(),
                ledger: caps.backends.ledger.clone(),
                run_id: self.run_id.clone(),
                dry_run,
            }
        };
        if let Err(reason) = crate::caps::budgets::charge(charge, &ec2, &region, &still).await {
            self.audit(CALL, target, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::BudgetExhausted(reason)));
        }
        self.begin(CALL, &target);
        match ec2.terminate_instances(&region, &instance_ids, dry_run).await {
            Ok(done) => {
                let caps = self.caps.as_mut().expect("admitted");
                caps.terminated += instance_ids.len() as u32;
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
}

/// `tag:KEY = [VALUE]` for each tag the grant and the `[ec2]` fence require.
fn required_tag_filters(state: &CallState) -> Result<Vec<CloudFilter>, String> {
    let Some(caps) = state.caps.as_ref() else { return Ok(Vec::new()) };
    let granted = caps.grant.ec2.as_ref().map(|g| g.required_tags.clone()).unwrap_or_default();
    let tags = caps.backends.fences.required_tags(&granted).map_err(|refusal| refusal.to_string())?;
    Ok(tags.into_iter().map(|(k, v)| CloudFilter { name: format!("tag:{k}"), values: vec![v] }).collect())
}

impl CallState {
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
