//! The LoRA adapters that ship with iBERT, one per built-in model at most: PEFT folders in the
//! repository's `adapters/` (bf16, each with a card saying how it was trained and measured),
//! compiled into the binary and written into `<cache>/adapters/` on first use, so the task
//! commands apply them with no flag wherever the binary runs.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// An adapter compiled into the binary: its folder's files.
#[derive(Debug)]
pub struct BuiltinAdapter {
    /// The folder's name in `adapters/` (and in the cache).
    pub name: &'static str,
    /// The built-in model it adapts (`BuiltinModel::name`).
    pub model: &'static str,
    pub files: &'static [(&'static str, &'static [u8])],
}

/// A shipped adapter: the four files of its folder in `adapters/`, compiled in.
macro_rules! shipped_adapter {
    ($folder:literal, $model:literal) => {
        BuiltinAdapter {
            name: $folder,
            model: $model,
            files: &[
                adapter_file!($folder, "adapter_config.json"),
                adapter_file!($folder, "adapter_model.safetensors"),
                adapter_file!($folder, "ibert_adapter.json"),
                adapter_file!($folder, "README.md"),
            ],
        }
    };
}

macro_rules! adapter_file {
    ($folder:literal, $name:literal) => {
        ($name, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../adapters/", $folder, "/", $name)) as &[u8])
    };
}

/// The adapters that ship, each kept where `ibert eval` measured it better than its base on
/// every checked task (docs/training.md has the tables and the card in its folder says how it
/// was trained).
pub const BUILTIN_ADAPTERS: &[BuiltinAdapter] =
    &[shipped_adapter!("qwen2.5-coder-0.5b-ibert", "qwen2.5-coder-0.5b"), shipped_adapter!("smollm2-135m-ibert", "smollm2-135m")];

/// The adapter that ships for the built-in model `model`, if any.
pub fn builtin_adapter(model: &str) -> Option<&'static BuiltinAdapter> {
    BUILTIN_ADAPTERS.iter().find(|adapter| adapter.model == model)
}

impl BuiltinAdapter {
    /// A short digest of the files, so that a newer build's adapter gets a folder of its own.
    fn digest(&self) -> String {
        let mut hash = Sha256::new();
        for (name, bytes) in self.files {
            hash.update(name.as_bytes());
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        }
        ibert_fetch::hex(&hash.finalize())[..12].to_string()
    }

    /// The adapter's folder in `cache_dir`, written there first when missing (into a temporary
    /// folder, then renamed, so a half-written one is never used).
    pub fn install(&self, cache_dir: &Path) -> std::io::Result<PathBuf> {
        let parent = cache_dir.join("adapters");
        let dir = parent.join(format!("{}-{}", self.name, self.digest()));
        if dir.is_dir() {
            return Ok(dir);
        }
        std::fs::create_dir_all(&parent)?;
        let staging = tempfile::Builder::new().prefix(".adapter-").tempdir_in(&parent)?;
        for (name, bytes) in self.files {
            std::fs::write(staging.path().join(name), bytes)?;
        }
        match std::fs::rename(staging.keep(), &dir) {
            Ok(()) => Ok(dir),
            // Another process installed it meanwhile.
            Err(_) if dir.is_dir() => Ok(dir),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_adapter_names_its_built_in_model_and_that_file_s_sha256() {
        for adapter in BUILTIN_ADAPTERS {
            let model = crate::builtin_model(adapter.model).expect("a built-in model");
            let identity = adapter.files.iter().find(|(name, _)| *name == "ibert_adapter.json").expect("an identity file").1;
            let identity: serde_json::Value = serde_json::from_slice(identity).unwrap();
            assert_eq!(identity["base"]["sha256"], model.file.sha256, "{}", adapter.name);
            assert!(adapter.files.iter().any(|(name, bytes)| *name == "adapter_model.safetensors" && bytes.len() < 20_000_000));
        }
        assert!(builtin_adapter("smollm2-135m").is_some() && builtin_adapter("qwen2.5-coder-0.5b").is_some());
        assert!(builtin_adapter("qwen2.5-coder-1.5b").is_none());
    }

    #[test]
    fn an_adapter_is_written_once_and_a_changed_one_gets_its_own_folder() {
        let cache = tempfile::tempdir().unwrap();
        let adapter = BuiltinAdapter { name: "test-lora", model: "m", files: &[("adapter_config.json", b"{}"), ("adapter_model.safetensors", b"xyz")] };
        let dir = adapter.install(cache.path()).unwrap();
        assert_eq!(std::fs::read(dir.join("adapter_model.safetensors")).unwrap(), b"xyz");
        assert_eq!(adapter.install(cache.path()).unwrap(), dir);
        let changed = BuiltinAdapter { files: &[("adapter_config.json", b"{}"), ("adapter_model.safetensors", b"xyzw")], ..adapter };
        let other = changed.install(cache.path()).unwrap();
        assert_ne!(other, dir);
        assert_eq!(std::fs::read_dir(cache.path().join("adapters")).unwrap().count(), 2, "no staging folder is left");
    }
}
