//! Plain against speculative decoding on the stored prompts of held-out records, side by side in
//! one run: for each task and decoding, generated tokens/s, the drafts' acceptance, and seconds
//! per answer (p50/p95, prompt included, the cache emptied before each answer), plus a check
//! that every answer is byte-identical to plain decoding's.
//!
//! `cargo bench -p ibert-model --bench speculative -- --model-path FILE.gguf [--draft-model
//! FILE.gguf] [--records data/splits/test.jsonl] [--per-task 6] [--tokens 256] [--tasks
//! error_resolution,code_completion,sql_to_ibis,qa] [--prompts-out FILE.jsonl]`
//!
//! `--prompts-out` writes each rendered prompt with plain decoding's answer, for
//! `python/bench/llama_cpp_speculative.py`, which runs llama.cpp on the same prompts.
//! `RAYON_NUM_THREADS` sets the threads (the comparison uses 2). Exits 1 when an answer differs.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use ibert_model::{Backend, ChatMessage, Decoding, Engine, GenerationOptions, LoadOptions, LocalModel};

struct Answer {
    text: String,
    tokens: usize,
    generation_seconds: f64,
    seconds: f64,
    drafted: usize,
    accepted: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| args.iter().skip_while(|a| *a != name).nth(1).cloned();
    let model_path = value("--model-path").expect("--model-path FILE.gguf is required (see the comment at the top of speculative.rs)");
    let records_path = value("--records").unwrap_or_else(|| "data/splits/test.jsonl".to_string());
    let per_task: usize = value("--per-task").and_then(|v| v.parse().ok()).unwrap_or(6);
    let tokens: usize = value("--tokens").and_then(|v| v.parse().ok()).unwrap_or(256);
    let tasks: Vec<String> =
        value("--tasks").unwrap_or_else(|| "error_resolution,code_completion,sql_to_ibis,qa".to_string()).split(',').map(str::to_string).collect();

    let load =
        |path: &str| LocalModel::load_with(Path::new(path), LoadOptions { backend: Backend::Native, ..LoadOptions::default() }).expect("the model loads");
    let mut engine = load(&model_path);
    let mut decodings = vec![Decoding::Plain, Decoding::PromptLookup];
    if let Some(draft) = value("--draft-model") {
        engine.set_draft_model(load(&draft)).expect("the draft model fits the model");
        decodings.extend([Decoding::DraftModel, Decoding::LookupThenDraft]);
    }
    println!("model      {}", engine.describe());
    println!("threads    {}", rayon::current_num_threads());
    if args.iter().any(|a| a == "--batch-costs") {
        batch_costs(&mut engine);
        return;
    }

    // The first records of each task, in file order (the split is held out from training).
    let file = std::fs::File::open(&records_path).unwrap_or_else(|error| panic!("{records_path}: {error}"));
    let mut chosen: Vec<(String, String, Vec<ChatMessage>)> = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let record: serde_json::Value = serde_json::from_str(&line.expect("a line")).expect("a JSON record");
        let task = record["task"].as_str().unwrap_or_default().to_string();
        if tasks.contains(&task) && chosen.iter().filter(|(t, _, _)| *t == task).count() < per_task {
            let messages: Vec<ChatMessage> = serde_json::from_value(record["messages"].clone()).expect("the record's messages");
            chosen.push((task, record["id"].as_str().unwrap_or_default().to_string(), messages));
        }
    }
    let mut prompts_out = value("--prompts-out").map(|path| std::fs::File::create(&path).unwrap_or_else(|error| panic!("{path}: {error}")));

    let options = GenerationOptions { max_tokens: tokens, ..GenerationOptions::default() };
    let mut differing = 0;
    println!("\n{:<17} {:<13} {:>8} {:>7} {:>10} {:>7} {:>7} {:>9}", "task", "decoding", "tokens", "tok/s", "acceptance", "p50 s", "p95 s", "identical");
    for task in &tasks {
        let records: Vec<_> = chosen.iter().filter(|(t, _, _)| t == task).collect();
        let mut plain_texts: Vec<String> = Vec::new();
        for decoding in &decodings {
            engine.set_decoding(*decoding).expect("the decoding is available");
            // Lookup drafts from earlier answers too: only this run's, never another decoding's
            // answer to the same record.
            engine.forget_answers();
            let mut answers = Vec::new();
            for (_, id, messages) in &records {
                let prompt = engine.chat_prompt(messages).expect("the chat template renders");
                engine.forget_cached_prompt();
                let started = Instant::now();
                let generation = engine.generate(&prompt, &options, &mut |_| {}).expect("generation");
                let seconds = started.elapsed().as_secs_f64();
                if *decoding == Decoding::Plain
                    && let Some(out) = &mut prompts_out
                {
                    let line = serde_json::json!({ "id": id, "task": task, "prompt": prompt, "text": generation.text, "generated_tokens": generation.generated_tokens, "seconds": seconds });
                    writeln!(out, "{line}").expect("writing the prompts");
                }
                answers.push(Answer {
                    text: generation.text,
                    tokens: generation.generated_tokens,
                    generation_seconds: generation.generation_time.as_secs_f64(),
                    seconds,
                    drafted: generation.decoding.drafted,
                    accepted: generation.decoding.accepted,
                });
            }
            if *decoding == Decoding::Plain {
                plain_texts = answers.iter().map(|a| a.text.clone()).collect();
            }
            let identical = answers.iter().zip(&plain_texts).filter(|(a, plain)| a.text == **plain).count();
            differing += answers.len() - identical;
            let generated: usize = answers.iter().map(|a| a.tokens).sum();
            let generation_seconds: f64 = answers.iter().map(|a| a.generation_seconds).sum();
            let (drafted, accepted) = answers.iter().fold((0, 0), |(d, a), answer| (d + answer.drafted, a + answer.accepted));
            let acceptance = if drafted > 0 { format!("{:.0}%", 100.0 * accepted as f64 / drafted as f64) } else { "-".to_string() };
            let mut seconds: Vec<f64> = answers.iter().map(|a| a.seconds).collect();
            seconds.sort_by(f64::total_cmp);
            let quantile = |q: f64| seconds[((seconds.len() - 1) as f64 * q).round() as usize];
            println!(
                "{task:<17} {:<13} {generated:>8} {:>7.1} {acceptance:>10} {:>7.2} {:>7.2} {:>9}",
                decoding.name(),
                generated as f64 / generation_seconds,
                quantile(0.5),
                quantile(0.95),
                format!("{identical}/{}", answers.len())
            );
        }
    }
    if differing > 0 {
        println!("\n{differing} answers differ from plain decoding's");
        std::process::exit(1);
    }
    println!("\nevery answer is byte-identical to plain decoding's");
}

/// The time one pass over `b` new tokens takes after a 300-token prompt, for b = 1..16: what a
/// check of `b - 1` drafted tokens costs against one plain step.
fn batch_costs(engine: &mut LocalModel) {
    let unit = "total = orders.filter(orders.amount > 100).group_by(\"status\").aggregate(n=orders.count())\n";
    let prompt: String = unit.repeat(12);
    let options = GenerationOptions { max_tokens: 1, ..GenerationOptions::default() };
    let base = engine.tokenizer().encode(prompt.as_str(), false).expect("tokenizes").len();
    println!("\n{:>6} {:>9} {:>12}", "tokens", "ms/pass", "vs 1 token");
    let mut single = 0.0;
    for b in [1, 2, 3, 4, 6, 8, 12, 16] {
        let mut times = Vec::new();
        for round in 0..5 {
            engine.forget_cached_prompt();
            engine.generate(&prompt, &options, &mut |_| {}).expect("generation");
            // `b` more tokens of text (different each round, so nothing else is reused).
            let extra: String = (0..b).map(|i| format!(" v{}", (round * 16 + i) % 10)).collect();
            let generation = engine.generate(&format!("{prompt}{extra}"), &options, &mut |_| {}).expect("generation");
            let ran = generation.prompt_tokens - generation.reused_prompt_tokens;
            times.push((generation.prompt_time.as_secs_f64() * 1000.0, ran));
        }
        times.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ms, ran) = times[2];
        if b == 1 {
            single = ms;
        }
        println!("{ran:>6} {ms:>9.1} {:>12.2}  (after {base} tokens)", ms / single);
    }
}
