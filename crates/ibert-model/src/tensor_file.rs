//! Named f32 tensors in safetensors files (on the `safetensors` crate), for adapters and training
//! checkpoints: written whole to a temporary file, synced, then renamed, so a reader never sees
//! half a file; read back with every tensor's type and size checked.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

#[derive(Debug, thiserror::Error)]
pub enum TensorFileError {
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path} is not a readable safetensors file: {detail}")]
    Format { path: PathBuf, detail: String },
}

/// How values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    /// bfloat16: half the size, the range of f32 (what trainers ship adapters in).
    Bf16,
}

/// A tensor: its shape and its values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Writes `tensors` to `path` through a temporary file beside it; `metadata` goes to the file's
/// `__metadata__`.
pub fn write_tensors(path: &Path, tensors: &BTreeMap<String, Tensor>, precision: Precision, metadata: &[(&str, &str)]) -> Result<(), TensorFileError> {
    let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, tensor)| {
            let bytes = match precision {
                Precision::F32 => tensor.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                Precision::Bf16 => tensor.values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect(),
            };
            let dtype = if precision == Precision::F32 { Dtype::F32 } else { Dtype::BF16 };
            (name.clone(), dtype, tensor.shape.clone(), bytes)
        })
        .collect();
    let format = |detail: String| TensorFileError::Format { path: path.to_path_buf(), detail };
    let views = encoded
        .iter()
        .map(|(name, dtype, shape, bytes)| TensorView::new(*dtype, shape.clone(), bytes).map(|view| (name.as_str(), view)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format(error.to_string()))?;
    let info: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let bytes = safetensors::serialize(views, Some(info)).map_err(|error| format(error.to_string()))?;
    write_atomically(path, &bytes)
}

/// Every tensor of `path`, as f32 (F32, F16 and BF16 files are read).
pub fn read_tensors(path: &Path) -> Result<BTreeMap<String, Tensor>, TensorFileError> {
    let bytes = std::fs::read(path).map_err(|source| TensorFileError::Io { action: "reading", path: path.to_path_buf(), source })?;
    let format = |detail: String| TensorFileError::Format { path: path.to_path_buf(), detail };
    let file = SafeTensors::deserialize(&bytes).map_err(|error| format(error.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => return Err(format(format!("tensor `{name}` is {other:?}; F32, F16 or BF16 are read"))),
        };
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(format(format!("tensor `{name}` holds a value that is not finite (at {bad})")));
        }
        tensors.insert(name, Tensor { shape: view.shape().to_vec(), values });
    }
    Ok(tensors)
}

/// `bytes` to a temporary file beside `path`, synced, then renamed to `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TensorFileError> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |action: &'static str| move |source| TensorFileError::Io { action, path: path.to_path_buf(), source };
    let mut file = tempfile::Builder::new().prefix(".writing-").tempfile_in(dir).map_err(io("writing"))?;
    file.write_all(bytes).and_then(|()| file.as_file().sync_all()).map_err(io("writing"))?;
    file.persist(path).map_err(|error| io("renaming into")(error.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_in_f32_and_bf16_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let mut tensors = BTreeMap::new();
        tensors.insert("a".to_string(), Tensor { shape: vec![2, 3], values: vec![0.5, -1.25, 3.0, 1e-3, 7.0, -0.0] });
        write_tensors(&path, &tensors, Precision::F32, &[("format", "pt")]).unwrap();
        assert_eq!(read_tensors(&path).unwrap(), tensors);
        write_tensors(&path, &tensors, Precision::Bf16, &[]).unwrap();
        let rounded = read_tensors(&path).unwrap();
        for (a, b) in rounded["a"].values.iter().zip(&tensors["a"].values) {
            assert!((a - b).abs() <= b.abs() / 128.0, "{a} against {b}");
        }
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let error = read_tensors(&path).unwrap_err().to_string();
        assert!(error.contains("t.safetensors is not a readable safetensors file"), "{error}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary files are left: {left:?}");
    }
}
