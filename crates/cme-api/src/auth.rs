//! Bearer tokens with roles. Without any token configured every caller is admin (the
//! binary then refuses to bind beyond loopback).

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::problem::ApiError;

/// What a token may do. `viewer` < `operator` < `admin` each include the ones before;
/// `publisher` (for CI pushing plugins) may read like a viewer and upload plugins, and
/// nothing else: no grants, no enabling, no credentials, no plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every GET except the audit log and credentials.
    Viewer,
    /// Viewer, and plugin uploads.
    Publisher,
    /// Plans, executors, halt and resume.
    Operator,
    /// Everything, including the audit log.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Publisher => "publisher",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        matches!(
            (self, needed),
            (Role::Admin, _)
                | (_, Role::Viewer)
                | (Role::Operator, Role::Operator)
                | (Role::Publisher, Role::Publisher)
        )
    }
}

/// The shortest token secret accepted, everywhere (flag, environment, config file).
pub const MIN_TOKEN_LENGTH: usize = 8;

/// How a configured token's secret is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSecret {
    /// The secret itself (accepted with a warning: config files get copied around).
    Plain(String),
    /// The lowercase hex SHA-256 of the secret.
    Sha256(String),
}

/// A configured token: who it is (`name`, shown in audit rows), what it may do.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    pub role: Role,
    pub secret: TokenSecret,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

/// Why a configured token is refused (too short a secret, a digest that is not SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

impl Token {
    /// A token from its secret; refused when shorter than [`MIN_TOKEN_LENGTH`].
    pub fn plain(name: impl Into<String>, role: Role, secret: &str) -> Result<Token, TokenError> {
        if secret.len() < MIN_TOKEN_LENGTH {
            return Err(TokenError(format!("a token must be at least {MIN_TOKEN_LENGTH} characters long")));
        }
        Ok(Token { name: name.into(), role, secret: TokenSecret::Plain(secret.to_string()) })
    }

    /// A token from the SHA-256 of its secret (64 hex digits).
    pub fn hashed(name: impl Into<String>, role: Role, sha256: &str) -> Result<Token, TokenError> {
        let sha256 = sha256.trim().to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(TokenError(
                "sha256 must be the 64 hex digits of the token's SHA-256 (e.g. printf %s TOKEN | sha256sum)".into(),
            ));
        }
        Ok(Token { name: name.into(), role, secret: TokenSecret::Sha256(sha256) })
    }

    fn matches(&self, presented: &str) -> bool {
        match &self.secret {
            TokenSecret::Plain(secret) => constant_time_eq(secret.as_bytes(), presented.as_bytes()),
            TokenSecret::Sha256(digest) => {
                let presented = hex_sha256(presented.as_bytes());
                constant_time_eq(digest.as_bytes(), presented.as_bytes())
            }
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Who called: the token's name (or the role when no tokens are configured) and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// How audit rows and uploads name the caller.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The caller in the engine's terms: name and role.
    pub fn actor(&self) -> cme_engine::Actor {
        cme_engine::Actor::new(self.name.clone(), self.role.name())
    }
}

/// The API's access rules.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tokens: Vec<Token>,
}

impl Auth {
    pub fn new(tokens: Vec<Token>) -> Self {
        Auth { tokens }
    }

    pub fn open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The caller, if it may do what `needed` may.
    pub fn require(&self, req: &HttpRequest, needed: Role) -> Result<Caller, ApiError> {
        let caller = self.authorize(req, needed)?;
        // The access log names the token.
        actix_web::HttpMessage::extensions_mut(req).insert(crate::access::TokenName(caller.name.clone()));
        Ok(caller)
    }

    fn authorize(&self, req: &HttpRequest, needed: Role) -> Result<Caller, ApiError> {
        if self.open() {
            return Ok(Caller { name: Role::Admin.name().into(), role: Role::Admin });
        }
        let presented = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let Some(presented) = presented else {
            return Err(ApiError {
                challenge: true,
                ..ApiError::new(StatusCode::UNAUTHORIZED, "a bearer token is required (Authorization: Bearer <token>)")
            });
        };
        let token = self.tokens.iter().find(|t| t.matches(presented)).ok_or_else(|| ApiError {
            challenge: true,
            ..ApiError::new(StatusCode::UNAUTHORIZED, "the bearer token is not valid")
        })?;
        if !token.role.allows(needed) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this needs the {} role; the token has the {} role", needed.name(), token.role.name()),
            ));
        }
        Ok(Caller { name: token.name.clone(), role: token.role })
    }
}

/// Compares without an early exit, so the time taken says nothing of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_they_include_and_publishers_only_publish() {
        use Role::*;
        for (role, needed, allowed) in [
            (Viewer, Viewer, true),
            (Viewer, Publisher, false),
            (Publisher, Viewer, true),
            (Publisher, Publisher, true),
            (Publisher, Operator, false),
            (Publisher, Admin, false),
            (Operator, Publisher, false),
            (Operator, Operator, true),
            (Operator, Admin, false),
            (Admin, Publisher, true),
            (Admin, Admin, true),
        ] {
            assert_eq!(role.allows(needed), allowed, "{role:?} for {needed:?}");
        }
    }

    #[test]
    fn hashed_tokens_match_their_secret_only() {
        let digest = hex_sha256(b"ci-publisher-secret");
        let token = Token::hashed("ci", Role::Publisher, &digest.to_uppercase()).unwrap();
        assert!(token.matches("ci-publisher-secret"));
        assert!(!token.matches("ci-publisher-secreT"));
        assert!(Token::hashed("ci", Role::Publisher, "abc").is_err());
        assert!(Token::plain("short", Role::Admin, "1234567").unwrap_err().to_string().contains("at least 8"));
    }
}
