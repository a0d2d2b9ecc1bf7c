//! The candle engine on the real default model: tokenizer, greedy decoding, stops, limits.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use ibert_catalog::ensure_test_model;
use ibert_model::{Backend, ChatMessage, Engine, EngineError, GenerationOptions, LoadOptions, LocalModel, StopReason};
use ibert_oracle::{PythonEnv, cache_dir};

fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let env = PythonEnv::ensure(&|_| {}).unwrap_or_else(|error| panic!("the Python environment: {error}"));
        ensure_test_model(&env.python(), &cache_dir()).unwrap_or_else(|error| panic!("the default model: {error}"))
    })
    .clone()
}

/// One loaded model shared by the tests (loading takes a moment; generation needs `&mut`).
fn engine() -> &'static Mutex<LocalModel> {
    static ENGINE: OnceLock<Mutex<LocalModel>> = OnceLock::new();
    ENGINE.get_or_init(|| Mutex::new(LocalModel::load(&model_path()).expect("the default model loads")))
}

#[test]
fn the_tokenizer_round_trips_text_and_knows_the_control_tokens() {
    let engine = engine().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let tokenizer = engine.tokenizer();
    for text in ["expr = orders.filter(orders.amount > 100)", "  indented\n\tand tabs", "ünïcödé — “quotes” ✓", ""] {
        let ids = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(tokenizer.decode(&ids, false).unwrap(), text);
    }
    let ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>", false).unwrap().get_ids().to_vec();
    assert_eq!(ids.first(), Some(&1), "<|im_start|> is one token: {ids:?}");
    assert_eq!(ids.last(), Some(&2), "<|im_end|> is one token: {ids:?}");
}

#[test]
fn greedy_decoding_is_deterministic_and_streams_what_it_returns() {
    let mut engine = engine().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let prompt = engine.chat_prompt(&[ChatMessage::new("user", "Write one line of Python that adds 2 and 3.")]).unwrap();
    let options = GenerationOptions { max_tokens: 24, ..GenerationOptions::default() };
    let mut streamed = String::new();
    let first = engine.generate(&prompt, &options, &mut |piece| streamed.push_str(piece)).unwrap();
    let second = engine.generate(&prompt, &options, &mut |_| {}).unwrap();
    assert!(!first.text.trim().is_empty());
    assert_eq!(first.text, second.text, "temperature 0 is greedy");
    assert_eq!(streamed, first.text, "the streamed pieces make up the answer");
    assert!(first.generated_tokens <= 24 && first.prompt_tokens > 20, "{first:?}");
    assert!(first.stop_reason == StopReason::EndOfText || first.generated_tokens == 24, "{first:?}");
}

#[test]
fn a_prompt_that_extends_the_previous_one_runs_only_its_new_tokens_and_answers_the_same() {
    let mut engine = LocalModel::load(&model_path()).expect("the model loads");
    let options = GenerationOptions { max_tokens: 16, ..GenerationOptions::default() };
    let question = ChatMessage::new("user", "Write one line of Python that adds 2 and 3.");
    let first = engine.generate(&engine.chat_prompt(std::slice::from_ref(&question)).unwrap(), &options, &mut |_| {}).unwrap();
    assert_eq!(first.reused_prompt_tokens, 0, "a fresh model has nothing to reuse");
    let follow_up = [question, ChatMessage::new("assistant", &first.text), ChatMessage::new("user", "Now multiply them instead.")];
    let prompt = engine.chat_prompt(&follow_up).unwrap();
    let reused = engine.generate(&prompt, &options, &mut |_| {}).unwrap();
    assert!(reused.reused_prompt_tokens >= first.prompt_tokens, "the first turn is reused: {reused:?} after {first:?}");
    let mut fresh = LocalModel::load(&model_path()).expect("the model loads");
    let from_scratch = fresh.generate(&prompt, &options, &mut |_| {}).unwrap();
    assert_eq!(from_scratch.reused_prompt_tokens, 0);
    assert_eq!(reused.text, from_scratch.text, "reusing the cache changes nothing but the time");
}

/// Greedy decoding on the native kernels is deterministic on a given CPU kind (AVX2 or not): the
/// text is pinned, so a change to the kernels, the tokenizer or the template shows up here.
#[test]
fn greedy_output_is_pinned() {
    let mut engine = engine().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let prompt = engine.chat_prompt(&[ChatMessage::new("user", "What does the Ibis method `filter` do?")]).unwrap();
    let options = GenerationOptions { max_tokens: 32, ..GenerationOptions::default() };
    let answer = engine.generate(&prompt, &options, &mut |_| {}).unwrap();
    let kernels = ibert_model::native::quant::kernel_name();
    insta::assert_snapshot!(format!("greedy_{kernels}"), answer.text);
}

#[test]
fn stop_texts_end_the_answer_before_them() {
    let mut engine = engine().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let prompt = engine.chat_prompt(&[ChatMessage::new("user", "List three colors.")]).unwrap();
    let free = engine.generate(&prompt, &GenerationOptions { max_tokens: 30, ..GenerationOptions::default() }, &mut |_| {}).unwrap();
    // A piece of what greedy decoding says anyway, taken from its middle, as the stop text.
    let chars: Vec<char> = free.text.chars().collect();
    assert!(chars.len() >= 12, "{:?}", free.text);
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 3].iter().collect();
    let expected = &free.text[..free.text.find(&stop).unwrap()];
    let options = GenerationOptions { max_tokens: 30, stop: vec![stop.clone()], ..GenerationOptions::default() };
    let mut streamed = String::new();
    let generation = engine.generate(&prompt, &options, &mut |piece| streamed.push_str(piece)).unwrap();
    assert_eq!(generation.text, expected, "stopped before {stop:?}");
    assert_eq!(streamed, expected, "nothing past the stop text was streamed");
    assert_eq!(generation.stop_reason, StopReason::StopText);
}

#[test]
fn sampling_with_a_seed_is_reproducible() {
    let mut engine = engine().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let prompt = engine.chat_prompt(&[ChatMessage::new("user", "Name a fruit.")]).unwrap();
    let options = GenerationOptions { max_tokens: 12, temperature: 0.9, top_p: Some(0.9), top_k: Some(40), seed: 7, ..GenerationOptions::default() };
    let a = engine.generate(&prompt, &options, &mut |_| {}).unwrap();
    let b = engine.generate(&prompt, &options, &mut |_| {}).unwrap();
    assert_eq!(a.text, b.text);
}

#[test]
fn a_prompt_past_the_context_is_refused() {
    let mut engine = engine().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let options = GenerationOptions { max_tokens: 9000, ..GenerationOptions::default() };
    let error = engine.generate("hello", &options, &mut |_| {}).unwrap_err();
    assert!(matches!(error, EngineError::Context { context: 8192, .. }), "{error}");
}

#[test]
fn a_truncated_model_fails_to_load_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    let bytes = std::fs::read(model_path()).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let error = LocalModel::load(&path).err().expect("refused").to_string();
    assert!(error.contains("cut.gguf") && error.contains("truncated or corrupt"), "{error}");
}

#[test]
fn the_default_model_runs_on_the_native_backend_and_agrees_with_candle() {
    let mut native = engine().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    assert_eq!(native.backend(), "native", "{}", native.describe());
    let mut candle = LocalModel::load_with(&model_path(), LoadOptions { backend: Backend::Candle, ..LoadOptions::default() }).unwrap();
    assert_eq!(candle.backend(), "candle");
    let prompt = native.chat_prompt(&[ChatMessage::new("user", "Filter the orders table to amounts above 100 with Ibis.")]).unwrap();
    let tokens = native.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
    let ours = native.prompt_logits(&tokens).unwrap();
    let theirs = candle.prompt_logits(&tokens).unwrap();
    assert_eq!(ours.len(), theirs.len());
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let cosine = ours.iter().zip(&theirs).map(|(a, b)| a * b).sum::<f32>() / (norm(&ours) * norm(&theirs));
    let argmax = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
    assert!(cosine > 0.999, "the logits differ: cosine {cosine}");
    assert_eq!(argmax(&ours), argmax(&theirs), "both pick the same next token");
}

/// The default model's bytes with one patch: `find` located, `replace` written after it.
fn patched(find: &[u8], skip: usize, replace: &[u8]) -> Vec<u8> {
    let mut bytes = std::fs::read(model_path()).unwrap();
    let at = bytes.windows(find.len()).position(|w| w == find).expect("the pattern is in the header") + find.len() + skip;
    bytes[at..at + replace.len()].copy_from_slice(replace);
    bytes
}

#[test]
fn an_unknown_block_type_or_architecture_is_named_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // The tensor table entry: name (length-prefixed), rank (u32), two dimensions (u64), type (u32).
    let mut name = 17u64.to_le_bytes().to_vec();
    name.extend_from_slice(b"token_embd.weight");
    let path = dir.path().join("iq.gguf");
    std::fs::write(&path, patched(&name, 4 + 16, &20u32.to_le_bytes())).unwrap();
    let error = LocalModel::load(&path).err().expect("refused").to_string();
    assert!(error.contains("iq.gguf") && error.contains("token_embd.weight") && error.contains("IQ4_NL (20)") && error.contains("hint:"), "{error}");

    // `general.architecture` (type 8, a string of 5 bytes) becomes another architecture.
    let path = dir.path().join("mamba.gguf");
    std::fs::write(&path, patched(b"general.architecture", 4 + 8, b"mamba")).unwrap();
    let error = LocalModel::load(&path).err().expect("refused").to_string();
    assert!(error.contains("mamba.gguf") && error.contains("`mamba`"), "{error}");
    let error = LocalModel::load_with(&path, LoadOptions { backend: Backend::Native, ..LoadOptions::default() }).err().expect("refused").to_string();
    assert!(error.contains("mamba.gguf") && error.contains("architecture `mamba`"), "{error}");
}

/// The native backend keeps the repacked weights in a panel file: written at the first load, mapped
/// at the next ones, rewritten when damaged; the logits are the same to the bit each time.
#[test]
fn the_panel_file_is_written_once_then_mapped_with_the_same_results() {
    use ibert_model::native::panel_cache::PanelCache;
    use ibert_model::native::{DecoderWeights, NativeDecoder};
    let dir = tempfile::tempdir().unwrap();
    let header = ibert_model::Gguf::open(&model_path()).unwrap();
    let cache = PanelCache::for_file(&model_path(), dir.path()).unwrap();
    let stale = dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf-0000000000000000.panels");
    std::fs::write(&stale, "an older panel file").unwrap();
    let tokens: Vec<u32> = (1..40).map(|i| i * 97 % 49_000).collect();

    let fresh = NativeDecoder::new(DecoderWeights::load_with(&header, Some(&cache)).unwrap()).logits_from_start(&tokens).unwrap();
    let written = std::fs::metadata(cache.path()).expect("the panel file is written").modified().unwrap();
    assert!(!stale.exists(), "the stale panel file is removed");
    let mapped = NativeDecoder::new(DecoderWeights::load_with(&header, Some(&cache)).unwrap()).logits_from_start(&tokens).unwrap();
    assert_eq!(std::fs::metadata(cache.path()).unwrap().modified().unwrap(), written, "mapped, not written again");
    let uncached = NativeDecoder::new(DecoderWeights::load_with(&header, None).unwrap()).logits_from_start(&tokens).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&mapped), bits(&fresh));
    assert_eq!(bits(&uncached), bits(&fresh));

    // A damaged panel file is repacked around and written anew.
    let size = std::fs::metadata(cache.path()).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(cache.path()).unwrap().set_len(size / 2).unwrap();
    let repaired = NativeDecoder::new(DecoderWeights::load_with(&header, Some(&cache)).unwrap()).logits_from_start(&tokens).unwrap();
    assert_eq!(bits(&repaired), bits(&fresh));
    assert_eq!(std::fs::metadata(cache.path()).unwrap().len(), size);
}
