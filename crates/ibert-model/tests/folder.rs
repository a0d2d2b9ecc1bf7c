//! Hugging Face folders with the real default model, converted from its GGUF file: full
//! precision on candle, 8-bit at load on the native kernels, and clear errors for incomplete
//! folders. (The hub download of such a folder is tested in ibert-catalog.)

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ibert_catalog::ensure_test_model;
use ibert_model::{
    ChatMessage, Engine, GenerationOptions, LoadOptions, LocalModel,
    convert::{cached_hf_folder, gguf_to_hf_folder},
};
use ibert_oracle::{PythonEnv, cache_dir};

fn python() -> PathBuf {
    PythonEnv::ensure(&|_| {}).unwrap_or_else(|error| panic!("the Python environment: {error}")).python()
}

fn gguf() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| ensure_test_model(&python(), &cache_dir()).unwrap_or_else(|error| panic!("the default model: {error}"))).clone()
}

/// The default model as a folder, converted once into the cache.
fn folder() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| cached_hf_folder(&gguf()).unwrap_or_else(|error| panic!("the default model as a folder: {error}")))
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
