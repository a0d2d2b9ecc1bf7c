//! Greedy answers of a GGUF model with a LoRA adapter to the stored prompts of dataset records,
//! one JSON line each (`id`, the rendered `prompt`, the answer `text`), for
//! `python/bench/llama_cpp_lora_check.py`, which asks llama.cpp the same prompts with the same
//! adapter and compares the answers.
//!
//! `cargo bench -p ibert-model --bench adapter_greedy -- --model-path FILE.gguf --adapter
//! DIR|FILE.gguf --records FILE.jsonl [--count 8] [--tokens 64]`

use std::io::BufRead;
use std::path::Path;

use ibert_model::{Backend, ChatMessage, Engine, GenerationOptions, LoadOptions, LocalModel};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| args.iter().skip_while(|a| *a != name).nth(1).cloned();
    let required = |name: &str| value(name).unwrap_or_else(|| panic!("{name} is required (see the comment at the top of adapter_greedy.rs)"));
    let count: usize = value("--count").and_then(|v| v.parse().ok()).unwrap_or(8);
    let tokens: usize = value("--tokens").and_then(|v| v.parse().ok()).unwrap_or(64);

    let mut engine = LocalModel::load_with(Path::new(&required("--model-path")), LoadOptions { backend: Backend::Native, ..LoadOptions::default() })
        .expect("the model loads");
    if let Some(adapter) = value("--adapter") {
        engine.load_adapter(Path::new(&adapter)).expect("the adapter loads");
    }
    let options = GenerationOptions { max_tokens: tokens, repetition_penalty: 1.0, ..GenerationOptions::default() };
    let records = std::fs::File::open(required("--records")).expect("the records file opens");
    for line in std::io::BufReader::new(records).lines().take(count) {
        let record: serde_json::Value = serde_json::from_str(&line.expect("a line")).expect("a JSON record");
        let messages: Vec<ChatMessage> = serde_json::from_value(record["messages"].clone()).expect("the record's messages");
        let prompt = engine.chat_prompt(&messages).expect("the chat template renders");
        engine.forget_cached_prompt();
        let generation = engine.generate(&prompt, &options, &mut |_| {}).expect("generation");
        let line = serde_json::json!({ "id": record["id"], "prompt": prompt, "text": generation.text, "generated_tokens": generation.generated_tokens });
        println!("{line}");
    }
}
