//! Hugging Face folders with the real default model, converted from its GGUF file: full
//! precision on candle, 8-bit at load on the native kernels, the hub download path (served from
//! a local folder), and clear errors for incomplete folders.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ibert_model::{ChatMessage, Engine, GenerationOptions, LoadOptions, LocalModel, convert::gguf_to_hf_folder, ensure_default_model, ensure_hub_model};
use ibert_oracle::{PythonEnv, cache_dir};

fn python() -> PathBuf {
    PythonEnv::ensure(&|_| {}).unwrap_or_else(|error| panic!("the Python environment: {error}")).python()
}

fn gguf() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| ensure_default_model(&python(), &cache_dir()).unwrap_or_else(|error| panic!("the default model: {error}"))).clone()
}

/// The default model as a folder, converted once for all tests.
fn folder() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smollm2");
        gguf_to_hf_folder(&gguf(), &path).unwrap_or_else(|error| panic!("conversion: {error}"));
        (dir, path)
    });
    path
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap()
}

#[test]
fn a_converted_folder_computes_what_the_gguf_file_computes() {
    let mut original = LocalModel::load(&gguf()).unwrap();
    let mut full = LocalModel::load(folder()).unwrap();
    let mut eight_bit = LocalModel::load_with(folder(), LoadOptions { load_in_8bit: true, ..LoadOptions::default() }).unwrap();
    assert_eq!((full.backend(), eight_bit.backend()), ("candle, f32", "native, 8-bit at load"));
    assert!(full.describe().contains("Hugging Face folder"), "{}", full.describe());

    let prompt = original.chat_prompt(&[ChatMessage::new("user", "How do I sort an Ibis table by a column?")]).unwrap();
    assert_eq!(full.chat_prompt(&[ChatMessage::new("user", "How do I sort an Ibis table by a column?")]).unwrap(), prompt, "the same chat template");
    let tokens = original.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
    assert_eq!(full.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids(), tokens.as_slice(), "the same tokenizer");
    let reference = original.prompt_logits(&tokens).unwrap();
    for model in [&mut full, &mut eight_bit] {
        let logits = model.prompt_logits(&tokens).unwrap();
        assert!(cosine(&reference, &logits) > 0.99, "{}: cosine {}", model.backend(), cosine(&reference, &logits));
        assert_eq!(argmax(&logits), argmax(&reference), "{}", model.backend());
    }
    let options = GenerationOptions { max_tokens: 8, ..GenerationOptions::default() };
    let answer = full.generate(&prompt, &options, &mut |_| {}).unwrap();
    assert!(answer.generated_tokens > 0 && !answer.text.trim().is_empty(), "{answer:?}");
}

#[test]
fn an_incomplete_folder_names_the_missing_tensor_and_converting_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["tokenizer.json", "tokenizer_config.json", "model.safetensors"] {
        std::os::unix::fs::symlink(folder().join(file), dir.path().join(file)).unwrap();
    }
    let config = std::fs::read_to_string(folder().join("config.json")).unwrap().replace("\"num_hidden_layers\": 30", "\"num_hidden_layers\": 31");
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let error = LocalModel::load(dir.path()).err().expect("refused").to_string();
    assert!(error.contains("model.layers.30.") && error.contains("is the download complete"), "{error}");

    let error = gguf_to_hf_folder(&gguf(), folder()).unwrap_err().to_string();
    assert!(error.contains("already exists"), "{error}");
}

#[test]
fn hub_models_download_once_into_the_cache_and_fail_clearly_without_network() {
    // A hub served from local files: the same code path as https.
    let hub = tempfile::tempdir().unwrap();
    let repo = hub.path().join("HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main");
    std::fs::create_dir_all(&repo).unwrap();
    for file in ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"] {
        std::os::unix::fs::symlink(folder().join(file), repo.join(file)).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    // SAFETY: set before any thread of this test reads it; the other tests do not read it.
    unsafe { std::env::set_var("HF_ENDPOINT", format!("file://{}", hub.path().display())) };
    let downloaded = ensure_hub_model("HuggingFaceTB/SmolLM2-135M-Instruct", &python(), cache.path()).unwrap();
    assert!(downloaded.starts_with(cache.path()) && downloaded.join("model.safetensors").exists());
    let missing = ensure_hub_model("HuggingFaceTB/NoSuchModel", &python(), cache.path()).unwrap_err().to_string();
    assert!(missing.contains("cannot download `HuggingFaceTB/NoSuchModel`") && missing.contains("--model-path DIR"), "{missing}");
    assert!(!cache.path().join("models/hub/HuggingFaceTB--NoSuchModel").exists(), "nothing half-downloaded");

    // An index cannot make the download write outside its folder.
    let evil = hub.path().join("Evil/Model/resolve/main");
    std::fs::create_dir_all(&evil).unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::os::unix::fs::symlink(folder().join(file), evil.join(file)).unwrap();
    }
    std::fs::write(evil.join("model.safetensors.index.json"), r#"{"weight_map": {"w": "../../escaped.safetensors"}}"#).unwrap();
    let refused = ensure_hub_model("Evil/Model", &python(), cache.path()).unwrap_err().to_string();
    assert!(refused.contains("not a plain .safetensors file name"), "{refused}");
    assert!(!cache.path().join("models/escaped.safetensors").exists() && !cache.path().join("escaped.safetensors").exists());
}
