//! Blast-radius budgets at the one place instances are terminated: right before the EC2
//! call, the instances' groups are charged to the shared ledger (terminations per day,
//! time between attacks) and each group's running instances are counted in EC2 (never
//! fewer than `min_running` left). A refusal names the budget; the caller answers
//! `budget-exhausted` and audits it.

use std::collections::BTreeMap;

use std::sync::Arc;

use cme_cloud::ec2::{Ec2, Filter, Instance};
use cme_grant::{BudgetTake, GroupBudget};

use crate::BudgetLedger;

/// What a terminate call is charged against: the rules, the ledger and the run.
pub(crate) struct Charge {
    pub rules: Vec<GroupBudget>,
    pub ledger: Option<Arc<dyn BudgetLedger>>,
    pub run_id: String,
    pub dry_run: bool,
}

/// Checks (and, unless a dry run, records) terminating `instances` in `region` against
/// every group rule; Err names the budget that refuses.
pub(crate) async fn charge(charge: Charge, ec2: &Ec2, region: &str, instances: &[Instance]) -> Result<(), String> {
    let rules = &charge.rules;
    if rules.is_empty() {
        return Ok(());
    }
    let mut takes: Vec<BudgetTake> = Vec::new();
    // (rule, tag, value) -> instances of this call in that group
    let mut groups: BTreeMap<(usize, String), u32> = BTreeMap::new();
    for instance in instances {
        for (i, rule) in rules.iter().enumerate() {
            if let Some(group) = rule.group_of(region, instance.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                *groups.entry((i, group)).or_default() += 1;
            }
        }
    }
    for ((i, group), count) in &groups {
        let rule = &rules[*i];
        if let Some(min) = rule.min_running {
            let value = group.rsplit_once('=').map(|(_, v)| v).unwrap_or_default();
            let filters = [
                Filter { name: format!("tag:{}", rule.tag), values: vec![value.to_string()] },
                Filter { name: "instance-state-name".into(), values: vec!["running".into()] },
            ];
            let running = ec2
                .describe_instances(region, &filters)
                .await
                .map_err(|e| format!("budget {:?}: cannot count the running instances of {group}: {e}", rule.name))?;
            let left = running.len().saturating_sub(*count as usize);
            if left < min as usize {
                return Err(format!(
                    "budget {:?}: terminating {count} of the {} running instances of {group} would leave {left}, fewer than min_running {min}",
                    rule.name,
                    running.len()
                ));
            }
        }
        if rule.needs_ledger() {
            takes.push(BudgetTake {
                rule: rule.name.clone(),
                group: group.clone(),
                count: *count,
                max_per_day: rule.max_terminations_per_day,
                min_interval_seconds: rule.min_interval_seconds,
            });
        }
    }
    if takes.is_empty() {
        return Ok(());
    }
    match &charge.ledger {
        Some(ledger) => ledger.take(&takes, &charge.run_id, !charge.dry_run).await,
        None => Err(format!("budget {:?}: no ledger to charge it to on this engine", takes[0].rule)),
    }
}
