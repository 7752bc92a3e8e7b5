//! Amazon EC2 (aws-sdk-ec2): describe instances by filters (every page), terminate
//! instances (with EC2's own `DryRun` for dry runs). Credentials come from the standard
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
    }
}
