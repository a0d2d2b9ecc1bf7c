//! `ibert serve`: the settings of the command line and config.yaml handed to the server crate,
//! with the loading (the Ibis workers, the model, the worked examples) it runs in the background.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use ibert_records::{Example, read_jsonl};
use ibert_serve::{Dataset, Loaded, LoadedModel, ServeOptions};

use crate::cli::ServeArgs;
use crate::model_config;
use crate::oracle_setup;

pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = model_config::settings(&args.model)?;
    let api_key = args.api_key_file.as_ref().map(|path| read_api_key(path)).transpose()?;
    if api_key.is_none() && !is_loopback(&args.host) {
        eprintln!("warning: listening on {} without --api-key-file: anyone who reaches the port may use the model", args.host);
    }
    let data_dir = match &args.data {
        Some(dir) => Some(dir.clone()),
        None => Some(settings.data_dir.clone()).filter(|dir| dir.join("splits").is_dir()),
    };
    let dataset = match &data_dir {
        Some(dir) => {
            let dataset = Dataset::open(dir).with_context(|| format!("indexing the dataset of {} for the explorer", dir.display()))?;
            eprintln!("explorer: {} records and {} rejects of {}", dataset.record_count(), dataset.reject_count(), dir.display());
            Some(dataset)
        }
        None => {
            eprintln!("explorer: no dataset (--data DIR, a folder `ibert data all` wrote)");
            None
        }
    };
    let options = ServeOptions {
        host: args.host.clone(),
        port: args.port,
        api_key,
        max_body_bytes: args.max_body_bytes,
        max_tokens_limit: args.max_tokens_limit,
        deadline: Duration::from_secs(args.deadline),
        queue: usize::from(args.queue),
        attempts: args.attempts,
        data_dir,
        generation: settings.generation.clone(),
    };
    let (verify, no_model, no_examples) = (args.verify.clone(), args.no_model, args.model.no_examples);
    let recycle_after = (args.recycle_workers > 0).then_some(args.recycle_workers);
    let loader = Box::new(move || -> anyhow::Result<Loaded> {
        let pool = oracle_setup::start_pool_recycling(&verify, &[], recycle_after)?;
        if no_model {
            return Ok(Loaded { pool, model: None, train: Vec::new() });
        }
        let engine = model_config::load_engine(&settings)?;
        let id = model_id(&settings.model_name, &settings.model_path, engine.adapter());
        // Adapters were trained on prompts without worked examples, and answer better so.
        let with_examples = !no_examples && engine.adapter().is_none();
        let train = if with_examples { train_records(&settings.data_dir)? } else { Vec::new() };
        Ok(Loaded { pool, model: Some(LoadedModel { engine, id }), train })
    });
    ibert_serve::run(options, dataset, loader)?;
    Ok(ExitCode::SUCCESS)
}

/// The name clients see: the model's short name or file name, and its adapter.
fn model_id(name: &Option<String>, path: &Option<PathBuf>, adapter: Option<&str>) -> String {
    let base = match (name, path) {
        (_, Some(path)) => path.file_stem().map_or_else(|| path.display().to_string(), |stem| stem.to_string_lossy().into_owned()),
        (Some(name), None) => name.clone(),
        (None, None) => ibert_catalog::DEFAULT_MODEL_NAME.to_string(),
    };
    let adapter = adapter.map(|adapter| std::path::Path::new(adapter).file_name().map_or(adapter.to_string(), |name| name.to_string_lossy().into_owned()));
    match adapter {
        Some(adapter) => format!("{base}+{adapter}"),
        None => base,
    }
}

fn train_records(data_dir: &std::path::Path) -> anyhow::Result<Vec<Example>> {
    let path = data_dir.join("splits/train.jsonl");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let train: Vec<Example> = read_jsonl(&path)?;
    eprintln!("worked examples: from the {} records of {} (--no-examples for none)", train.len(), path.display());
    Ok(train)
}

fn read_api_key(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the API key file {}", path.display()))?;
    let key = text.trim();
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{}: the API key file must hold one token (no spaces) on its own", path.display());
    }
    Ok(key.to_string())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
