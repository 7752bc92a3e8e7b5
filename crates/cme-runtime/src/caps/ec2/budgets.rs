//! The blast-radius budgets (`caps::budgets`) for instances EC2 takes out: a group's
//! running instances are counted in EC2.

use std::future::Future;
use std::pin::Pin;

use cme_cloud::ec2::{Ec2, Filter, Instance};

use crate::caps::budgets::RunningCount;
pub(crate) use crate::caps::budgets::Charge;

/// Running instances of a region, counted in EC2.
struct Running<'a> {
    ec2: &'a Ec2,
    region: &'a str,
}

impl RunningCount for Running<'_> {
    fn running<'a>(&'a self, tag: &'a str, value: &'a str) -> Pin<Box<dyn Future<Output = Result<usize, String>> + Send + 'a>> {
        Box::pin(async move {
            let filters = [
                Filter { name: format!("tag:{tag}"), values: vec![value.to_string()] },
                Filter { name: "instance-state-name".into(), values: vec!["running".into()] },
            ];
            self.ec2.describe_instances(self.region, &filters).await.map(|running| running.len()).map_err(|e| e.to_string())
        })
    }
}

/// Checks (and, unless a dry run, records) taking `instances` in `region` out against
/// every group rule; Err names the budget that refuses.
pub(crate) async fn charge(charge: Charge, ec2: &Ec2, region: &str, instances: &[Instance]) -> Result<(), String> {
    let tags: Vec<Vec<(String, String)>> = instances.iter().map(|i| i.tags.clone()).collect();
    crate::caps::budgets::charge(charge, region, &tags, &Running { ec2, region }).await
}
