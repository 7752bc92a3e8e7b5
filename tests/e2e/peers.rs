//! The moto EC2 server (`CME_TEST_MOTO_URL`) for the end-to-end tests; sshd comes from
//! `cme_test_peers`.

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{Filter, Placement, ResourceType, Tag, TagSpecification};

/// A handle on moto for one region; None (skip) when no moto is configured, which
/// `CME_REQUIRE_PEERS=1` turns into a failure.
pub struct Moto {
    pub url: String,
    pub region: String,
    client: aws_sdk_ec2::Client,
}

/// An instance the test launched.
#[derive(Debug, Clone)]
pub struct Launched {
    pub id: String,
    pub private_ip: String,
}

impl Moto {
    pub async fn connect(region: &str) -> Option<Moto> {
        let Ok(url) = std::env::var("CME_TEST_MOTO_URL") else {
            cme_test_peers::missing_peer(
                "CME_TEST_MOTO_URL (a moto server; .ci/run starts one)",
                "pip install 'moto[server]'; moto_server -p PORT; CME_TEST_MOTO_URL=http://127.0.0.1:PORT",
            );
            return None;
        };
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "cme-tests"))
            .region(Region::new(region.to_string()))
            .endpoint_url(&url)
            .build();
        Some(Moto { url, region: region.to_string(), client: aws_sdk_ec2::Client::from_conf(config) })
    }

    /// What an engine needs to reach moto through the standard AWS chain.
    pub fn engine_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL_EC2", self.url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", self.region.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// A VPC 127.0.0.0/16 with a subnet 127.0.0.0/24: instances launched into it get
    /// loopback private addresses (127.0.0.4, .5, ...) a local sshd can listen on.
    pub async fn loopback_subnet(&self) -> String {
        let vpc = self.client.create_vpc().cidr_block("127.0.0.0/16").send().await.unwrap();
        let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let subnet = self.client.create_subnet().vpc_id(vpc_id).cidr_block("127.0.0.0/24").send().await.unwrap();
        subnet.subnet().unwrap().subnet_id().unwrap().to_string()
    }

    /// Launches one instance with these tags, optionally in a subnet or zone.
    pub async fn launch(&self, tags: &[(&str, &str)], subnet: Option<&str>, zone: Option<&str>) -> Launched {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        let mut request = self
            .client
            .run_instances()
            .image_id("ami-12c6146b")
            .min_count(1)
            .max_count(1)
            .tag_specifications(spec.build());
        if let Some(subnet) = subnet {
            request = request.subnet_id(subnet);
        }
        if let Some(zone) = zone {
            request = request.placement(Placement::builder().availability_zone(zone).build());
        }
        let run = request.send().await.unwrap();
        let instance = &run.instances()[0];
        Launched {
            id: instance.instance_id().unwrap().to_string(),
            private_ip: instance.private_ip_address().unwrap_or_default().to_string(),
        }
    }

    /// The instance's state name: running, shutting-down, terminated, ...
    pub async fn state(&self, id: &str) -> String {
        self.instance(id).await.state().unwrap().name().unwrap().as_str().to_string()
    }

    /// The instance as EC2 describes it.
    async fn instance(&self, id: &str) -> aws_sdk_ec2::types::Instance {
        let found = self
            .client
            .describe_instances()
            .filters(Filter::builder().name("instance-id").values(id).build())
            .send()
            .await
            .unwrap();
        found.reservations()[0].instances()[0].clone()
    }

    pub async fn is_running(&self, id: &str) -> bool {
        self.state(id).await == "running"
    }

    /// The instance's security groups' ids, sorted.
    pub async fn groups(&self, id: &str) -> Vec<String> {
        let mut groups: Vec<String> =
            self.instance(id).await.security_groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect();
        groups.sort();
        groups
    }

    /// Gives the instance a security group of its own (made in the VPC of `subnet`).
    pub async fn give_group(&self, id: &str, subnet: &str, name: &str) -> String {
        let found = self
            .client
            .describe_subnets()
            .filters(Filter::builder().name("subnet-id").values(subnet).build())
            .send()
            .await
            .unwrap();
        let vpc = found.subnets()[0].vpc_id().unwrap().to_string();
        let group = self
            .client
            .create_security_group()
            .group_name(name)
            .description("a test's")
            .vpc_id(vpc)
            .send()
            .await
            .unwrap();
        let group = group.group_id().unwrap().to_string();
        self.client.modify_instance_attribute().instance_id(id).groups(&group).send().await.unwrap();
        group
    }

    /// The instance's tag `key`, if it has it.
    pub async fn tag(&self, id: &str, key: &str) -> Option<String> {
        let found = self
            .client
            .describe_tags()
            .filters(Filter::builder().name("resource-id").values(id).build())
            .filters(Filter::builder().name("key").values(key).build())
            .send()
            .await
            .unwrap();
        found.tags().first().and_then(|t| t.value().map(str::to_string))
    }

    /// The network ACL a subnet is associated with.
    pub async fn acl_of(&self, subnet: &str) -> String {
        let found = self
            .client
            .describe_network_acls()
            .filters(Filter::builder().name("association.subnet-id").values(subnet).build())
            .send()
            .await
            .unwrap();
        found.network_acls()[0].network_acl_id().unwrap().to_string()
    }

    /// A VPC with a subnet in `zone` (its own CIDR block from `second_octet`).
    pub async fn subnet_in(&self, zone: &str, second_octet: u8) -> String {
        let vpc = self.client.create_vpc().cidr_block(format!("10.{second_octet}.0.0/16")).send().await.unwrap();
        let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let subnet = self
            .client
            .create_subnet()
            .vpc_id(vpc_id)
            .availability_zone(zone)
            .cidr_block(format!("10.{second_octet}.1.0/24"))
            .send()
            .await
            .unwrap();
        subnet.subnet().unwrap().subnet_id().unwrap().to_string()
    }
}

/// A unique label for this test's instances.
pub fn label(test: &str) -> String {
    format!(
        "{test}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}
