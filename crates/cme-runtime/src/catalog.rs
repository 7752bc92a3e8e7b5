//! The plugins an engine knows, found by ref in either spelling.

use std::collections::HashMap;

use crate::info::{PluginKind, canonical_ref};
use crate::plugin::Plugin;

/// Plugins by canonical ref. A ref belongs to one plugin only.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    by_ref: HashMap<(PluginKind, String), Plugin>,
    plugins: Vec<Plugin>,
}

impl Catalog {
    /// Adds a plugin; refused when one of its refs already names another plugin of the
    /// same kind.
    pub fn insert(&mut self, plugin: Plugin) -> Result<(), String> {
        let kind = plugin.kind();
        for r in plugin.canonical_refs() {
            if let Some(existing) = self.by_ref.get(&(kind, r.clone())) {
                return Err(format!("ref {r} already belongs to {}", existing.id()));
            }
        }
        for r in plugin.canonical_refs() {
            self.by_ref.insert((kind, r), plugin.clone());
        }
        self.plugins.push(plugin);
        Ok(())
    }

    /// The plugin of `kind` answering to `reference` (`module:Class` or `module.Class`).
    pub fn resolve(&self, kind: PluginKind, reference: &str) -> Option<&Plugin> {
        self.by_ref.get(&(kind, canonical_ref(reference)?))
    }

    /// Every plugin, in insertion order.
    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }
}
