//! Precompiled artifacts on disk: `<dir>/<engine-key>/<sha256>.cwasm`.
//!
//! A component is compiled once per content hash; later loads map the artifact in
//! (~0.1 ms instead of tens of ms to seconds of Cranelift). The engine key hashes the
//! wasmtime version and the engine's compatibility hash, so an upgrade or a config
//! change misses cleanly instead of loading incompatible code. Artifacts are native
//! code: the directory is created owner-only and only this engine writes to it; nothing
//! precompiled is ever accepted from outside.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Mapped from the artifact cache, taking this long.
    Cached(Duration),
    /// Compiled by Cranelift, taking this long.
    Compiled(Duration),
}

pub(crate) struct ArtifactCache {
    /// `<root>/<engine-key>`, or None to compile in memory only.
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ArtifactCache {
    pub fn new(engine: &Engine, root: Option<&Path>) -> Result<Self, LoadError> {
        let engine_key = engine_key(engine);
        let dir = match root {
            None => None,
            Some(root) => {
                let dir = root.join(&engine_key);
                create_private_dir(&dir).map_err(|e| LoadError::Cache(format!("creating {}: {e}", dir.display())))?;
                for checked in [root, dir.as_path()] {
                    check_private_dir(checked).map_err(LoadError::Cache)?;
                }
                Some(dir)
            }
        };
        Ok(ArtifactCache { dir, engine_key })
    }

    pub fn engine_key(&self) -> &str {
        &self.engine_key
    }

    /// The component for `wasm` (whose digest is `sha256`), from the cache or compiled.
    pub fn component(&self, engine: &Engine, sha256: &str, wasm: &[u8]) -> Result<(Component, Provenance), LoadError> {
        let Some(dir) = &self.dir else {
            let started = Instant::now();
            let component = Component::new(engine, wasm).map_err(compile_error)?;
            return Ok((component, Provenance::Compiled(started.elapsed())));
        };
        let path = dir.join(format!("{sha256}.cwasm"));
        if path.exists() {
            let started = Instant::now();
            // SAFETY: the file was written by `precompile_component` of an engine with
            // the same compatibility key, into a directory only this engine writes.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, Provenance::Cached(started.elapsed()))),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "unusable cached artifact; recompiling"),
            }
        }
        let started = Instant::now();
        let artifact = engine.precompile_component(wasm).map_err(compile_error)?;
        let compiled_in = started.elapsed();
        // Write then rename, so a crash never leaves a half-written artifact behind.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let unique = WRITES.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{sha256}.cwasm.{}-{unique}.tmp", std::process::id()));
        std::fs::write(&tmp, &artifact)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| LoadError::Cache(format!("writing {}: {e}", path.display())))?;
        // SAFETY: just produced by this engine's `precompile_component`.
        let component = unsafe { Component::deserialize(engine, &artifact) }.map_err(compile_error)?;
        tracing::info!(sha256, compile_ms = compiled_in.as_millis() as u64, "compiled plugin");
        Ok((component, Provenance::Compiled(compiled_in)))
    }
}

fn compile_error(e: wasmtime::Error) -> LoadError {
    LoadError::Compile(format!("{:#}", e))
}

fn engine_key(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha(Sha256::new());
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("wasmtime-{}", &hex::encode(hasher.0.finalize())[..16])
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Refuses a directory this process does not own, or that its group or others may write:
/// whoever can write there can plant native code that the engine would run.
fn check_private_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory (a symbolic link is refused too)", dir.display()));
        }
        // A file this process creates is owned by its effective user.
        // Unique per call: runtimes started concurrently in one process share the directory.
        static PROBES: AtomicU64 = AtomicU64::new(0);
        let probe = dir.join(format!(".owner-probe-{}-{}", std::process::id(), PROBES.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&probe, b"").map_err(|e| format!("{} is not writable: {e}", dir.display()))?;
        let me = std::fs::metadata(&probe).map(|m| m.uid());
        let _ = std::fs::remove_file(&probe);
        let me = me.map_err(|e| format!("{}: {e}", dir.display()))?;
        if meta.uid() != me {
            return Err(format!(
                "the artifact cache {} is owned by uid {}, not by this engine's user (uid {me}); it holds native code the engine runs: use a directory of your own (--cache-dir)",
                dir.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "the artifact cache {} is writable by its group or others (mode {:o}); it holds native code the engine runs: chmod go-w it or use another --cache-dir",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// The lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
