//! What the build scripts of iBERT's DuckDB-linking packages share.
//!
//! The `duckdb` crate compiles DuckDB's C++ sources when its `bundled` feature is on: about 40
//! minutes on two cores, the bulk of a first build. The same DuckDB release ships prebuilt as
//! `libduckdb.so` in an npm package (`@duckdb/node-bindings-linux-x64`), so by default iBERT
//! links that file instead: [`link_duckdb`] fetches the package tarball once into the iBERT
//! cache (both the tarball and the library are pinned by sha256), and tells the linker where
//! the library is, with an rpath so the binaries find it at run time without `LD_LIBRARY_PATH`.
//!
//! A package built with its `bundled` feature (release binaries, platforms without a prebuilt
//! library, machines without network) compiles DuckDB in and fetches nothing. So does a
//! library folder named by `IBERT_DUCKDB_LIB_DIR` (a `libduckdb.so` of the same release).

use std::fs::File;
use std::path::{Path, PathBuf};

use ibert_fetch::{FetchError, Pinned};

/// The DuckDB release the `duckdb` crate of the workspace binds (crate 1.10506.x = DuckDB 1.5.6).
pub const DUCKDB_VERSION: &str = "1.5.6";

/// The npm tarball that carries the prebuilt library for x86-64 Linux (glibc).
pub const LINUX_X64_TARBALL: Pinned<'static> = Pinned {
    url: "https://registry.npmjs.org/@duckdb/node-bindings-linux-x64/-/node-bindings-linux-x64-1.5.6-r.1.tgz",
    sha256: "1b9f82478539bb9a1d1df44bd103121a12ae52142c07158dc52b97d2ec1d69ff",
};

/// The library inside the tarball and its own sha256.
const LIBRARY_MEMBER: &str = "package/libduckdb.so";
const LIBRARY_SHA256: &str = "3f4962cdd266eab2b479a5b5a4a6d063d279b2954ae814ed00385d553b747633";
const LIBRARY_FILE: &str = "libduckdb.so";

/// Called from a package's `build.rs`: links the prebuilt DuckDB unless the package's `bundled`
/// feature compiles it in. Panics (the way build scripts report errors) with a message that
/// says what to do.
pub fn link_duckdb() {
    println!("cargo:rerun-if-env-changed=IBERT_DUCKDB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=IBERT_CACHE_DIR");
    if std::env::var_os("CARGO_FEATURE_BUNDLED").is_some() {
        return;
    }
    let dir = match std::env::var_os("IBERT_DUCKDB_LIB_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let target = std::env::var("TARGET").unwrap_or_default();
            if target != "x86_64-unknown-linux-gnu" {
                panic!(
                    "no prebuilt DuckDB library is pinned for target `{target}`\nhint: build with `--features bundled` (compiles DuckDB, about 40 minutes), or set IBERT_DUCKDB_LIB_DIR to a folder holding libduckdb.so {DUCKDB_VERSION}"
                );
            }
            let dir = ibert_fetch::cache_dir().join("duckdb").join(DUCKDB_VERSION);
            if let Err(error) = ensure_library(&dir) {
                panic!(
                    "{error}\nhint: the prebuilt DuckDB {DUCKDB_VERSION} comes from the npm registry; without it, build with `--features bundled` (compiles DuckDB, about 40 minutes) or set IBERT_DUCKDB_LIB_DIR"
                );
            }
            dir
        }
    };
    let library = dir.join(LIBRARY_FILE);
    if !library.is_file() {
        panic!("{} does not exist\nhint: IBERT_DUCKDB_LIB_DIR must name a folder holding libduckdb.so {DUCKDB_VERSION}", library.display());
    }
    // A deleted library re-runs this script (and fetches it again) on the next build.
    println!("cargo:rerun-if-changed={}", library.display());
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}

/// `<dir>/libduckdb.so`, fetched and checked unless a checked copy is there. Several build
/// scripts may run this at once: each writes its own temporary file, and renames are atomic.
pub fn ensure_library(dir: &Path) -> Result<PathBuf, FetchError> {
    let library = dir.join(LIBRARY_FILE);
    if library.is_file() {
        return Ok(library);
    }
    let tarball = tempfile_in(dir, "node-bindings.tgz");
    ibert_fetch::fetch(&ibert_fetch::agent(), LINUX_X64_TARBALL, &tarball, |_, _| {})?;
    let unpacked = tempfile_in(dir, LIBRARY_FILE);
    extract_member(&tarball, LIBRARY_MEMBER, &unpacked)?;
    let found = ibert_fetch::sha256_file(&unpacked)?;
    if found != LIBRARY_SHA256 {
        let _ = std::fs::remove_file(&unpacked);
        let _ = std::fs::remove_file(&tarball);
        return Err(FetchError::Checksum { url: format!("{} ({LIBRARY_MEMBER})", LINUX_X64_TARBALL.url), expected: LIBRARY_SHA256.into(), found });
    }
    std::fs::rename(&unpacked, &library).map_err(|source| FetchError::Io { action: "renaming into", path: library.clone(), source })?;
    let _ = std::fs::remove_file(&tarball);
    Ok(library)
}

/// A name in `dir` no other process uses at the same time.
fn tempfile_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes one member of a `.tgz` file to `dest`.
fn extract_member(tarball: &Path, member: &str, dest: &Path) -> Result<(), FetchError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { action, path, source }
    };
    let file = File::open(tarball).map_err(io("reading", tarball))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().map_err(io("reading", tarball))? {
        let mut entry = entry.map_err(io("reading", tarball))?;
        if entry.path().map_err(io("reading", tarball))?.as_os_str() == member {
            let mut out = File::create(dest).map_err(io("writing", dest))?;
            std::io::copy(&mut entry, &mut out).map_err(io("writing", dest))?;
            return out.sync_all().map_err(io("writing", dest));
        }
    }
    Err(FetchError::Io { action: "finding", path: tarball.join(member), source: std::io::ErrorKind::NotFound.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.tgz` holding one file, written with the same crates the extraction uses.
    fn tarball_with(dir: &Path, member: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join("test.tgz");
        let encoder = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, member, bytes).unwrap();
        builder.into_inner().unwrap().finish().unwrap();
        path
    }

    #[test]
    fn the_named_member_is_extracted() {
        let dir = tempfile::tempdir().unwrap();
        let tarball = tarball_with(dir.path(), LIBRARY_MEMBER, b"not really a library");
        let dest = dir.path().join("out.so");
        extract_member(&tarball, LIBRARY_MEMBER, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"not really a library");
    }

    #[test]
    fn a_tarball_without_the_member_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let tarball = tarball_with(dir.path(), "package/README.md", b"readme");
        let error = extract_member(&tarball, LIBRARY_MEMBER, &dir.path().join("out.so")).unwrap_err().to_string();
        assert!(error.contains("package/libduckdb.so"), "{error}");
    }
}
