//! Blast-radius budgets: the operator's limits on what all plans together may do to a
//! group of instances, whatever each plan's grant says.

use serde::{Deserialize, Serialize};

/// The longest `min_interval_seconds` (the ledger keeps eight days).
pub const MAX_INTERVAL_SECONDS: u64 = 7 * 86_400;

/// `[budgets]`: every rule applies to every plan, on every replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// Attacks running at once over all replicas (None: only each engine's own cap).
    pub max_concurrent_attacks: Option<u32>,
    /// Rules over groups of instances (`[[budgets.groups]]`).
    #[serde(default)]
    pub groups: Vec<GroupBudget>,
}

/// A rule over groups of instances: every distinct value of the tag `tag` in a region is
/// one group (`web` in `eu-west-1`). Instances without the tag are not in any group of
/// this rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBudget {
    /// Names the rule in refusals and the ledger.
    pub name: String,
    /// The tag whose value groups instances, e.g. `Service`.
    pub tag: String,
    /// Terminations in one group per rolling 24 hours.
    pub max_terminations_per_day: Option<u32>,
    /// Seconds between two attacks (terminations) on one group.
    pub min_interval_seconds: Option<u64>,
    /// Never leave fewer running instances in a group (checked against EC2 right before
    /// terminating).
    pub min_running: Option<u32>,
}

impl GroupBudget {
    /// The group an instance with `tags` in `region` is in, under this rule.
    pub fn group_of<'a>(&self, region: &str, mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> Option<String> {
        tags.find(|(key, _)| *key == self.tag).map(|(_, value)| format!("{}:{region}:{}={value}", self.name, self.tag))
    }

    /// Whether terminating needs the shared ledger (counts over time).
    pub fn needs_ledger(&self) -> bool {
        self.max_terminations_per_day.is_some() || self.min_interval_seconds.is_some()
    }
}

/// One group's share of a termination, as the shared ledger checks and records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetTake {
    /// The rule's name.
    pub rule: String,
    /// The group (`rule:region:tag=value`).
    pub group: String,
    pub count: u32,
    pub max_per_day: Option<u32>,
    pub min_interval_seconds: Option<u64>,
}

impl Budgets {
    /// Checks the rules: names unique and non-empty, tags non-empty, every rule limits
    /// something.
    pub fn validate(&self) -> Result<(), crate::GrantError> {
        let mut names = std::collections::HashSet::new();
        for rule in &self.groups {
            if rule.name.is_empty() || rule.tag.is_empty() {
                return Err(crate::GrantError::Budget("every [[budgets.groups]] needs a name and a tag".into()));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(crate::GrantError::Budget(format!("budget {:?} is configured twice", rule.name)));
            }
            if rule.max_terminations_per_day.is_none()
                && rule.min_interval_seconds.is_none()
                && rule.min_running.is_none()
            {
                return Err(crate::GrantError::Budget(format!(
                    "budget {:?} limits nothing: give max_terminations_per_day, min_interval_seconds or min_running",
                    rule.name
                )));
            }
        }
        if let Some(rule) =
            self.groups.iter().find(|r| r.min_interval_seconds.is_some_and(|s| s > MAX_INTERVAL_SECONDS))
        {
            return Err(crate::GrantError::Budget(format!(
                "budget {:?}: min_interval_seconds is at most {MAX_INTERVAL_SECONDS} (a week)",
                rule.name
            )));
        }
        if self.max_concurrent_attacks == Some(0) {
            return Err(crate::GrantError::Budget(
                "[budgets] max_concurrent_attacks = 0 would never run anything: use the halt switch".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_in_the_group_of_its_tag_value_and_region() {
        let rule = GroupBudget {
            name: "web".into(),
            tag: "Service".into(),
            max_terminations_per_day: Some(2),
            min_interval_seconds: None,
            min_running: None,
        };
        assert_eq!(
            rule.group_of("eu-west-1", [("Name", "a"), ("Service", "checkout")].into_iter()).as_deref(),
            Some("web:eu-west-1:Service=checkout")
        );
        assert_eq!(rule.group_of("eu-west-1", [("Name", "a")].into_iter()), None);
    }

    #[test]
    fn rules_that_limit_nothing_or_repeat_a_name_are_refused() {
        let rule = |name: &str| GroupBudget {
            name: name.into(),
            tag: "Service".into(),
            max_terminations_per_day: None,
            min_interval_seconds: None,
            min_running: None,
        };
        assert!(
            Budgets { groups: vec![rule("a")], ..Budgets::default() }
                .validate()
                .unwrap_err()
                .to_string()
                .contains("limits nothing")
        );
        let limited = GroupBudget { min_running: Some(1), ..rule("a") };
        assert!(
            Budgets { groups: vec![limited.clone(), limited.clone()], ..Budgets::default() }
                .validate()
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        Budgets { groups: vec![limited], max_concurrent_attacks: Some(3) }.validate().unwrap();
    }
}
