//! LoRA fine-tuning (in progress).

pub mod attention;
pub mod dense;
