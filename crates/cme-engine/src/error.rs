//! What the engine answers when a request cannot be done.

/// An engine error, shaped for the API: each variant maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The client's input is wrong (400); `pointer` locates the value in the request body.
    #[error("{message}")]
    Invalid { message: String, pointer: Option<String> },
    /// No such plan or executor (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource is in a state that forbids the change (409).
    #[error("{0}")]
    Conflict(String),
    /// The upload is larger than the engine accepts (413).
    #[error("{0}")]
    TooLarge(String),
    /// The engine cannot serve the request now (503), e.g. the database is unreachable.
    #[error("{0}")]
    Unavailable(String),
}

impl EngineError {
    pub fn invalid(message: impl Into<String>, pointer: Option<&str>) -> Self {
        EngineError::Invalid { message: message.into(), pointer: pointer.map(str::to_string) }
    }
}

impl From<cme_store::StoreError> for EngineError {
    fn from(e: cme_store::StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        EngineError::Unavailable(format!("the database is unavailable: {e}"))
    }
}
