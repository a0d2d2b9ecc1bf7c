use std::path::PathBuf;

/// Where iBERT keeps what it installs and downloads: `$IBERT_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/ibert`, else `~/.cache/ibert`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IBERT_CACHE_DIR").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("ibert");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("ibert")
}
