//! The script library: the shell scripts attacks may upload to targets. Scripts from
//! `script_attacks/` ship inside the binary; an operator's directory can add or override
//! scripts. Only plain file names resolve: nothing outside the library can be read.

use std::path::{Path, PathBuf};

/// The scripts shipped with the engine: every `*.sh` in `script_attacks/`.
static SHIPPED: include_dir::Dir<'static> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/../../script_attacks");

/// The scripts shipped with the engine, by file name.
pub fn embedded() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    SHIPPED.files().filter_map(|f| Some((f.path().to_str()?, f.contents()))).filter(|(name, _)| name.ends_with(".sh"))
}

/// The largest script read, in bytes.
pub const MAX_SCRIPT_BYTES: u64 = 1 << 20;

/// Why a script could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The name is not a plain file name (a path, `..`, a hidden file).
    #[error(
        "script name {0:?} is refused: name a script of the library, e.g. s_burncpu.sh or script_attacks/s_burncpu.sh"
    )]
    Refused(String),
    #[error("no script named {name:?} (available: {available})")]
    NotFound { name: String, available: String },
    #[error("reading script {name:?}: {reason}")]
    Io { name: String, reason: String },
}

/// The library: embedded scripts plus an optional operator directory (which wins on a
/// name clash).
#[derive(Debug, Clone, Default)]
pub struct ScriptLibrary {
    dir: Option<PathBuf>,
}

impl ScriptLibrary {
    pub fn new(dir: Option<PathBuf>) -> Self {
        ScriptLibrary { dir }
    }

    /// Every script name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = embedded().map(|(n, _)| n.to_string()).collect();
        if let Some(dir) = &self.dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            names.extend(
                entries.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()).filter(|n| plain(n)),
            );
        }
        names.sort();
        names.dedup();
        names
    }

    /// The script `name` (`NAME` or `script_attacks/NAME`).
    pub fn read(&self, name: &str) -> Result<Vec<u8>, ScriptError> {
        let file = name.strip_prefix("script_attacks/").unwrap_or(name);
        if !plain(file) {
            return Err(ScriptError::Refused(name.to_string()));
        }
        if let Some(dir) = &self.dir
            && let Some(bytes) =
                read_within(dir, file).map_err(|reason| ScriptError::Io { name: name.to_string(), reason })?
        {
            return Ok(bytes);
        }
        embedded()
            .find(|(n, _)| *n == file)
            .map(|(_, bytes)| bytes.to_vec())
            .ok_or_else(|| ScriptError::NotFound { name: name.to_string(), available: self.names().join(", ") })
    }
}

/// A plain file name: letters, digits, `.`, `_`, `-`; not hidden, no path.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Reads `dir/file` if it exists, refusing symlinks that lead out of `dir`.
fn read_within(dir: &Path, file: &str) -> Result<Option<Vec<u8>>, String> {
    let path = dir.join(file);
    let Ok(real) = path.canonicalize() else { return Ok(None) };
    let root = dir.canonicalize().map_err(|e| e.to_string())?;
    if !real.starts_with(&root) {
        return Err("it points outside the script directory".into());
    }
    let metadata = std::fs::metadata(&real).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Ok(None);
    }
    if metadata.len() > MAX_SCRIPT_BYTES {
        return Err(format!("larger than {MAX_SCRIPT_BYTES} bytes"));
    }
    std::fs::read(&real).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_a_shipped_script_resolve() {
        let library = ScriptLibrary::default();
        let bare = library.read("s_empty.sh").unwrap();
        assert_eq!(library.read("script_attacks/s_empty.sh").unwrap(), bare);
        assert!(String::from_utf8(bare).unwrap().starts_with("#!/bin/sh"));
    }

    #[test]
    fn paths_out_of_the_library_are_refused() {
        let library = ScriptLibrary::default();
        for name in ["../etc/passwd", "/etc/passwd", "script_attacks/../x.sh", "a/b.sh", ".hidden", "", "s_empty.sh\0"]
        {
            assert!(matches!(library.read(name), Err(ScriptError::Refused(_))), "{name:?}");
        }
    }

    #[test]
    fn an_unknown_name_lists_what_exists() {
        let err = ScriptLibrary::default().read("s_nope.sh").unwrap_err().to_string();
        assert!(err.contains("no script named") && err.contains("s_burncpu.sh"), "{err}");
    }

    #[test]
    fn an_operators_directory_adds_and_overrides_but_cannot_escape() {
        let dir = std::env::temp_dir().join(format!("cme-scripts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("custom.sh"), "#!/bin/sh\necho custom\n").unwrap();
        std::fs::write(dir.join("s_empty.sh"), "#!/bin/sh\necho override\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/hostname", dir.join("escape.sh")).ok();
        let library = ScriptLibrary::new(Some(dir.clone()));
        assert_eq!(library.read("custom.sh").unwrap(), b"#!/bin/sh\necho custom\n");
        assert_eq!(library.read("s_empty.sh").unwrap(), b"#!/bin/sh\necho override\n");
        assert!(library.names().contains(&"custom.sh".to_string()));
        #[cfg(unix)]
        assert!(matches!(library.read("escape.sh"), Err(ScriptError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
