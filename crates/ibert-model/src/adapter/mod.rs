//! LoRA adapters: low-rank updates `W + (alpha / r) * B A` of a block's projections, kept apart
//! from the frozen base. Training writes them ([`peft`] folders, the format of Hugging Face's
//! PEFT, so the Python ecosystem reads ours and we read theirs; [`gguf_lora`] files in
//! llama.cpp's layout), and the native backend applies them unmerged at inference
//! (`y += s * B (A x)` per projection, see [`crate::native::NativeDecoder::with_adapter`]).
//!
//! In memory the factors follow PEFT's layout, `A` as `rank x input` and `B` as `output x rank`,
//! with the output rows in the order the base's GGUF file uses (for llama files the query and
//! key rows are permuted, see [`crate::architecture::rows_to_hf_order`]; the formats' readers and
//! writers convert).

pub mod gguf_lora;
pub mod peft;

use std::path::{Path, PathBuf};

use crate::architecture::{Architecture, Projection, Shape};

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path}: {detail}\nhint: {hint}")]
    Format { path: PathBuf, detail: String, hint: &'static str },
    #[error(
        "{path} does not fit this model: {detail}\nhint: pass the base model the adapter was trained on (its adapter_config.json names it), or run without the adapter (--no-adapter)"
    )]
    Mismatch { path: PathBuf, detail: String },
}

/// The low-rank factors of one projection: `A` (`rank x input`) and `B` (`output x rank`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraFactors {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub rank: usize,
    pub input: usize,
    pub output: usize,
}

impl LoraFactors {
    pub fn zeros(rank: usize, input: usize, output: usize) -> LoraFactors {
        LoraFactors { a: vec![0.0; rank * input], b: vec![0.0; output * rank], rank, input, output }
    }

    pub fn parameters(&self) -> usize {
        self.a.len() + self.b.len()
    }
}

/// What an adapter was made from, to refuse it on another base.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct BaseModel {
    /// `base_model_name_or_path`: a hub name, or the file the adapter was trained on.
    pub name: String,
    /// The sha256 of the base's file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A LoRA adapter for every block of one base network.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraAdapter {
    pub architecture: Architecture,
    pub rank: usize,
    pub alpha: f32,
    /// PEFT's `lora_dropout` (used in training only).
    pub dropout: f32,
    pub targets: Vec<Projection>,
    pub base: BaseModel,
    /// Per block, the factors of each adapted projection (`None` where a block or projection is
    /// not adapted).
    pub blocks: Vec<[Option<LoraFactors>; 7]>,
}

/// The adapter at `path`, for a network of `architecture` and `shape`: a PEFT folder, or a GGUF
/// LoRA file.
pub fn read_adapter(path: &Path, architecture: Architecture, shape: &Shape) -> Result<LoraAdapter, AdapterError> {
    let adapter = if path.is_dir() {
        peft::read_peft(path, architecture, shape)?
    } else if path.exists() {
        gguf_lora::read_gguf_lora(path, architecture, shape)?
    } else {
        return Err(AdapterError::Io { action: "reading", path: path.to_path_buf(), source: std::io::ErrorKind::NotFound.into() });
    };
    adapter.check_fits(architecture, shape).map_err(|detail| AdapterError::Mismatch { path: path.to_path_buf(), detail })?;
    Ok(adapter)
}

/// The index of a projection in a block's factors.
pub fn slot(projection: Projection) -> usize {
    Projection::ALL.iter().position(|p| *p == projection).expect("every projection has a slot")
}

impl LoraAdapter {
    /// An adapter with every factor zero, on `targets` of the blocks `first_block..` of `shape`.
    pub fn zeros(architecture: Architecture, shape: &Shape, rank: usize, alpha: f32, targets: &[Projection], first_block: usize) -> LoraAdapter {
        let blocks = (0..shape.blocks)
            .map(|block| {
                std::array::from_fn(|index| {
                    let projection = Projection::ALL[index];
                    (block >= first_block && targets.contains(&projection)).then(|| {
                        let (output, input) = shape.projection(projection);
                        LoraFactors::zeros(rank, input, output)
                    })
                })
            })
            .collect();
        LoraAdapter { architecture, rank, alpha, dropout: 0.0, targets: targets.to_vec(), base: BaseModel::default(), blocks }
    }

    /// `alpha / rank`, the factor of `B A` (PEFT's scaling without rsLoRA).
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }

    pub fn factors(&self, block: usize, projection: Projection) -> Option<&LoraFactors> {
        self.blocks.get(block).and_then(|factors| factors[slot(projection)].as_ref())
    }

    /// Every factor pair with its block and projection, in block order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, Projection, &LoraFactors)> {
        self.blocks.iter().enumerate().flat_map(|(block, factors)| {
            Projection::ALL.iter().zip(factors).filter_map(move |(projection, factors)| factors.as_ref().map(|f| (block, *projection, f)))
        })
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, Projection, &mut LoraFactors)> {
        self.blocks.iter_mut().enumerate().flat_map(|(block, factors)| {
            Projection::ALL.iter().zip(factors.iter_mut()).filter_map(move |(projection, factors)| factors.as_mut().map(|f| (block, *projection, f)))
        })
    }

    pub fn parameters(&self) -> usize {
        self.iter().map(|(_, _, factors)| factors.parameters()).sum()
    }

    /// The lowest block with an adapted projection (training needs no gradient below it).
    pub fn first_block(&self) -> usize {
        self.iter().map(|(block, _, _)| block).min().unwrap_or(self.blocks.len())
    }

    /// Refuses an adapter made for another network: the architecture, the number of blocks and
    /// every factor's shape must fit `shape`.
    pub fn check_fits(&self, architecture: Architecture, shape: &Shape) -> Result<(), String> {
        if self.architecture != architecture {
            return Err(format!("it adapts a {} model, this one is {}", self.architecture.name(), architecture.name()));
        }
        if self.blocks.len() != shape.blocks {
            return Err(format!("it has {} blocks, the model {}", self.blocks.len(), shape.blocks));
        }
        for (block, projection, factors) in self.iter() {
            let (output, input) = shape.projection(projection);
            if (factors.output, factors.input) != (output, input) || factors.a.len() != factors.rank * input || factors.b.len() != output * factors.rank {
                return Err(format!(
                    "block {block} {}: the factors are for a {}x{} matrix, the model's is {output}x{input}",
                    projection.module(),
                    factors.output,
                    factors.input
                ));
            }
        }
        Ok(())
    }
}
