//! Bearer tokens with roles. Without any token configured every caller is admin (the
//! binary then refuses to bind beyond loopback).

use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};

use crate::problem::ApiError;

/// What a token may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every GET except the audit log.
    Viewer,
    /// Plans, executors, halt and resume.
    Operator,
    /// Everything, including the audit log.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// A configured token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub token: String,
    pub role: Role,
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

    /// The caller's role, if it is at least `needed`.
    pub fn require(&self, req: &HttpRequest, needed: Role) -> Result<Role, ApiError> {
        if self.open() {
            return Ok(Role::Admin);
        }
        let presented = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let Some(presented) = presented else {
            return Err(ApiError { challenge: true, ..ApiError::new(StatusCode::UNAUTHORIZED, "a bearer token is required (Authorization: Bearer <token>)") });
        };
        let role = self
            .tokens
            .iter()
            .find(|t| constant_time_eq(t.token.as_bytes(), presented.as_bytes()))
            .map(|t| t.role)
            .ok_or_else(|| ApiError { challenge: true, ..ApiError::new(StatusCode::UNAUTHORIZED, "the bearer token is not valid") })?;
        if role < needed {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this needs the {} role; the token has the {} role", needed.name(), role.name()),
            ));
        }
        Ok(role)
    }
}

/// Compares without an early exit, so the time taken says nothing of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}
