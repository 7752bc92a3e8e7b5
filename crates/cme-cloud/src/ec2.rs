//! Amazon EC2 (aws-sdk-ec2): describe instances by filters (every page), terminate, stop,
//! start and reboot instances (with EC2's own `DryRun` for dry runs), swap an instance's
//! security groups and a subnet's network ACL (and back), tag what a fault changed. Credentials come from the standard
//! AWS chain; the endpoint from `AWS_ENDPOINT_URL_EC2` or the engine's configuration.
//! AWS errors keep their code and message; nothing carries credentials.

use cme_model::Locked;
use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{BehaviorVersion, Region};
use aws_sdk_ec2::error::ProvideErrorMetadata;

/// EC2 settings.
///
/// By default: the endpoint the AWS chain picks (honouring `AWS_ENDPOINT_URL_EC2`),
/// pages of 1,000 instances, and at most 10,000 instances per describe call.
#[derive(Debug, Clone)]
pub struct Ec2Config {
    pub endpoint_url: Option<String>,
    pub page_size: i32,
    pub max_instances: usize,
}

impl Default for Ec2Config {
    fn default() -> Self {
        Ec2Config { endpoint_url: None, page_size: 1000, max_instances: 10_000 }
    }
}

/// An EC2 API filter, e.g. `tag:Chaos` = [`true`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub instance_id: String,
    pub state: String,
    pub instance_type: String,
    pub availability_zone: String,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub tags: Vec<(String, String)>,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    /// Its security groups' ids.
    pub security_groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    pub instance_id: String,
    pub previous_state: String,
    /// `dry-run` when only EC2's dry run was asked for.
    pub current_state: String,
}

/// Why an EC2 call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ec2Error {
    #[error("{0}")]
    InvalidArgument(String),
    /// AWS answered with an error: its code (e.g. `UnauthorizedOperation`) and message.
    #[error("EC2 {operation} failed: {code}: {message}")]
    Upstream { operation: &'static str, code: String, message: String },
    /// No answer (network, timeout).
    #[error("EC2 {operation} failed: {reason}")]
    Unreachable { operation: &'static str, reason: String },
}

/// EC2 clients, one per region, sharing the AWS configuration.
pub struct Ec2 {
    base: aws_config::SdkConfig,
    config: Ec2Config,
    clients: Mutex<HashMap<String, Client>>,
}

impl std::fmt::Debug for Ec2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Ec2 {
    /// Loads the standard AWS configuration (environment, profile, web identity, IMDSv2).
    pub async fn from_environment(config: Ec2Config) -> Ec2 {
        let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Ec2::new(base, config)
    }

    /// With an explicit AWS configuration (tests give static credentials).
    pub fn new(base: aws_config::SdkConfig, config: Ec2Config) -> Ec2 {
        Ec2 { base, config, clients: Mutex::new(HashMap::new()) }
    }

    /// The region the AWS configuration names (`AWS_REGION`, the profile's), if any.
    pub fn default_region(&self) -> Option<String> {
        self.base.region().map(|region| region.to_string())
    }

    fn client(&self, region: &str) -> Result<Client, Ec2Error> {
        if region.is_empty() || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(Ec2Error::InvalidArgument(format!(
                "region {region:?} is not an AWS region name (e.g. eu-west-1)"
            )));
        }
        let mut clients = self.clients.locked();
        if let Some(client) = clients.get(region) {
            return Ok(client.clone());
        }
        let mut builder = aws_sdk_ec2::config::Builder::from(&self.base).region(Region::new(region.to_string()));
        if let Some(url) = &self.config.endpoint_url {
            builder = builder.endpoint_url(url.clone());
        }
        let client = Client::from_conf(builder.build());
        clients.insert(region.to_string(), client.clone());
        Ok(client)
    }

    /// Every instance in `region` matching all `filters`, across pages, up to the cap.
    pub async fn describe_instances(&self, region: &str, filters: &[Filter]) -> Result<Vec<Instance>, Ec2Error> {
        const OPERATION: &str = "DescribeInstances";
        let client = self.client(region)?;
        let filters: Vec<aws_sdk_ec2::types::Filter> = filters
            .iter()
            .map(|f| aws_sdk_ec2::types::Filter::builder().name(&f.name).set_values(Some(f.values.clone())).build())
            .collect();
        let mut pages = client
            .describe_instances()
            .set_filters(Some(filters))
            .max_results(self.config.page_size)
            .into_paginator()
            .send();
        let mut instances = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| upstream(OPERATION, e))?;
            for reservation in page.reservations() {
                for instance in reservation.instances() {
                    if instances.len() >= self.config.max_instances {
                        return Err(Ec2Error::InvalidArgument(format!(
                            "more than {} instances match; narrow the filters",
                            self.config.max_instances
                        )));
                    }
                    instances.push(convert(instance));
                }
            }
        }
        Ok(instances)
    }

    /// Terminates instances; with `dry_run` only asks EC2 whether it would (its `DryRun`).
    pub async fn terminate_instances(
        &self,
        region: &str,
        ids: &[String],
        dry_run: bool,
    ) -> Result<Vec<Terminated>, Ec2Error> {
        const OPERATION: &str = "TerminateInstances";
        if ids.is_empty() {
            return Err(Ec2Error::InvalidArgument("no instance ids to terminate".into()));
        }
        let client = self.client(region)?;
        let result = client.terminate_instances().set_instance_ids(Some(ids.to_vec())).dry_run(dry_run).send().await;
        match result {
            Ok(output) => Ok(output
                .terminating_instances()
                .iter()
                .map(|change| Terminated {
                    instance_id: change.instance_id().unwrap_or_default().to_string(),
                    previous_state: state_name(change.previous_state()),
                    current_state: state_name(change.current_state()),
                })
                .collect()),
            // EC2 answers a permitted dry run with this error code.
            Err(e) if dry_run && e.code() == Some("DryRunOperation") => Ok(ids
                .iter()
                .map(|id| Terminated {
                    instance_id: id.clone(),
                    previous_state: "running".into(),
                    current_state: "dry-run".into(),
                })
                .collect()),
            Err(e) => Err(upstream(OPERATION, e)),
        }
    }
}

fn upstream<E, R>(operation: &'static str, error: aws_sdk_ec2::error::SdkError<E, R>) -> Ec2Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.code() {
        Some(code) => Ec2Error::Upstream {
            operation,
            code: code.to_string(),
            message: error.message().unwrap_or_default().to_string(),
        },
        None => {
            Ec2Error::Unreachable { operation, reason: aws_sdk_ec2::error::DisplayErrorContext(&error).to_string() }
        }
    }
}

fn state_name(state: Option<&aws_sdk_ec2::types::InstanceState>) -> String {
    state.and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default()
}

fn convert(instance: &aws_sdk_ec2::types::Instance) -> Instance {
    Instance {
        instance_id: instance.instance_id().unwrap_or_default().to_string(),
        state: state_name(instance.state()),
        instance_type: instance.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
        availability_zone: instance.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string(),
        private_ip: instance.private_ip_address().map(str::to_string),
        public_ip: instance.public_ip_address().map(str::to_string),
        tags: instance
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
            .collect(),
        subnet_id: instance.subnet_id().map(str::to_string),
        vpc_id: instance.vpc_id().map(str::to_string),
        security_groups: instance.security_groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
    }
}

fn changes(list: &[aws_sdk_ec2::types::InstanceStateChange]) -> Vec<Terminated> {
    list.iter()
        .map(|change| Terminated {
            instance_id: change.instance_id().unwrap_or_default().to_string(),
            previous_state: state_name(change.previous_state()),
            current_state: state_name(change.current_state()),
        })
        .collect()
}

/// What a dry run answers for `ids`: EC2 said it would.
fn dry(ids: &[String], from: &str) -> Vec<Terminated> {
    ids.iter()
        .map(|id| Terminated { instance_id: id.clone(), previous_state: from.into(), current_state: "dry-run".into() })
        .collect()
}

fn filter(name: &str, values: &[&str]) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

/// The security group an isolated instance is given: no rule in or out.
pub const ISOLATION_GROUP: &str = "cme-isolation";
/// The network ACL an isolated subnet is given: the implicit deny only.
pub const DENY_ALL_ACL: &str = "cme-deny-all";

/// A subnet's network-ACL association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclAssociation {
    pub subnet_id: String,
    pub association_id: String,
    pub network_acl_id: String,
    pub vpc_id: String,
}

impl Ec2 {
    /// Stops instances (EC2's `DryRun` when asked).
    pub async fn stop_instances(
        &self,
        region: &str,
        ids: &[String],
        dry_run: bool,
    ) -> Result<Vec<Terminated>, Ec2Error> {
        const OPERATION: &str = "StopInstances";
        let client = self.client(region)?;
        match client.stop_instances().set_instance_ids(Some(ids.to_vec())).dry_run(dry_run).send().await {
            Ok(output) => Ok(changes(output.stopping_instances())),
            Err(e) if dry_run && e.code() == Some("DryRunOperation") => Ok(dry(ids, "running")),
            Err(e) => Err(upstream(OPERATION, e)),
        }
    }

    /// Starts instances (what reverts a stop).
    pub async fn start_instances(&self, region: &str, ids: &[String]) -> Result<Vec<Terminated>, Ec2Error> {
        const OPERATION: &str = "StartInstances";
        let client = self.client(region)?;
        let output = client.start_instances().set_instance_ids(Some(ids.to_vec())).send().await;
        Ok(changes(output.map_err(|e| upstream(OPERATION, e))?.starting_instances()))
    }

    /// Reboots instances (EC2's `DryRun` when asked).
    pub async fn reboot_instances(
        &self,
        region: &str,
        ids: &[String],
        dry_run: bool,
    ) -> Result<Vec<Terminated>, Ec2Error> {
        const OPERATION: &str = "RebootInstances";
        let client = self.client(region)?;
        match client.reboot_instances().set_instance_ids(Some(ids.to_vec())).dry_run(dry_run).send().await {
            Ok(_) => Ok(ids
                .iter()
                .map(|id| Terminated {
                    instance_id: id.clone(),
                    previous_state: "running".into(),
                    current_state: "rebooting".into(),
                })
                .collect()),
            Err(e) if dry_run && e.code() == Some("DryRunOperation") => Ok(dry(ids, "running")),
            Err(e) => Err(upstream(OPERATION, e)),
        }
    }

    /// Sets an instance's security groups (isolating it, or restoring them).
    pub async fn set_security_groups(
        &self,
        region: &str,
        instance_id: &str,
        groups: &[String],
    ) -> Result<(), Ec2Error> {
        const OPERATION: &str = "ModifyInstanceAttribute";
        if groups.is_empty() {
            return Err(Ec2Error::InvalidArgument(format!("no security group to give {instance_id}")));
        }
        let client = self.client(region)?;
        client
            .modify_instance_attribute()
            .instance_id(instance_id)
            .set_groups(Some(groups.to_vec()))
            .send()
            .await
            .map_err(|e| upstream(OPERATION, e))?;
        Ok(())
    }

    /// The isolation group of `vpc_id` ([`ISOLATION_GROUP`]: no inbound rule, its default
    /// outbound rule revoked), made when missing.
    pub async fn isolation_group(&self, region: &str, vpc_id: &str) -> Result<String, Ec2Error> {
        let client = self.client(region)?;
        let found = client
            .describe_security_groups()
            .filters(filter("group-name", &[ISOLATION_GROUP]))
            .filters(filter("vpc-id", &[vpc_id]))
            .send()
            .await
            .map_err(|e| upstream("DescribeSecurityGroups", e))?;
        if let Some(id) = found.security_groups().iter().find_map(|g| g.group_id()) {
            return Ok(id.to_string());
        }
        let made = client
            .create_security_group()
            .group_name(ISOLATION_GROUP)
            .description("cme: no traffic in or out (an isolated instance; restored by its revert)")
            .vpc_id(vpc_id)
            .send()
            .await
            .map_err(|e| upstream("CreateSecurityGroup", e))?;
        let id = made.group_id().unwrap_or_default().to_string();
        let everything = aws_sdk_ec2::types::IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        // A new group lets everything out: take that away (an emulator may not have it).
        if let Err(e) = client.revoke_security_group_egress().group_id(&id).ip_permissions(everything).send().await
            && e.code() != Some("InvalidPermission.NotFound")
        {
            return Err(upstream("RevokeSecurityGroupEgress", e));
        }
        Ok(id)
    }

    /// The deny-all network ACL of `vpc_id` ([`DENY_ALL_ACL`]: no rule, so the implicit
    /// deny), made when missing.
    pub async fn deny_all_acl(&self, region: &str, vpc_id: &str) -> Result<String, Ec2Error> {
        let client = self.client(region)?;
        let found = client
            .describe_network_acls()
            .filters(filter("tag:Name", &[DENY_ALL_ACL]))
            .filters(filter("vpc-id", &[vpc_id]))
            .send()
            .await
            .map_err(|e| upstream("DescribeNetworkAcls", e))?;
        if let Some(id) = found.network_acls().iter().find_map(|a| a.network_acl_id()) {
            return Ok(id.to_string());
        }
        let made =
            client.create_network_acl().vpc_id(vpc_id).send().await.map_err(|e| upstream("CreateNetworkAcl", e))?;
        let id = made.network_acl().and_then(|a| a.network_acl_id()).unwrap_or_default().to_string();
        self.tag(region, &id, "Name", DENY_ALL_ACL).await?;
        Ok(id)
    }

    /// The network-ACL association of a subnet.
    pub async fn acl_association(&self, region: &str, subnet_id: &str) -> Result<AclAssociation, Ec2Error> {
        let client = self.client(region)?;
        let found = client
            .describe_network_acls()
            .filters(filter("association.subnet-id", &[subnet_id]))
            .send()
            .await
            .map_err(|e| upstream("DescribeNetworkAcls", e))?;
        for acl in found.network_acls() {
            for association in acl.associations() {
                if association.subnet_id() == Some(subnet_id) {
                    return Ok(AclAssociation {
                        subnet_id: subnet_id.to_string(),
                        association_id: association.network_acl_association_id().unwrap_or_default().to_string(),
                        network_acl_id: acl.network_acl_id().unwrap_or_default().to_string(),
                        vpc_id: acl.vpc_id().unwrap_or_default().to_string(),
                    });
                }
            }
        }
        Err(Ec2Error::InvalidArgument(format!("subnet {subnet_id} has no network ACL association")))
    }

    /// Associates `subnet_id` with `network_acl_id` in place of its current ACL (found
    /// afresh, so that a revert works whatever association id the swap left); answers the
    /// new association id.
    pub async fn associate_acl(&self, region: &str, subnet_id: &str, network_acl_id: &str) -> Result<String, Ec2Error> {
        let current = self.acl_association(region, subnet_id).await?;
        if current.network_acl_id == network_acl_id {
            return Ok(current.association_id);
        }
        let client = self.client(region)?;
        let replaced = client
            .replace_network_acl_association()
            .association_id(&current.association_id)
            .network_acl_id(network_acl_id)
            .send()
            .await
            .map_err(|e| upstream("ReplaceNetworkAclAssociation", e))?;
        Ok(replaced.new_association_id().unwrap_or_default().to_string())
    }

    /// Tags a resource (an instance, a subnet, an ACL).
    pub async fn tag(&self, region: &str, resource: &str, key: &str, value: &str) -> Result<(), Ec2Error> {
        let client = self.client(region)?;
        client
            .create_tags()
            .resources(resource)
            .tags(aws_sdk_ec2::types::Tag::builder().key(key).value(value).build())
            .send()
            .await
            .map_err(|e| upstream("CreateTags", e))?;
        Ok(())
    }
}
