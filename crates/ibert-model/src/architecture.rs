//! One description of the decoder architectures iBERT runs, llama and qwen2, for every part that
//! needs one: the native backend's loader, the Hugging Face folder loader, the GGUF to folder
//! converter, LoRA adapters (PEFT and GGUF names) and training.
//!
//! The two differ in three ways: qwen2's query, key and value projections have biases; qwen2
//! rotates the two halves of each head, while llama GGUF files store each head's query and key
//! rows permuted so that adjacent pairs rotate (Hugging Face llama checkpoints rotate halves, so
//! those rows change order between the two forms); and the GGUF metadata keys start with the
//! architecture's name.

use crate::engine::EngineError;
use crate::gguf::Gguf;
use crate::native::ops::RopeStyle;

/// A decoder architecture, by its GGUF `general.architecture` and Hugging Face `model_type` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen2,
}

impl Architecture {
    pub const ALL: [Architecture; 2] = [Architecture::Llama, Architecture::Qwen2];

    pub fn from_name(name: &str) -> Option<Architecture> {
        Architecture::ALL.into_iter().find(|architecture| architecture.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
        }
    }

    /// Which values of a head rotate together in the GGUF form of the weights.
    pub fn gguf_rope_style(self) -> RopeStyle {
        match self {
            Architecture::Llama => RopeStyle::AdjacentPairs,
            Architecture::Qwen2 => RopeStyle::Halves,
        }
    }

    /// Whether GGUF files of this architecture store query and key rows in another order than
    /// Hugging Face checkpoints (see [`rows_to_hf_order`]).
    pub fn gguf_permutes_query_and_key(self) -> bool {
        self == Architecture::Llama
    }

    /// The Hugging Face class name, for `config.json`.
    pub fn hf_class(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
        }
    }
}

/// The seven matrices of a block that LoRA adapts, in the order the native backend multiplies
/// them: query, key and value together, the attention output, gate and up together, down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    Query,
    Key,
    Value,
    Output,
    Gate,
    Up,
    Down,
}

impl Projection {
    pub const ALL: [Projection; 7] =
        [Projection::Query, Projection::Key, Projection::Value, Projection::Output, Projection::Gate, Projection::Up, Projection::Down];

    /// The tensor's part of a GGUF name (`blk.N.attn_q.weight`).
    pub fn gguf(self) -> &'static str {
        match self {
            Projection::Query => "attn_q",
            Projection::Key => "attn_k",
            Projection::Value => "attn_v",
            Projection::Output => "attn_output",
            Projection::Gate => "ffn_gate",
            Projection::Up => "ffn_up",
            Projection::Down => "ffn_down",
        }
    }

    /// The module's name in a Hugging Face checkpoint, which PEFT's `target_modules` lists.
    pub fn module(self) -> &'static str {
        match self {
            Projection::Query => "q_proj",
            Projection::Key => "k_proj",
            Projection::Value => "v_proj",
            Projection::Output => "o_proj",
            Projection::Gate => "gate_proj",
            Projection::Up => "up_proj",
            Projection::Down => "down_proj",
        }
    }

    /// The module's path inside a block of a Hugging Face checkpoint (`self_attn.q_proj`).
    pub fn hf_path(self) -> String {
        let parent = if self.is_attention() { "self_attn" } else { "mlp" };
        format!("{parent}.{}", self.module())
    }

    pub fn from_module(name: &str) -> Option<Projection> {
        Projection::ALL.into_iter().find(|projection| projection.module() == name)
    }

    pub fn is_attention(self) -> bool {
        matches!(self, Projection::Query | Projection::Key | Projection::Value | Projection::Output)
    }
}

/// The shape of the network, from GGUF metadata or a Hugging Face `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub width: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rope_dims: usize,
    pub rope_base: f32,
    pub rope_style: RopeStyle,
    pub epsilon: f32,
    pub blocks: usize,
    /// The feed-forward width (the gate and up projections' rows).
    pub ffn: usize,
}

impl Shape {
    /// The architecture and shape a GGUF file's metadata describes.
    pub fn from_gguf(header: &Gguf) -> Result<(Architecture, Shape), EngineError> {
        let name = header.architecture().unwrap_or("unknown");
        let architecture = Architecture::from_name(name)
            .ok_or_else(|| EngineError::Architecture { path: header.path.display().to_string(), architecture: name.to_string() })?;
        let required = |key: &str| {
            header
                .architecture_integer(key)
                .map(|v| v as usize)
                .ok_or_else(|| EngineError::Load(format!("{}: the metadata has no {name}.{key}", header.path.display())))
        };
        let width = required("embedding_length")?;
        let heads = required("attention.head_count")?;
        let kv_heads = header.architecture_integer("attention.head_count_kv").map_or(heads, |v| v as usize);
        let float = |key: &str| header.architecture_float(key).map(|v| v as f32);
        let head_dim = width.checked_div(heads).unwrap_or(0);
        let shape = Shape {
            width,
            heads,
            kv_heads,
            head_dim,
            rope_dims: header.architecture_integer("rope.dimension_count").map_or(head_dim, |v| v as usize).min(head_dim),
            rope_base: float("rope.freq_base").unwrap_or(10_000.0),
            rope_style: architecture.gguf_rope_style(),
            epsilon: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            blocks: required("block_count")?,
            ffn: required("feed_forward_length")?,
        };
        Ok((architecture, shape))
    }

    /// `(rows, cols)` of a projection's matrix: its output and input widths.
    pub fn projection(&self, projection: Projection) -> (usize, usize) {
        let kv_width = self.kv_heads * self.head_dim;
        match projection {
            Projection::Query | Projection::Output => (self.width, self.width),
            Projection::Key | Projection::Value => (kv_width, self.width),
            Projection::Gate | Projection::Up => (self.ffn, self.width),
            Projection::Down => (self.width, self.ffn),
        }
    }

    /// The heads whose rows a projection's output holds, for the GGUF row order of llama files.
    pub fn heads_of(&self, projection: Projection) -> Option<usize> {
        match projection {
            Projection::Query => Some(self.heads),
            Projection::Key => Some(self.kv_heads),
            _ => None,
        }
    }
}

/// The GGUF name of a block's projection matrix: `blk.{block}.attn_q.weight`.
pub fn gguf_tensor(block: usize, projection: Projection) -> String {
    format!("blk.{block}.{}.weight", projection.gguf())
}

/// The tensors of a block besides its projections, by their GGUF and Hugging Face parts.
const BLOCK_NORMS: [(&str, &str); 2] = [("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm")];

/// The Hugging Face names of every tensor a checkpoint of `blocks` blocks must have (the output
/// matrix aside, which tied checkpoints leave out).
pub fn hf_required_tensors(blocks: usize) -> Vec<String> {
    let mut names = vec!["model.embed_tokens.weight".to_string(), "model.norm.weight".to_string()];
    for block in 0..blocks {
        names.extend(BLOCK_NORMS.iter().map(|(_, hf)| format!("model.layers.{block}.{hf}.weight")));
        names.extend(Projection::ALL.iter().map(|projection| format!("model.layers.{block}.{}.weight", projection.hf_path())));
    }
    names
}

/// The Hugging Face name of a GGUF tensor name (`blk.3.attn_q.weight` is
/// `model.layers.3.self_attn.q_proj.weight`).
pub fn hf_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.to_string());
    }
    let (block, part) = gguf.strip_prefix("blk.")?.split_once('.')?;
    let (part, kind) = part.rsplit_once('.')?;
    let hf = match BLOCK_NORMS.iter().find(|(gguf, _)| *gguf == part) {
        Some((_, hf)) => hf.to_string(),
        None => Projection::ALL.into_iter().find(|projection| projection.gguf() == part)?.hf_path(),
    };
    Some(format!("model.layers.{block}.{hf}.{kind}"))
}

/// Rows of a llama query or key matrix (`rows x cols`, `heads` heads) from the GGUF order to the
/// Hugging Face order: within a head, GGUF row `2i + h` is Hugging Face row `h * head_dim/2 + i`.
pub fn rows_to_hf_order(values: &[f32], cols: usize, heads: usize) -> Vec<f32> {
    reorder_rows(values, cols, heads, |i, half, half_rows| (2 * i + half, half * half_rows + i))
}

/// The inverse of [`rows_to_hf_order`].
pub fn rows_to_gguf_order(values: &[f32], cols: usize, heads: usize) -> Vec<f32> {
    reorder_rows(values, cols, heads, |i, half, half_rows| (half * half_rows + i, 2 * i + half))
}

/// Moves row `from` of each head to row `to`, where `(from, to) = place(i, half, head_dim/2)`.
fn reorder_rows(values: &[f32], cols: usize, heads: usize, place: impl Fn(usize, usize, usize) -> (usize, usize)) -> Vec<f32> {
    let rows = values.len() / cols.max(1);
    let head_rows = rows / heads.max(1);
    let half_rows = head_rows / 2;
    let mut out = vec![0.0; values.len()];
    for head in 0..heads {
        for half in 0..2 {
            for i in 0..half_rows {
                let (from, to) = place(i, half, half_rows);
                let (from, to) = ((head * head_rows + from) * cols, (head * head_rows + to) * cols);
                out[to..to + cols].copy_from_slice(&values[from..from + cols]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_map_to_hugging_face_names() {
        assert_eq!(hf_name("blk.12.attn_q.weight").as_deref(), Some("model.layers.12.self_attn.q_proj.weight"));
        assert_eq!(hf_name("blk.0.attn_k.bias").as_deref(), Some("model.layers.0.self_attn.k_proj.bias"));
        assert_eq!(hf_name("blk.1.ffn_norm.weight").as_deref(), Some("model.layers.1.post_attention_layernorm.weight"));
        assert_eq!(hf_name("blk.2.ffn_down.weight").as_deref(), Some("model.layers.2.mlp.down_proj.weight"));
        assert_eq!(hf_name("token_embd.weight").as_deref(), Some("model.embed_tokens.weight"));
        assert_eq!(hf_name("blk.0.unknown.weight"), None);
        assert_eq!(hf_required_tensors(1).len(), 2 + 2 + 7);
    }

    #[test]
    fn projections_are_named_as_peft_and_gguf_name_them() {
        assert_eq!(Projection::from_module("gate_proj"), Some(Projection::Gate));
        assert_eq!(Projection::Down.hf_path(), "mlp.down_proj");
        assert_eq!(gguf_tensor(3, Projection::Output), "blk.3.attn_output.weight");
        assert_eq!(Architecture::from_name("qwen2"), Some(Architecture::Qwen2));
        assert_eq!(Architecture::from_name("gpt2"), None);
    }

    #[test]
    fn the_llama_row_order_goes_there_and_back() {
        // Two heads of four rows, one column: within a head, GGUF rows (a, b, c, d) are the
        // Hugging Face rows (a, c, b, d).
        let gguf: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let hf = rows_to_hf_order(&gguf, 1, 2);
        assert_eq!(hf, [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        assert_eq!(rows_to_gguf_order(&hf, 1, 2), gguf);
        let wide: Vec<f32> = (0..24).map(|v| v as f32).collect();
        assert_eq!(rows_to_gguf_order(&rows_to_hf_order(&wide, 3, 2), 3, 2), wide);
    }
}
