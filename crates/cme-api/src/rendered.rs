//! Rendered answers kept in memory, each with the version of the data it shows: lists
//! that clients poll (the dashboard's executor timeline, plugin lists) are rendered once
//! per version of their data and request URL, then served from memory.

use cme_model::Locked;
use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::web::Bytes;

/// Bodies kept at most: arbitrary query strings must not grow it without bound.
const KEPT: usize = 64;

/// What a body was rendered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// The plugin registry, by its generation.
    Plugins,
    /// The store, by its data version.
    Store,
}

#[derive(Default)]
pub(crate) struct Rendered {
    bodies: Mutex<HashMap<(Source, String), (u64, Bytes)>>,
}

impl Rendered {
    /// The body rendered for `url` from `source` at `version`, if it is kept.
    pub(crate) fn get(&self, source: Source, url: &str, version: u64) -> Option<Bytes> {
        let bodies = self.bodies.locked();
        bodies.get(&(source, url.to_string())).filter(|(seen, _)| *seen == version).map(|(_, body)| body.clone())
    }

    /// Keeps `body` as what `url` shows of `source` at `version`.
    pub(crate) fn put(&self, source: Source, url: String, version: u64, body: Bytes) {
        let mut bodies = self.bodies.locked();
        if bodies.len() >= KEPT {
            bodies.clear();
        }
        bodies.insert((source, url), (version, body));
    }
}
