//! Outbound HTTP for plugins, with egress rules enforced where the connection is made.
//!
//! * [`UrlPattern`]s from the grant decide which URLs may be requested at all;
//! * an operator's fence may add allowed patterns, denied patterns and denied networks;
//! * after DNS resolution, link-local and cloud-metadata addresses (169.254.0.0/16,
//!   fe80::/10, fd00:ec2::254, ...) are refused unless the grant explicitly allows them,
//!   and so are the fence's denied networks;
//! * the engine's own listening sockets are refused, so a plugin cannot drive its API;
//! * the addresses checked are the addresses connected to: resolution happens once,
//!   inside the client's resolver, so DNS rebinding cannot swap them afterwards;
//! * every redirect hop is checked like the first URL, up to a hop limit;
//! * credentials the host holds are added to matching requests of plugins granted them
//!   (`credentials`), never follow a redirect outside their URLs, and are scrubbed from
//!   every response.

mod client;
mod credentials;
mod egress;
mod tokens;

pub use client::{HttpClient, HttpConfig, Request, Response};
pub use cme_grant::{PatternError, UrlPattern};
pub use credentials::{CredentialSpec, HttpCredential, aws_credential_chain, granted as granted_credentials};
pub use egress::{
    DeniedNetwork, DnsResolver, EgressRules, SystemResolver, UrlAllowList, is_loopback_name, is_metadata_or_link_local,
};
pub use tokens::{AZURE_AUTHORITY, AZURE_MANAGEMENT_SCOPE, KeystoneAuth};

/// Why a request was not sent or did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL or an address it resolves to is outside the egress rules.
    #[error("{0}")]
    Denied(String),
    /// The request itself is malformed (URL, method, header).
    #[error("{0}")]
    InvalidArgument(String),
    /// No response within the timeout.
    #[error("{0}")]
    Timeout(String),
    /// Connection or protocol failure.
    #[error("{0}")]
    Upstream(String),
}
