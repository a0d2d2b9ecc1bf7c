//! The repacked weights of a GGUF file, kept in iBERT's cache so that later loads map them
//! instead of reading and repacking the file.
//!
//! Repacking is cheap per byte but not free: for a 1 GB model it is about a second of reading,
//! rearranging and faulting in fresh memory, where llama.cpp maps its file and is done. After a
//! file's first native load its panels are written to
//! `<cache>/native/<file name>-<key>.panels` (a temporary file, then a rename); the key covers
//! the file's path, size and modification time and the layout's version, so a changed file gets
//! new panels (and its old ones are removed). Later loads map that file, populated at once as
//! llama.cpp maps its own: the pages are the page cache's, nothing is copied, and they count in
//! the process's memory as llama.cpp's do. A missing, stale or damaged panel file is only a
//! slower load: the matrices are repacked from the GGUF file and the panel file written anew.
//! `IBERT_NATIVE_CACHE=off` turns the cache off.
//!
//! Layout (little-endian): magic `IBERTPNL`, version (u32), key (64 hex bytes), entry count
//! (u32), then per entry: name length (u32) and name, ggml type (u32), rows, cols, records offset,
//! records length in bytes, super-block scales offset and length in floats (u64 each); the data
//! of each entry starts at a 64-byte boundary.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::quant::{QMatrix, QuantKind, Storage};

const MAGIC: &[u8; 8] = b"IBERTPNL";
/// The layout of panel files and of the records in them; a change makes old files stale.
const VERSION: u32 = 1;
const ALIGNMENT: usize = 64;

/// The panel file of one GGUF file.
#[derive(Debug, Clone)]
pub struct PanelCache {
    path: PathBuf,
    /// The file name's part before the key, to find this GGUF file's stale panel files.
    prefix: String,
    key: String,
}

/// A panel file, mapped, by matrix name.
pub struct MappedPanels {
    map: Arc<memmap2::Mmap>,
    entries: HashMap<String, Entry>,
}

struct Entry {
    kind: u32,
    rows: usize,
    cols: usize,
    records: (usize, usize),
    supers: (usize, usize),
}

impl PanelCache {
    /// Where panel files go: `<cache>/native`, or `None` when `IBERT_NATIVE_CACHE=off` (or on a
    /// big-endian machine, where the file's floats would need converting).
    pub fn default_dir() -> Option<PathBuf> {
        match std::env::var("IBERT_NATIVE_CACHE") {
            Ok(value) if value == "off" => None,
            _ if cfg!(target_endian = "big") => None,
            _ => Some(ibert_fetch::cache_dir().join("native")),
        }
    }

    /// The panel file of `gguf` in `dir` (`None` if the file's metadata cannot be read).
    pub fn for_file(gguf: &Path, dir: &Path) -> Option<PanelCache> {
        let metadata = std::fs::metadata(gguf).ok()?;
        let modified = metadata.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
        let canonical = gguf.canonicalize().ok()?;
        let identity = format!("{VERSION}\0{}\0{}\0{modified}", canonical.display(), metadata.len());
        let key = ibert_fetch::hex(&Sha256::digest(identity.as_bytes()));
        let prefix = format!("{}-", gguf.file_name()?.to_string_lossy());
        Some(PanelCache { path: dir.join(format!("{prefix}{}.panels", &key[..16])), prefix, key })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The panel file mapped, if it is there and whole, for this key and version.
    pub fn open(&self) -> Option<MappedPanels> {
        let file = File::open(&self.path).ok()?;
        // SAFETY: the file is only ever written under a temporary name and renamed into place,
        // so a mapped panel file is not written while it is mapped (short of someone editing
        // iBERT's cache by hand).
        let map = Arc::new(unsafe { memmap2::MmapOptions::new().populate().map(&file) }.ok()?);
        let entries = read_table(&map, &self.key)?;
        Some(MappedPanels { map, entries })
    }

    /// Writes `matrices` as this GGUF file's panel file, then removes its stale ones.
    pub fn write(&self, matrices: &[(String, &QMatrix)]) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut table = Vec::new();
        table.extend_from_slice(MAGIC);
        table.extend_from_slice(&VERSION.to_le_bytes());
        table.extend_from_slice(self.key.as_bytes());
        table.extend_from_slice(&(matrices.len() as u32).to_le_bytes());
        let table_size = table.len() + matrices.iter().map(|(name, _)| 4 + name.len() + 4 + 6 * 8).sum::<usize>();
        let mut offset = table_size.next_multiple_of(ALIGNMENT);
        for (name, matrix) in matrices {
            let (records, supers) = matrix.parts();
            let supers_offset = (offset + records.len()).next_multiple_of(ALIGNMENT);
            table.extend_from_slice(&(name.len() as u32).to_le_bytes());
            table.extend_from_slice(name.as_bytes());
            table.extend_from_slice(&matrix.kind.ggml_type().to_le_bytes());
            for value in [matrix.rows, matrix.cols, offset, records.len(), supers_offset, supers.len()] {
                table.extend_from_slice(&(value as u64).to_le_bytes());
            }
            offset = (supers_offset + 4 * supers.len()).next_multiple_of(ALIGNMENT);
        }
        let mut temporary = tempfile::Builder::new().prefix(".panels-").tempfile_in(dir)?;
        let mut out = BufWriter::with_capacity(1 << 20, temporary.as_file_mut());
        out.write_all(&table)?;
        let mut written = table.len();
        let pad_to = |out: &mut BufWriter<&mut File>, written: &mut usize| -> std::io::Result<()> {
            let padding = written.next_multiple_of(ALIGNMENT) - *written;
            out.write_all(&[0; ALIGNMENT][..padding])?;
            *written += padding;
            Ok(())
        };
        for (_, matrix) in matrices {
            let (records, supers) = matrix.parts();
            pad_to(&mut out, &mut written)?;
            out.write_all(records)?;
            written += records.len();
            pad_to(&mut out, &mut written)?;
            out.write_all(&supers.iter().flat_map(|value| value.to_le_bytes()).collect::<Vec<u8>>())?;
            written += 4 * supers.len();
        }
        out.flush()?;
        drop(out);
        temporary.persist(&self.path).map_err(|error| error.error)?;
        self.remove_stale();
        Ok(())
    }

    /// Other panel files of the same GGUF file name (an older version of the file, or of iBERT).
    fn remove_stale(&self) {
        let Some(dir) = self.path.parent() else { return };
        let own = self.path.file_name();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let text = name.to_string_lossy();
            if Some(name.as_os_str()) != own && text.starts_with(&self.prefix) && text.ends_with(".panels") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl MappedPanels {
    /// The matrix `name`, if the file has it with this type and shape.
    pub fn matrix(&self, name: &str, kind: QuantKind, rows: usize, cols: usize) -> Option<QMatrix> {
        let entry = self.entries.get(name).filter(|e| e.kind == kind.ggml_type() && e.rows == rows && e.cols == cols)?;
        let records = Storage::mapped(&self.map, entry.records.0, entry.records.1)?;
        let supers = Storage::mapped(&self.map, entry.supers.0, entry.supers.1)?;
        QMatrix::from_parts(kind, rows, cols, records, supers)
    }
}

/// The entry table of a panel file, checked: magic, version, key, and every range inside the file.
fn read_table(bytes: &[u8], key: &str) -> Option<HashMap<String, Entry>> {
    let mut at: usize = 0;
    let mut take = |count: usize| {
        let slice = bytes.get(at..at.checked_add(count)?)?;
        at += count;
        Some(slice)
    };
    if take(8)? != MAGIC || u32::from_le_bytes(take(4)?.try_into().ok()?) != VERSION || take(key.len())? != key.as_bytes() {
        return None;
    }
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let mut entries = HashMap::new();
    for _ in 0..count {
        let length = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let name = String::from_utf8(take(length)?.to_vec()).ok()?;
        let kind = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let mut value = || Some(u64::from_le_bytes(take(8)?.try_into().ok()?) as usize);
        let (rows, cols, records_at, records_len, supers_at, supers_len) = (value()?, value()?, value()?, value()?, value()?, value()?);
        let inside = |offset: usize, size: usize| offset.checked_add(size).is_some_and(|end| end <= bytes.len());
        if !inside(records_at, records_len) || !inside(supers_at, supers_len.checked_mul(4)?) {
            return None;
        }
        entries.insert(name, Entry { kind, rows, cols, records: (records_at, records_len), supers: (supers_at, supers_len) });
    }
    Some(entries)
}
