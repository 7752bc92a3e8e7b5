//! Who asked for a change, or on whose behalf a run acts.

/// Who asked for a change: the token's name (what audit rows show) and its role. A run
/// acts on behalf of its plan's creator: credentials are handed out by this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: String,
}

impl Actor {
    pub fn new(name: impl Into<String>, role: impl Into<String>) -> Actor {
        Actor { name: name.into(), role: role.into() }
    }
}
