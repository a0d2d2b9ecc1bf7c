//! The GGUF container: `GGUF` magic, version, tensor and metadata counts, metadata key/values,
//! the tensor table, then aligned tensor data. Only the header is read; the data is checked to
//! be all there (a truncated download is the usual way a model file goes bad).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// GGUF versions this reader knows (2 and 3 share the layout read here).
const VERSIONS: [u32; 2] = [2, 3];
/// No honest header has a string or array longer than this.
const MAX_LENGTH: u64 = 1 << 28;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a GGUF model file (it starts with {found:?}, not \"GGUF\"); pass a .gguf model file")]
    Magic { path: PathBuf, found: String },
    #[error("{path}: GGUF version {version} is not supported (versions 2 and 3 are)")]
    Version { path: PathBuf, version: u32 },
    #[error("{path} is truncated or corrupt: {what} (at byte {offset}); download the file again")]
    Corrupt { path: PathBuf, what: String, offset: u64 },
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<MetadataValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetadataValue {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetadataValue::U8(v) => Some(v.into()),
            MetadataValue::U16(v) => Some(v.into()),
            MetadataValue::U32(v) => Some(v.into()),
            MetadataValue::U64(v) => Some(v),
            MetadataValue::I8(v) => u64::try_from(v).ok(),
            MetadataValue::I16(v) => u64::try_from(v).ok(),
            MetadataValue::I32(v) => u64::try_from(v).ok(),
            MetadataValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::String(text) => Some(text),
            _ => None,
        }
    }
}

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dimensions: Vec<u64>,
    /// The ggml type id (0 = F32, 1 = F16, 2 = Q4_0, 3 = Q4_1, ...).
    pub kind: u32,
    /// Offset of the tensor's data from the start of the data section.
    pub offset: u64,
}

/// A GGUF file's header.
#[derive(Debug, Clone)]
pub struct Gguf {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, MetadataValue>,
    pub tensors: Vec<TensorInfo>,
    /// Where tensor data starts in the file.
    pub data_offset: u64,
    pub file_size: u64,
}

impl Gguf {
    /// Reads the header of `path` and checks that every tensor starts inside the file.
    pub fn open(path: &Path) -> Result<Gguf, GgufError> {
        let file = File::open(path).map_err(|source| GgufError::Io { path: path.to_path_buf(), source })?;
        let file_size = file.metadata().map_err(|source| GgufError::Io { path: path.to_path_buf(), source })?.len();
        let mut reader = Reader { inner: BufReader::new(file), offset: 0, path: path.to_path_buf() };
        let magic = reader.bytes(4, "the magic number")?;
        if magic != b"GGUF" {
            return Err(GgufError::Magic { path: path.to_path_buf(), found: String::from_utf8_lossy(&magic).into_owned() });
        }
        let version = reader.u32("the version")?;
        if !VERSIONS.contains(&version) {
            return Err(GgufError::Version { path: path.to_path_buf(), version });
        }
        let tensor_count = reader.u64("the tensor count")?;
        let metadata_count = reader.u64("the metadata count")?;
        reader.check_count(tensor_count, "tensor count")?;
        reader.check_count(metadata_count, "metadata count")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..metadata_count {
            let key = reader.string("a metadata key")?;
            let kind = reader.u32("a metadata type")?;
            let value = reader.value(kind, &key)?;
            metadata.insert(key, value);
        }
        let mut tensors = Vec::new();
        for _ in 0..tensor_count {
            let name = reader.string("a tensor name")?;
            let rank = reader.u32("a tensor rank")?;
            if rank > 8 {
                return Err(reader.corrupt(format!("tensor `{name}` has {rank} dimensions")));
            }
            let dimensions = (0..rank).map(|_| reader.u64("a tensor dimension")).collect::<Result<Vec<_>, _>>()?;
            let kind = reader.u32("a tensor type")?;
            let offset = reader.u64("a tensor offset")?;
            tensors.push(TensorInfo { name, dimensions, kind, offset });
        }
        let alignment = metadata.get("general.alignment").and_then(MetadataValue::as_u64).filter(|a| *a > 0).unwrap_or(32);
        let data_offset = reader.offset.div_ceil(alignment) * alignment;
        let gguf = Gguf { path: path.to_path_buf(), version, metadata, tensors, data_offset, file_size };
        if let Some(last) = gguf.tensors.iter().max_by_key(|t| t.offset)
            && data_offset.saturating_add(last.offset) >= file_size
        {
            return Err(GgufError::Corrupt {
                path: path.to_path_buf(),
                what: format!("tensor `{}` starts past the end of the file ({file_size} bytes)", last.name),
                offset: data_offset.saturating_add(last.offset),
            });
        }
        Ok(gguf)
    }

    pub fn string(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(MetadataValue::as_str)
    }

    pub fn integer(&self, key: &str) -> Option<u64> {
        self.metadata.get(key).and_then(MetadataValue::as_u64)
    }

    /// `general.architecture`: `llama`, `qwen2`, ...
    pub fn architecture(&self) -> Option<&str> {
        self.string("general.architecture")
    }

    /// `<architecture>.<key>`, as the architecture-specific keys are named.
    pub fn architecture_integer(&self, key: &str) -> Option<u64> {
        self.integer(&format!("{}.{key}", self.architecture()?))
    }

    /// `<architecture>.<key>` as a float (GGUF stores these as F32, sometimes F64).
    pub fn architecture_float(&self, key: &str) -> Option<f64> {
        match self.metadata.get(&format!("{}.{key}", self.architecture()?))? {
            MetadataValue::F32(value) => Some(f64::from(*value)),
            MetadataValue::F64(value) => Some(*value),
            _ => None,
        }
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.string("tokenizer.chat_template")
    }

    /// The vocabulary, in token id order.
    pub fn tokens(&self) -> Vec<&str> {
        match self.metadata.get("tokenizer.ggml.tokens") {
            Some(MetadataValue::Array(items)) => items.iter().filter_map(MetadataValue::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// The text of a special token named by its id key (`tokenizer.ggml.eos_token_id`).
    pub fn token_text(&self, id_key: &str) -> Option<&str> {
        let id = usize::try_from(self.integer(id_key)?).ok()?;
        match self.metadata.get("tokenizer.ggml.tokens") {
            Some(MetadataValue::Array(items)) => items.get(id).and_then(MetadataValue::as_str),
            _ => None,
        }
    }

    /// The number of weights, from the tensor shapes.
    pub fn parameter_count(&self) -> u64 {
        self.tensors.iter().map(|t| t.dimensions.iter().product::<u64>()).sum()
    }
}

/// "the value of `key`", for error messages.
struct ValueOf<'a>(&'a str);

impl Display for ValueOf<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(formatter, "the value of `{}`", self.0)
    }
}

struct Reader {
    inner: BufReader<File>,
    offset: u64,
    path: PathBuf,
}

impl Reader {
    fn corrupt(&self, what: String) -> GgufError {
        GgufError::Corrupt { path: self.path.clone(), what, offset: self.offset }
    }

    fn bytes(&mut self, count: usize, what: &(impl Display + ?Sized)) -> Result<Vec<u8>, GgufError> {
        let mut buffer = vec![0; count];
        self.inner.read_exact(&mut buffer).map_err(|error| match error.kind() {
            std::io::ErrorKind::UnexpectedEof => self.corrupt(format!("the file ends inside {what}")),
            _ => GgufError::Io { path: self.path.clone(), source: error },
        })?;
        self.offset += count as u64;
        Ok(buffer)
    }

    fn array<const N: usize>(&mut self, what: &(impl Display + ?Sized)) -> Result<[u8; N], GgufError> {
        let bytes = self.bytes(N, what)?;
        Ok(bytes.try_into().expect("read exactly N bytes"))
    }

    fn u32(&mut self, what: &(impl Display + ?Sized)) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &(impl Display + ?Sized)) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn check_count(&self, count: u64, what: &(impl Display + ?Sized)) -> Result<(), GgufError> {
        if count > MAX_LENGTH {
            return Err(self.corrupt(format!("a {what} of {count}")));
        }
        Ok(())
    }

    fn string(&mut self, what: &(impl Display + ?Sized)) -> Result<String, GgufError> {
        let length = self.u64(what)?;
        self.check_count(length, "string length")?;
        let bytes = self.bytes(length as usize, what)?;
        String::from_utf8(bytes).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }

    fn value(&mut self, kind: u32, key: &str) -> Result<MetadataValue, GgufError> {
        // Formatted only if an error needs it: arrays of 150 000 tokens pass through here.
        let what = ValueOf(key);
        Ok(match kind {
            0 => MetadataValue::U8(u8::from_le_bytes(self.array(&what)?)),
            1 => MetadataValue::I8(i8::from_le_bytes(self.array(&what)?)),
            2 => MetadataValue::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => MetadataValue::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => MetadataValue::U32(u32::from_le_bytes(self.array(&what)?)),
            5 => MetadataValue::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => MetadataValue::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => MetadataValue::Bool(self.array::<1>(&what)?[0] != 0),
            8 => MetadataValue::String(self.string(&what)?),
            9 => {
                let element = self.u32(&what)?;
                if element == 9 {
                    return Err(self.corrupt(format!("`{key}` is an array of arrays")));
                }
                let length = self.u64(&what)?;
                self.check_count(length, "array length")?;
                MetadataValue::Array((0..length).map(|_| self.value(element, key)).collect::<Result<_, _>>()?)
            }
            10 => MetadataValue::U64(u64::from_le_bytes(self.array(&what)?)),
            11 => MetadataValue::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => MetadataValue::F64(f64::from_le_bytes(self.array(&what)?)),
            other => return Err(self.corrupt(format!("`{key}` has the unknown value type {other}"))),
        })
    }
}
