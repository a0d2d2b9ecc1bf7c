//! The GGUF engine on a model file, each backend in turn: load time, prompt and generation speed
//! (tokens/s, medians of the rounds), and peak memory. `python/bench/llama_cpp_bench.py`
//! measures llama.cpp the same way (same prompt, same counts), for the side-by-side figures.
//!
//! `cargo bench -p ibert-model --bench engine [-- --model-path FILE.gguf --backend native|candle
//! --rounds 3 --prompt-tokens 200 --tokens 128]`
//!
//! Without `--model-path` it runs the default model (fetched into the cache once). Peak memory is
//! the process's (VmHWM): run one backend per process to read it for that backend alone.
//! `RAYON_NUM_THREADS` sets the threads (the comparison uses 2).

use std::path::PathBuf;
use std::time::Instant;

use ibert_catalog::ensure_test_model;
use ibert_model::{Backend, Engine, GenerationOptions, LoadOptions, LocalModel};
use ibert_oracle::{PythonEnv, cache_dir};

/// The prompt's repeated unit (the llama.cpp script uses the same).
const UNIT: &str = "expr = orders.filter(orders.amount > 100).group_by(\"status\").aggregate(total=orders.amount.sum())\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| args.iter().skip_while(|a| *a != name).nth(1).cloned();
    let flag = |name: &str, default: usize| value(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (rounds, prompt_tokens, tokens) = (flag("--rounds", 3), flag("--prompt-tokens", 200), flag("--tokens", 128));
    let backends = match value("--backend").as_deref() {
        Some("native") => vec![Backend::Native],
        Some("candle") => vec![Backend::Candle],
        _ => vec![Backend::Native, Backend::Candle],
    };
    let path = match value("--model-path") {
        Some(path) => PathBuf::from(path),
        None => {
            let env = PythonEnv::ensure(&|_| {}).expect("python environment");
            ensure_test_model(&env.python(), &cache_dir()).expect("default model")
        }
    };
    println!("threads          {}", rayon_threads());
    for backend in backends {
        let memory_before = peak_rss_mb();
        let started = Instant::now();
        let mut engine = LocalModel::load_with(&path, LoadOptions { backend, ..LoadOptions::default() }).expect("model loads");
        let load = started.elapsed();

        // A prompt of about `prompt_tokens` tokens: Ibis code repeated.
        let mut prompt = String::new();
        while engine.tokenizer().encode(prompt.as_str(), false).map(|e| e.len()).unwrap_or(0) < prompt_tokens {
            prompt.push_str(UNIT);
        }
        let options = GenerationOptions { max_tokens: tokens, repetition_penalty: 1.0, ..GenerationOptions::default() };
        let mut prompt_rates = Vec::new();
        let mut generation_rates = Vec::new();
        let mut measured = (0, 0);
        for _ in 0..rounds {
            // Every round processes the whole prompt (no reuse of the previous round's cache) and,
            // with no end-of-text stop, generates the same number of tokens.
            engine.forget_cached_prompt();
            let generation = engine.generate(&prompt, &options, &mut |_| {}).expect("generation");
            let prompt_run = generation.prompt_tokens - generation.reused_prompt_tokens;
            measured = (prompt_run, generation.generated_tokens);
            prompt_rates.push(prompt_run as f64 / generation.prompt_time.as_secs_f64());
            generation_rates.push(generation.generated_tokens as f64 / generation.generation_time.as_secs_f64());
        }
        let median = |values: &mut Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        println!("model            {}", engine.describe());
        println!("load             {:.2} s", load.as_secs_f64());
        println!("prompt           {} tokens: {:.1} tok/s (median of {rounds})", measured.0, median(&mut prompt_rates));
        println!("generation       {} tokens: {:.1} tok/s (median of {rounds})", measured.1, median(&mut generation_rates));
        println!("peak memory      {} MB (VmHWM; +{} MB for this backend)", peak_rss_mb(), peak_rss_mb() - memory_before);
    }
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
