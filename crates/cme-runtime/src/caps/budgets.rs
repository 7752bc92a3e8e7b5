//! Blast-radius budgets at the one place nodes are taken out (terminated, stopped,
//! isolated, destroyed; by `ec2` or `compute`): right before the call, the nodes' groups
//! are charged to the shared ledger (terminations per day, time between attacks) and each
//! group's running nodes are counted (never fewer than `min_running` left). A refusal
//! names the budget; the caller answers `budget-exhausted` and audits it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use cme_grant::{BudgetTake, GroupBudget};

use crate::BudgetLedger;
use crate::state::CallState;

/// What taking nodes out is charged against: the rules, the ledger and the run.
pub(crate) struct Charge {
    pub rules: Vec<GroupBudget>,
    pub ledger: Option<Arc<dyn BudgetLedger>>,
    pub run_id: String,
    pub dry_run: bool,
}

impl CallState {
    /// What taking nodes out is charged against: the operator's budgets, their ledger,
    /// this run.
    pub(crate) fn charge(&self, dry_run: bool) -> Charge {
        let caps = self.caps.as_ref().expect("admitted");
        Charge {
            rules: caps.backends.budgets.groups.clone(),
            ledger: caps.backends.ledger.clone(),
            run_id: self.run_id.clone(),
            dry_run,
        }
    }
}

/// Counts a group's running nodes now: those carrying `tag` = `value`.
pub(crate) trait RunningCount: Sync {
    fn running<'a>(
        &'a self,
        tag: &'a str,
        value: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<usize, String>> + Send + 'a>>;
}

/// Checks (and, unless a dry run, records) taking out nodes with `tags` (one list per
/// node) in `place` (a region, or a cloud's region) against every group rule. Err names
/// the budget that refuses.
pub(crate) async fn charge(
    charge: Charge,
    place: &str,
    tags: &[Vec<(String, String)>],
    running_now: &dyn RunningCount,
) -> Result<(), String> {
    let rules = &charge.rules;
    if rules.is_empty() {
        return Ok(());
    }
    let mut takes: Vec<BudgetTake> = Vec::new();
    // (rule, group) -> nodes of this call in that group
    let mut groups: BTreeMap<(usize, String), u32> = BTreeMap::new();
    for node_tags in tags {
        for (i, rule) in rules.iter().enumerate() {
            if let Some(group) = rule.group_of(place, node_tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                *groups.entry((i, group)).or_default() += 1;
            }
        }
    }
    for ((i, group), count) in &groups {
        let rule = &rules[*i];
        if let Some(min) = rule.min_running {
            let value = group.rsplit_once('=').map(|(_, v)| v).unwrap_or_default();
            let running = running_now
                .running(&rule.tag, value)
                .await
                .map_err(|e| format!("budget {:?}: cannot count the running nodes of {group}: {e}", rule.name))?;
            let left = running.saturating_sub(*count as usize);
            if left < min as usize {
                return Err(format!(
                    "budget {:?}: taking out {count} of the {running} running instances of {group} would leave {left}, fewer than min_running {min}",
                    rule.name
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
