//! The EC2 faults the host reverts (0.3.0): stop, reboot and isolate instances this run
//! described, and swap their subnets' network ACLs. Each is checked as a terminate is
//! (declared `ec2-disrupt`, granted `disrupt`, inside the `[ec2]` fence, instances the run
//! described, re-checked right before, counted against `max_terminations_per_run` and the
//! blast-radius budgets when it takes an instance out); then, before anything changes, its
//! revert is stored in the run's ledger (the undo store: start them again, give the
//! groups or the ACL back) and what restores it is tagged on the resource (`cme:revert`),
//! so that the revert runs without the plugin, on any replica. Reboot has nothing to revert.

use std::time::Duration;

use cme_cloud::ec2::{Ec2 as Ec2Backend, Instance as CloudInstance, Terminated as CloudTerminated};
use cme_model::undo::Revert;

use super::{Ec2, Ec2Use, budgets};
use crate::caps::undo::MAX_HOLD;
use crate::audit::Decision;
use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::ec2::Terminated;
use crate::state::CallState;

/// The tag that says, on the changed resource, what restores it.
pub(crate) const REVERT_TAG: &str = "cme:revert";
/// What the run's budget counts the faults that take instances out as.
const TAKEN_OUT: &str = "instances taken out (terminated, stopped or isolated)";

/// A fault on instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    Stop,
    Reboot,
    Isolate,
}

impl Operation {
    fn call(self) -> &'static str {
        match self {
            Operation::Stop => "ec2.stop-instances",
            Operation::Reboot => "ec2.reboot-instances",
            Operation::Isolate => "ec2.isolate-instances",
        }
    }

    /// Whether it takes the instances out (what the budgets count).
    fn takes_out(self) -> bool {
        self != Operation::Reboot
    }
}

impl CallState {
    /// Stops, reboots or isolates instances this run described, their reverts stored first.
    pub(super) async fn disrupt_instances(
        &mut self,
        operation: Operation,
        region: String,
        instance_ids: Vec<String>,
        hold_ms: u64,
    ) -> wasmtime::Result<Result<Vec<Terminated>, HostError>> {
        let call = operation.call();
        let target = format!("{region}: {}", instance_ids.join(","));
        if Duration::from_millis(hold_ms) > MAX_HOLD {
            return Ok(Err(HostError::InvalidArgument("hold-ms must be at most 7 days".into())));
        }
        let using = Ec2Use::Disrupt { region: &region };
        let counted = operation.takes_out().then_some(TAKEN_OUT);
        let (ec2, still) = match self.instances_to_change(call, &target, &region, &instance_ids, using, counted).await? {
            Ok(checked) => checked,
            Err(refused) => return Ok(Err(refused)),
        };
        let dry_run = self.caps.as_ref().is_some_and(|c| c.dry_run);
        if operation.takes_out()
            && let Err(reason) = budgets::charge(self.charge(dry_run), &ec2, &region, &still).await
        {
            self.audit(call, target, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::BudgetExhausted(reason)));
        }
        if dry_run {
            let verb = match operation {
                Operation::Stop => "stop",
                Operation::Reboot => "reboot",
                Operation::Isolate => "isolate",
            };
            let done = match operation {
                Operation::Stop => ec2.stop_instances(&region, &instance_ids, true).await,
                Operation::Reboot => ec2.reboot_instances(&region, &instance_ids, true).await,
                Operation::Isolate => Ok(dry(&instance_ids)),
            };
            return Ok(match done {
                Ok(done) => {
                    self.caps.as_mut().expect("admitted").actions.push(format!(
                        "would {verb} {} in {region} (and revert it)",
                        instance_ids.join(", ")
                    ));
                    self.audit(call, target, Decision::Allowed, Some("not changed: dry run".into()));
                    Ok(wit(done))
                }
                Err(e) => Err(self.ec2_failed(call, target, e)),
            });
        }
        // The reverts, stored before anything changes (no ledger, no fault).
        match operation {
            Operation::Stop => {
                let revert = Revert::Ec2Start { region: region.clone(), instance_ids: instance_ids.clone() };
                let words = format!("start {}", instance_ids.join(", "));
                if let Err(refused) = self.arm_revert(call, &target, revert, words, hold_ms).await {
                    return Ok(Err(refused));
                }
                for id in &instance_ids {
                    self.tag_revert(&ec2, &region, id, "start it".into()).await;
                }
            }
            Operation::Isolate => {
                for instance in &still {
                    let revert = Revert::Ec2Groups {
                        region: region.clone(),
                        instance_id: instance.instance_id.clone(),
                        groups: instance.security_groups.clone(),
                    };
                    let words = format!(
                        "give {} its security groups {} again",
                        instance.instance_id,
                        instance.security_groups.join(", ")
                    );
                    if let Err(refused) = self.arm_revert(call, &target, revert, words, hold_ms).await {
                        return Ok(Err(refused));
                    }
                    let groups = format!("security groups {}", instance.security_groups.join(","));
                    self.tag_revert(&ec2, &region, &instance.instance_id, groups).await;
                }
            }
            Operation::Reboot => {}
        }
        self.begin(call, &target);
        let done = match operation {
            Operation::Stop => ec2.stop_instances(&region, &instance_ids, false).await,
            Operation::Reboot => ec2.reboot_instances(&region, &instance_ids, false).await,
            Operation::Isolate => isolate(&ec2, &region, &still).await,
        };
        match done {
            Ok(done) => {
                if operation.takes_out() {
                    self.caps.as_mut().expect("admitted").units.ec2.terminated += instance_ids.len() as u32;
                }
                let states: Vec<String> = done.iter().map(|t| format!("{}: {}", t.instance_id, t.current_state)).collect();
                self.audit(call, target, Decision::Allowed, Some(states.join(", ")));
                Ok(Ok(wit(done)))
            }
            Err(e) => Ok(Err(self.ec2_failed(call, target, e))),
        }
    }

    /// Gives subnets of instances this run described a deny-all network ACL, each one's
    /// own ACL stored as its revert first. Each subnet counts as one against the run's
    /// budget.
    pub(super) async fn isolate_subnets_of_run(
        &mut self,
        region: String,
        subnet_ids: Vec<String>,
        hold_ms: u64,
    ) -> wasmtime::Result<Result<Vec<String>, HostError>> {
        const CALL: &str = "ec2.isolate-subnets";
        let target = format!("{region}: {}", subnet_ids.join(","));
        if let Err(denied) = self.admit::<Ec2>(CALL, &target, Ec2Use::Disrupt { region: &region })? {
            return Ok(Err(denied));
        }
        let caps = self.caps.as_ref().expect("admitted calls have capabilities");
        let Some(ec2) = caps.backends.ec2.clone() else {
            return Ok(Err(self.unavailable(CALL, &target, "ec2")));
        };
        if subnet_ids.is_empty() {
            return Ok(Err(HostError::InvalidArgument("subnet-ids is empty".into())));
        }
        if Duration::from_millis(hold_ms) > MAX_HOLD {
            return Ok(Err(HostError::InvalidArgument("hold-ms must be at most 7 days".into())));
        }
        let mut vpcs = Vec::with_capacity(subnet_ids.len());
        for subnet in &subnet_ids {
            match caps.units.ec2.subnets.get(subnet) {
                Some((in_region, vpc)) if in_region == &region => vpcs.push(vpc.clone()),
                _ => {
                    let reason = format!("subnet {subnet} is not one of the instances this run described in {region}");
                    self.audit(CALL, target, Decision::Denied(reason.clone()), None);
                    return Ok(Err(HostError::Denied(reason)));
                }
            }
        }
        if let Err(reason) = self.within_run_budget(subnet_ids.len(), TAKEN_OUT) {
            self.audit(CALL, target, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::BudgetExhausted(reason)));
        }
        if self.caps.as_ref().is_some_and(|c| c.dry_run) {
            self.caps
                .as_mut()
                .expect("admitted")
                .actions
                .push(format!("would give {} a deny-all network ACL in {region} (and revert it)", subnet_ids.join(", ")));
            self.audit(CALL, target, Decision::Allowed, Some("not changed: dry run".into()));
            return Ok(Ok(subnet_ids));
        }
        for (subnet, vpc) in subnet_ids.iter().zip(&vpcs) {
            let own = match ec2.acl_association(&region, subnet).await {
                Ok(own) => own,
                Err(e) => return Ok(Err(self.ec2_failed(CALL, target, e))),
            };
            let revert =
                Revert::Ec2Acl { region: region.clone(), subnet_id: subnet.clone(), network_acl_id: own.network_acl_id.clone() };
            let words = format!("give {subnet} its network ACL {} again", own.network_acl_id);
            if let Err(refused) = self.arm_revert(CALL, &target, revert, words, hold_ms).await {
                return Ok(Err(refused));
            }
            self.tag_revert(&ec2, &region, subnet, format!("network ACL {}", own.network_acl_id)).await;
            self.begin(CALL, &target);
            let swapped = match ec2.deny_all_acl(&region, vpc).await {
                Ok(deny) => ec2.associate_acl(&region, subnet, &deny).await,
                Err(e) => Err(e),
            };
            if let Err(e) = swapped {
                return Ok(Err(self.ec2_failed(CALL, target, e)));
            }
            self.caps.as_mut().expect("admitted").units.ec2.terminated += 1;
        }
        self.audit(CALL, target, Decision::Allowed, Some(format!("{} subnets isolated", subnet_ids.len())));
        Ok(Ok(subnet_ids))
    }

    /// Tags what a fault changes with what restores it (best effort: the ledger holds the
    /// revert; the tag tells a person looking at the console).
    pub(crate) async fn tag_revert(&mut self, ec2: &Ec2Backend, region: &str, resource: &str, restores: String) {
        let value = format!("cme run {}: {restores}", self.run_id);
        if let Err(e) = ec2.tag(region, resource, REVERT_TAG, &value).await {
            tracing::warn!(resource, error = %e, "cannot tag the resource with its revert");
        }
    }
}

/// Isolates each instance: its VPC's isolation group instead of its own.
async fn isolate(ec2: &Ec2Backend, region: &str, instances: &[CloudInstance]) -> Result<Vec<CloudTerminated>, cme_cloud::ec2::Ec2Error> {
    let mut done = Vec::with_capacity(instances.len());
    for instance in instances {
        let Some(vpc) = &instance.vpc_id else {
            return Err(cme_cloud::ec2::Ec2Error::InvalidArgument(format!(
                "{} is in no VPC: it has no security groups to swap",
                instance.instance_id
            )));
        };
        let group = ec2.isolation_group(region, vpc).await?;
        ec2.set_security_groups(region, &instance.instance_id, std::slice::from_ref(&group)).await?;
        done.push(CloudTerminated {
            instance_id: instance.instance_id.clone(),
            previous_state: instance.state.clone(),
            current_state: "isolated".into(),
        });
    }
    Ok(done)
}

fn dry(ids: &[String]) -> Vec<CloudTerminated> {
    ids.iter()
        .map(|id| CloudTerminated { instance_id: id.clone(), previous_state: "running".into(), current_state: "dry-run".into() })
        .collect()
}

fn wit(done: Vec<CloudTerminated>) -> Vec<Terminated> {
    done.into_iter()
        .map(|t| Terminated { instance_id: t.instance_id, previous_state: t.previous_state, current_state: t.current_state })
        .collect()
}
