//! The files of a mining source: walked without following links or entering hidden folders,
//! each read as text or skipped with a counted reason (too large, binary, not UTF-8).

use std::path::{Path, PathBuf};

/// Larger files are skipped: generated or data files, not documentation.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// The kinds of file mining reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    Python,
    Markdown,
    Quarto,
    Notebook,
}

impl FileKind {
    pub fn of(path: &Path) -> Option<FileKind> {
        match path.extension()?.to_str()? {
            "py" => Some(FileKind::Python),
            "md" | "markdown" => Some(FileKind::Markdown),
            "qmd" => Some(FileKind::Quarto),
            "ipynb" => Some(FileKind::Notebook),
            _ => None,
        }
    }
}

/// A file to mine, by its path relative to the source root.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub relative: PathBuf,
    pub kind: FileKind,
}

/// The files of the kinds mining reads under `root`, in a stable order, and how many folders
/// could not be read (skipped, not fatal).
pub fn walk(root: &Path) -> (Vec<SourceFile>, usize) {
    let mut files = Vec::new();
    let mut unreadable = 0;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            unreadable += 1;
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(file_type) = entry.file_type() else { continue };
            if file_type.is_symlink() {
                continue;
            }
            if file_type.is_dir() {
                if !name.starts_with('.') && !["node_modules", "__pycache__", "target", "site-packages"].contains(&name.as_ref()) {
                    folders.push(entry.path());
                }
            } else if let Some(kind) = FileKind::of(&entry.path()) {
                let relative = entry.path().strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| entry.path());
                files.push(SourceFile { relative, kind });
            }
        }
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    (files, unreadable)
}

/// The file's text, or why it is skipped.
pub fn read_text(path: &Path) -> Result<String, &'static str> {
    let size = std::fs::metadata(path).map_err(|_| "unreadable")?.len();
    if size > MAX_FILE_BYTES {
        return Err("larger than 2 MiB");
    }
    let bytes = std::fs::read(path).map_err(|_| "unreadable")?;
    if bytes.contains(&0) {
        return Err("binary");
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_known_kinds_and_skips_hidden_folders_and_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("docs/.hidden")).unwrap();
        std::fs::write(dir.path().join("docs/guide.qmd"), "x").unwrap();
        std::fs::write(dir.path().join("docs/.hidden/secret.md"), "x").unwrap();
        std::fs::write(dir.path().join("a.py"), "x").unwrap();
        std::fs::write(dir.path().join("image.png"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("a.py"), dir.path().join("link.py")).unwrap();
        let files: Vec<String> = walk(dir.path()).0.iter().map(|f| f.relative.display().to_string()).collect();
        assert_eq!(files, ["a.py", "docs/guide.qmd"]);
    }

    #[test]
    fn binary_and_foreign_text_are_skipped_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.py"), b"x = 1\0").unwrap();
        std::fs::write(dir.path().join("l.py"), b"x = '\xe9'").unwrap();
        assert_eq!(read_text(&dir.path().join("b.py")), Err("binary"));
        assert_eq!(read_text(&dir.path().join("l.py")), Err("not UTF-8"));
    }
}
