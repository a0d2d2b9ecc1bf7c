//! The tokenizer a GGUF file describes in its metadata (`tokenizer.ggml.*`), built as a Hugging
//! Face `tokenizers` tokenizer, so that a GGUF model needs no tokenizer.json beside it.

use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::gguf::{Gguf, MetadataValue};

/// GGUF token type of control tokens (`<|im_start|>`), which the text may contain verbatim.
const CONTROL_TOKEN: u64 = 3;

/// How Qwen2's tokenizer (`tokenizer.ggml.pre = qwen2`) cuts text before byte-level BPE: a word
/// keeps one leading non-letter (`.filter`), every digit stands alone, a run of punctuation keeps
/// the line breaks after it. GPT-2's pattern, the default, cuts `.` from `filter` and keeps digits
/// together, which gives token sequences the model never saw in training.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{0} has no tokenizer vocabulary (tokenizer.ggml.tokens)")]
    NoVocabulary(String),
    #[error("{path}: tokenizer model `{model}` is not supported yet (byte-level BPE, `gpt2`, is); use a Hugging Face model folder with its tokenizer.json")]
    Unsupported { path: String, model: String },
    #[error("building the tokenizer of {path}: {detail}")]
    Build { path: String, detail: String },
}

/// The tokens that end an answer: the model's end-of-sequence token and the end-of-turn tokens
/// of the common chat formats its vocabulary has.
pub(crate) fn end_tokens(tokenizer: &Tokenizer, eos: Option<u32>) -> Vec<u32> {
    let mut tokens: Vec<u32> = eos.into_iter().collect();
    for text in ["<|im_end|>", "<|endoftext|>", "<|end|>", "<|eot_id|>"] {
        tokens.extend(tokenizer.token_to_id(text));
    }
    tokens
}

/// A byte-level BPE tokenizer (GPT-2 style, as SmolLM2 and Qwen2 use) from the GGUF vocabulary,
/// merges and control tokens.
pub fn tokenizer_from_gguf(gguf: &Gguf) -> Result<Tokenizer, TokenizerError> {
    let path = gguf.path.display().to_string();
    let model = gguf.string("tokenizer.ggml.model").unwrap_or("");
    if model != "gpt2" {
        return Err(TokenizerError::Unsupported { path, model: model.to_string() });
    }
    let tokens = gguf.tokens();
    if tokens.is_empty() {
        return Err(TokenizerError::NoVocabulary(path));
    }
    let mut vocab = Vocab::with_capacity_and_hasher(tokens.len(), Default::default());
    for (id, token) in tokens.iter().enumerate() {
        vocab.insert(token.to_string(), id as u32);
    }
    let merges: Vec<(String, String)> = match gguf.metadata.get("tokenizer.ggml.merges") {
        Some(MetadataValue::Array(items)) => {
            items.iter().filter_map(MetadataValue::as_str).filter_map(|merge| merge.split_once(' ')).map(|(a, b)| (a.to_string(), b.to_string())).collect()
        }
        _ => Vec::new(),
    };
    let bpe =
        BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|error| TokenizerError::Build { path: path.clone(), detail: error.to_string() })?;
    let mut tokenizer = Tokenizer::new(bpe);
    let pre_tokenizer: PreTokenizerWrapper = match gguf.string("tokenizer.ggml.pre") {
        Some("qwen2") => {
            let split = Split::new(SplitPattern::Regex(QWEN2_PATTERN.to_string()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|error| TokenizerError::Build { path: path.clone(), detail: error.to_string() })?;
            Sequence::new(vec![split.into(), ByteLevel::new(false, false, false).into()]).into()
        }
        _ => ByteLevel::new(false, true, true).into(),
    };
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let types: Vec<u64> = match gguf.metadata.get("tokenizer.ggml.token_type") {
        Some(MetadataValue::Array(items)) => items.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
        _ => Vec::new(),
    };
    let control: Vec<AddedToken> =
        tokens.iter().zip(&types).filter(|(_, kind)| **kind == CONTROL_TOKEN).map(|(token, _)| AddedToken::from(token.to_string(), true)).collect();
    tokenizer.add_special_tokens(&control);
    Ok(tokenizer)
}
