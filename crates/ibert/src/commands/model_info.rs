//! `ibert model info`: what a GGUF model file holds, read from its header (and the default model
//! fetched into the cache first when no path is given).

use std::process::ExitCode;

use anyhow::Context;

use ibert_model::native::{DecoderWeights, quant};
use ibert_model::{ChatMessage, ChatTemplate, Gguf};

use crate::cli::{ConvertAdapterArgs, ModelChoice, ModelConvertArgs, ModelInfoArgs};
use crate::{model_config, ui};

pub fn run(args: &ModelInfoArgs) -> anyhow::Result<ExitCode> {
    let path = model_config::chosen_model(&args.choice)?;
    let gguf = Gguf::open(&path)?;
    let size = gguf.file_size as f64 / 1e6;
    println!("file              {} ({size:.1} MB, GGUF v{})", path.display(), gguf.version);
    println!("name              {}", gguf.string("general.name").unwrap_or("-"));
    println!("architecture      {}", gguf.architecture().unwrap_or("-"));
    println!("parameters        {:.1} M in {} tensors", gguf.parameter_count() as f64 / 1e6, gguf.tensors.len());
    let layers = gguf.architecture_integer("block_count").map_or("-".into(), |n| n.to_string());
    let width = gguf.architecture_integer("embedding_length").map_or("-".into(), |n| n.to_string());
    println!("layers x width    {layers} x {width}");
    let context = gguf.architecture_integer("context_length").map_or("-".into(), |n| n.to_string());
    println!("context length    {context} tokens");
    let tokenizer = gguf.string("tokenizer.ggml.model").unwrap_or("-");
    println!("vocabulary        {} tokens ({tokenizer})", gguf.tokens().len());
    match DecoderWeights::unsupported_reason(&gguf) {
        None => println!("backend           native ({} kernels)", quant::kernel_name()),
        Some(reason) => println!("backend           candle (the native backend does not read {reason})"),
    }
    let eos = gguf.token_text("tokenizer.ggml.eos_token_id").unwrap_or("");
    match gguf.chat_template() {
        Some(source) => {
            let bos = gguf.token_text("tokenizer.ggml.bos_token_id").unwrap_or("");
            let template = ChatTemplate::new(source, bos, eos)?;
            let sample = template.render(&[ChatMessage::new("user", "...")], true)?;
            println!("chat template     yes; a user turn renders as:\n{}", indent(&sample));
        }
        None => println!("chat template     none (prompts are sent as plain text)"),
    }
    match model_config::built_in_adapter(&path) {
        Some(adapter) => println!("built-in adapter  {} (LoRA; the task commands apply it unless --no-adapter)", adapter.name),
        None => println!("built-in adapter  none"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `ibert model convert-adapter`: a PEFT folder as a GGUF LoRA file.
pub fn convert_adapter(args: &ConvertAdapterArgs) -> anyhow::Result<ExitCode> {
    let choice = if args.choice.model_path.is_some() || args.choice.model_name.is_some() {
        args.choice.clone()
    } else {
        // The base the folder names, when it is a built-in model.
        let config = args.adapter.join(ibert_model::adapter::peft::CONFIG_FILE);
        let text = std::fs::read_to_string(&config).with_context(|| format!("reading {}", config.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", config.display()))?;
        let name = value["base_model_name_or_path"].as_str().unwrap_or_default().to_string();
        if ibert_catalog::builtin_model(&name).is_none() && !std::path::Path::new(&name).is_file() {
            anyhow::bail!("{}: the base `{name}` is not a built-in model; pass it with --model-path or --model-name", config.display());
        }
        let is_file = std::path::Path::new(&name).is_file();
        ModelChoice { model_path: is_file.then(|| name.clone().into()), model_name: (!is_file).then_some(name) }
    };
    let path = model_config::chosen_model(&choice)?;
    let header = Gguf::open(&path)?;
    let (architecture, shape) = ibert_model::Shape::from_gguf(&header)?;
    let adapter = ibert_model::read_adapter(&args.adapter, architecture, &shape)?;
    ibert_model::adapter::gguf_lora::write_gguf_lora(&adapter, &shape, &args.to)?;
    println!("wrote {} ({} blocks, rank {}, alpha {}) for {}", args.to.display(), adapter.blocks.len(), adapter.rank, adapter.alpha, path.display());
    Ok(ExitCode::SUCCESS)
}

/// `ibert model convert`: a GGUF model as a Hugging Face folder.
pub fn convert(args: &ModelConvertArgs) -> anyhow::Result<ExitCode> {
    let path = model_config::chosen_model(&args.choice)?;
    let spinner = ui::spinner(&format!("converting {}", path.display()));
    ibert_model::convert::gguf_to_hf_folder(&path, &args.to)?;
    spinner.finish_and_clear();
    println!("wrote {} (config.json, tokenizer.json, tokenizer_config.json, model.safetensors)", args.to.display());
    println!("run it with: ibert qa --model-path {}", args.to.display());
    Ok(ExitCode::SUCCESS)
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("    {line}")).collect::<Vec<_>>().join("\n")
}
