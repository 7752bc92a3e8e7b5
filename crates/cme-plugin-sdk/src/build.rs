//! For a plugin's `build.rs` (native only): derives its args schema at build time, so
//! that the component carries the schema as text (see [`Describe::args_built`](crate::Describe::args_built)).

/// Writes the schema derived from `T` ([`schema_of`](crate::schema::schema_of)) to
/// `$OUT_DIR/<name>.schema.json`, where [`built_args!`](crate::built_args) finds it.
///
/// # Panics
/// Outside a build script (no `OUT_DIR`), or when the file cannot be written: a build
/// script's failure is the build's.
pub fn write_args_schema<T: schemars::JsonSchema>(name: &str) {
    let out_dir = std::env::var_os("OUT_DIR").expect("write_args_schema runs in a build script (OUT_DIR is set)");
    let path = std::path::Path::new(&out_dir).join(format!("{name}.schema.json"));
    let text = serde_json::to_string(&crate::schema::schema_of::<T>()).expect("a schema is JSON");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
