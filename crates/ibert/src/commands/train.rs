//! `ibert train`: a LoRA adapter fine-tuned on the corpus of `ibert data all`, with a progress
//! bar (progress lines when standard error is not a terminal), checkpoints to resume from and a
//! summary at the end.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ibert_model::adapter::BaseModel;
use ibert_model::architecture::Projection;
use ibert_model::native::DecoderWeights;
use ibert_model::{Gguf, LocalModel};
use ibert_records::Task;
use ibert_train::data::{Corpus, pack, read_split};
use ibert_train::frozen::FrozenPrecision;
use ibert_train::network::{Network, split_mix};
use ibert_train::optimizer::Hyperparameters;
use ibert_train::output::{Report, write_adapter};
use ibert_train::run::{Ending, Inputs, Limits, Observer, Settings, StepRecord, mean_loss, train};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{PROJECTIONS, TrainArgs};
use crate::{exit, model_config, ui};

pub fn run(args: &TrainArgs, interrupted: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    if !(0.0..1.0).contains(&args.dropout) {
        bail!("--dropout {} must be in [0, 1)", args.dropout);
    }
    let tasks: Vec<Task> = args.task.iter().filter_map(|name| Task::ALL.into_iter().find(|t| t.as_str() == name)).collect();
    let task_weights = parse_weights(&args.task_weight)?;
    let targets: Vec<Projection> = if args.targets.is_empty() {
        Projection::ALL.to_vec()
    } else {
        PROJECTIONS.iter().filter(|m| args.targets.iter().any(|t| t == *m)).filter_map(|m| Projection::from_module(m)).collect()
    };
    let train_path = args.data.join("splits").join("train.jsonl");
    let validation_path = args.data.join("splits").join("validation.jsonl");
    for path in [&train_path, &validation_path] {
        if !path.exists() {
            bail!("{} does not exist\nhint: run `ibert data all` first (it writes the splits), or pass --data DIR", path.display());
        }
    }

    let model_path = model_config::chosen_model(&args.choice)?;
    if model_path.is_dir() {
        bail!("{}: training runs on a GGUF file (llama or qwen2); `ibert model info --model-name NAME` fetches the built-in ones", model_path.display());
    }
    let spinner = ui::spinner("loading the model and reading the splits");
    let model = LocalModel::load(&model_path)?;
    let header = Gguf::open(&model_path)?;
    if let Some(reason) = DecoderWeights::unsupported_reason(&header) {
        bail!("{}: training runs on the native backend, which does not run this model ({reason})", model_path.display());
    }
    let precision = FrozenPrecision::parse(&args.frozen).expect("clap checks --frozen");
    let network = Network::new(DecoderWeights::load(&header)?, precision);
    if args.first_block >= network.shape().blocks {
        bail!("--first-block {} is past the model's {} blocks", args.first_block, network.shape().blocks);
    }
    let max_tokens = args.max_tokens as usize;
    let corpus = read_split(&train_path, &model, &tasks, max_tokens)?;
    let validation_corpus = read_split(&validation_path, &model, &tasks, max_tokens)?;
    let validation = validation_batches(&validation_corpus, args.validation_records, args.micro_batch_tokens as usize);
    let base_sha = ibert_fetch::sha256_file(&model_path)?;
    let data_sha = data_hash(&[&train_path, &validation_path])?;
    spinner.finish_and_clear();

    let total_steps = args.max_steps.unwrap_or_else(|| ((corpus.examples.len() as f64 * args.epochs) / f64::from(args.batch_size)).ceil().max(1.0) as u64);
    let settings = Settings {
        base: BaseModel { name: base_name(&args.choice.model_name, &model_path), sha256: Some(base_sha) },
        rank: args.rank as usize,
        alpha: args.alpha,
        dropout: args.dropout,
        targets: targets.iter().map(|p| p.module().to_string()).collect(),
        first_block: args.first_block,
        optimizer: Hyperparameters {
            weight_decay: args.weight_decay,
            clip_norm: args.clip_norm,
            ..Hyperparameters::new(args.learning_rate, args.warmup_steps.unwrap_or((total_steps / 20).max(1)), total_steps)
        },
        batch_examples: args.batch_size as usize,
        micro_batch_tokens: args.micro_batch_tokens as usize,
        max_tokens,
        task_weights,
        seed: args.seed,
        frozen: precision.name().to_string(),
        validation_every: args.validation_every,
        data_sha256: data_sha,
    };
    let run_dir = run_dir(&args.output);
    if args.restart && run_dir.exists() {
        std::fs::remove_dir_all(&run_dir).with_context(|| format!("removing {}", run_dir.display()))?;
    }
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    describe(&model, &network, &corpus, &settings, &run_dir);
    let base_validation = mean_loss(&network, None, &validation)?;
    eprintln!("validation loss of the base alone: {base_validation:.4} ({} records)", validation.iter().map(|b| b.sequences.len()).sum::<usize>());

    let limits = Limits { max_minutes: args.max_minutes, checkpoint_every: args.checkpoint_every, stop: Arc::clone(interrupted) };
    let mut progress = Progress::new();
    let inputs = Inputs { network: &network, corpus: &corpus, validation: &validation, targets: &targets };
    let outcome = train(&inputs, &settings, &run_dir, &limits, &mut progress)?;
    progress.finish();
    let final_validation = outcome.log.iter().rev().find_map(|r| r.validation_loss);
    let records: Vec<(String, usize)> = corpus.per_task().into_iter().map(|(task, n)| (task.to_string(), n)).collect();
    let command = std::env::args().map(|a| if a.contains(' ') { format!("'{a}'") } else { a }).collect::<Vec<_>>().join(" ");
    let report = Report { command: &command, log: &outcome.log, base_validation: Some(base_validation), final_validation, records: &records };
    write_adapter(&args.output, &outcome.adapter, network.shape(), &settings, &report).map_err(anyhow::Error::msg)?;
    summary(&outcome.log, base_validation, &args.output, &run_dir, outcome.ending);
    Ok(match outcome.ending {
        Ending::Interrupted => ExitCode::from(exit::INTERRUPTED),
        Ending::Finished | Ending::TimeLimit => ExitCode::SUCCESS,
    })
}

/// `DIR.run` beside the adapter folder `DIR`.
fn run_dir(output: &Path) -> PathBuf {
    let name = output.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "adapter".to_string());
    output.with_file_name(format!("{name}.run"))
}

fn base_name(name: &Option<String>, path: &Path) -> String {
    let built_in = name.as_deref().and_then(ibert_catalog::builtin_model).or_else(|| {
        let file = path.file_name()?.to_str()?;
        ibert_catalog::BUILTIN_MODELS.iter().find(|m| m.file.file_name == file)
    });
    match built_in {
        Some(model) => model.hub_name.to_string(),
        None => path.display().to_string(),
    }
}

fn parse_weights(pairs: &[String]) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut weights = BTreeMap::new();
    for pair in pairs {
        let Some((task, weight)) = pair.split_once('=') else { bail!("--task-weight `{pair}`: write TASK=WEIGHT, e.g. sql_to_ibis=3") };
        if !Task::ALL.iter().any(|t| t.as_str() == task) {
            bail!("--task-weight `{pair}`: `{task}` is not a task (sql_to_ibis, ibis_to_sql, code_completion, error_resolution, qa, documentation)");
        }
        let weight: f64 = weight
            .parse()
            .ok()
            .filter(|w: &f64| w.is_finite() && *w >= 0.0)
            .with_context(|| format!("--task-weight `{pair}`: the weight must be a number >= 0"))?;
        weights.insert(task.to_string(), weight);
    }
    Ok(weights)
}

/// `count` validation records spread over the tasks (the same ones every run), packed.
fn validation_batches(corpus: &Corpus, count: usize, budget: usize) -> Vec<ibert_train::network::Batch> {
    let mut by_task: BTreeMap<Task, Vec<usize>> = BTreeMap::new();
    for (index, example) in corpus.examples.iter().enumerate() {
        by_task.entry(example.task).or_default().push(index);
    }
    for indices in by_task.values_mut() {
        indices.sort_by_key(|i| split_mix(*i as u64));
    }
    let mut chosen = Vec::new();
    let mut round = 0;
    while chosen.len() < count && by_task.values().any(|v| v.len() > round) {
        chosen.extend(by_task.values().filter_map(|v| v.get(round)).take(count - chosen.len()));
        round += 1;
    }
    pack(corpus, &chosen, budget)
}

fn data_hash(paths: &[&Path]) -> anyhow::Result<String> {
    let hashes: Vec<String> = paths.iter().map(|p| ibert_fetch::sha256_file(p)).collect::<Result<_, _>>()?;
    use sha2::Digest;
    Ok(ibert_fetch::hex(&sha2::Sha256::digest(hashes.join("\n").as_bytes())))
}

fn describe(model: &LocalModel, network: &Network, corpus: &Corpus, settings: &Settings, run_dir: &Path) {
    use ibert_model::Engine;
    let per_task: Vec<String> = corpus.per_task().iter().map(|(task, n)| format!("{task} {n}")).collect();
    eprintln!("model     {}", model.describe());
    eprintln!(
        "records   {} ({}), {} answer tokens; {} over {} tokens left out",
        corpus.examples.len(),
        per_task.join(", "),
        corpus.answer_tokens(),
        corpus.too_long,
        settings.max_tokens
    );
    eprintln!(
        "adapter   rank {}, alpha {}, dropout {} on {} from block {}; frozen base {} (+{:.0} MB for the backward pass)",
        settings.rank,
        settings.alpha,
        settings.dropout,
        settings.targets.join(","),
        settings.first_block,
        settings.frozen,
        network.frozen_bytes() as f64 / 1e6
    );
    eprintln!(
        "schedule  {} steps of {} records, peak rate {}; run folder {}",
        settings.optimizer.total_steps,
        settings.batch_examples,
        settings.optimizer.learning_rate,
        run_dir.display()
    );
}

/// A progress bar on a terminal; a line every 30 seconds otherwise (a log file).
struct Progress {
    bar: Option<ProgressBar>,
    last_line: Instant,
    recent: Vec<f64>,
    validation: Option<f64>,
}

impl Progress {
    fn new() -> Progress {
        Progress { bar: None, last_line: Instant::now(), recent: Vec::new(), validation: None }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn begin(&mut self, total_steps: u64, resumed_from: Option<u64>) {
        if let Some(step) = resumed_from {
            eprintln!("resuming from the checkpoint of step {step}");
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total_steps);
            bar.set_style(
                ProgressStyle::with_template("{spinner} training [{bar:30}] {pos}/{len} steps {msg} (eta {eta})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_position(resumed_from.unwrap_or(0));
            bar.reset_eta();
            bar.enable_steady_tick(Duration::from_millis(200));
            self.bar = Some(bar);
        }
    }

    fn step(&mut self, record: &StepRecord) {
        self.recent.push(record.loss);
        if self.recent.len() > 20 {
            self.recent.remove(0);
        }
        if record.validation_loss.is_some() {
            self.validation = record.validation_loss;
        }
        let mean = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        let validation = self.validation.map(|v| format!(", validation {v:.3}")).unwrap_or_default();
        let message = format!("loss {mean:.3}{validation}, {:.0} tokens/s", record.tokens_per_second);
        match &self.bar {
            Some(bar) => {
                bar.set_position(record.step);
                bar.set_message(message);
            }
            None if self.last_line.elapsed() >= Duration::from_secs(30) || record.validation_loss.is_some() => {
                eprintln!("step {} {message}, {:.1} min", record.step, record.seconds / 60.0);
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    fn note(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

fn summary(log: &[StepRecord], base_validation: f64, output: &Path, run_dir: &Path, ending: Ending) {
    let Some(last) = log.last() else { return };
    let tokens: usize = log.iter().map(|r| r.tokens).sum();
    let mean = |records: &[StepRecord]| records.iter().map(|r| r.loss).sum::<f64>() / records.len().max(1) as f64;
    let validation = log.iter().rev().find_map(|r| r.validation_loss).map_or("-".to_string(), |v| format!("{v:.4}"));
    let rows = vec![
        vec!["steps".to_string(), last.step.to_string()],
        vec!["tokens".to_string(), tokens.to_string()],
        vec!["training time".to_string(), format!("{:.1} min ({:.0} tokens/s)", last.seconds / 60.0, tokens as f64 / last.seconds.max(1e-9))],
        vec![
            "training loss, first / last 10 steps".to_string(),
            format!("{:.4} / {:.4}", mean(&log[..log.len().min(10)]), mean(&log[log.len().saturating_sub(10)..])),
        ],
        vec!["validation loss, base / adapter".to_string(), format!("{base_validation:.4} / {validation}")],
    ];
    println!("{}", ui::table(&["", "value"], &rows));
    match ending {
        Ending::Finished => println!("wrote the adapter {} (with README.md, train_log.jsonl, loss.png)", output.display()),
        Ending::TimeLimit => {
            println!("stopped at the time limit; wrote the adapter so far to {}; run again with a larger --max-minutes to go on", output.display())
        }
        Ending::Interrupted => println!("interrupted; wrote the adapter so far to {}; the same command resumes from {}", output.display(), run_dir.display()),
    }
    println!("use it with: ibert eval --adapter {}", output.display());
}
