//! Loading: the artifact cache, and what is refused.

use cme_runtime::{LoadError, Provenance, Runtime, RuntimeConfig};

use crate::support::*;

#[tokio::test]
async fn a_component_is_compiled_once_then_loaded_from_the_artifact_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig { cache_dir: Some(dir.path().to_path_buf()), ..RuntimeConfig::default() };
    let wasm = cme_plugins::builtin("exact-planner").unwrap().wasm;

    let first = Runtime::new(config()).unwrap();
    let plugin = first.load(wasm).await.unwrap();
    assert!(matches!(plugin.provenance(), Provenance::Compiled(_)));
    let artifact = dir.path().join(first.engine_key()).join(format!("{}.cwasm", plugin.sha256()));
    assert!(artifact.is_file(), "artifact at {}", artifact.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(artifact.parent().unwrap()).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the artifact directory is private to the engine");
    }

    // A new runtime (as after a restart) maps the artifact instead of compiling.
    let second = Runtime::new(config()).unwrap();
    let again = second.load(wasm).await.unwrap();
    assert!(matches!(again.provenance(), Provenance::Cached(_)));
    assert_eq!(again.info(), plugin.info());
}

#[tokio::test]
async fn a_corrupted_artifact_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig { cache_dir: Some(dir.path().to_path_buf()), ..RuntimeConfig::default() };
    let wasm = cme_plugins::builtin("exact-planner").unwrap().wasm;
    let runtime = Runtime::new(config()).unwrap();
    let plugin = runtime.load(wasm).await.unwrap();
    let artifact = dir.path().join(runtime.engine_key()).join(format!("{}.cwasm", plugin.sha256()));
    std::fs::write(&artifact, b"not an artifact").unwrap();
    let reloaded = Runtime::new(config()).unwrap().load(wasm).await.unwrap();
    assert!(matches!(reloaded.provenance(), Provenance::Compiled(_)));
}

#[tokio::test]
async fn non_components_are_refused_with_a_reason() {
    let runtime = runtime();
    assert!(matches!(runtime.load(b"random bytes, not wasm").await, Err(LoadError::NotWasm)));
    // The smallest valid core module: magic and version 1, no sections.
    let core_module = b"\0asm\x01\0\0\0";
    let error = runtime.load(core_module).await.unwrap_err();
    assert!(matches!(error, LoadError::CoreModule));
    assert!(error.to_string().contains("wasm32-wasip2"), "the error says how to fix it: {error}");
    let mut truncated = cme_plugins::builtin("api-request").unwrap().wasm.to_vec();
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(runtime.load(&truncated).await, Err(LoadError::Compile(_))));
}
