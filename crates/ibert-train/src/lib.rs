//! LoRA fine-tuning on the CPU over the native backend's frozen weights.
//!
//! * [`network`]: the base network with an adapter, forward and backward over packed
//!   micro-batches, on [`frozen`] matrices, [`attention`] and [`dense`] products.
//! * [`data`]: the split files' records as token ids with the loss on the answers, the task
//!   mixture and packing.
//! * [`optimizer`]: AdamW with warm-up, cosine decay and clipping.
//! * [`run`]: the loop, with [`checkpoint`]s to resume from and the step log; [`output`] writes
//!   the finished adapter with its card, and [`plot`] draws its loss curves.

pub mod attention;
pub mod checkpoint;
pub mod data;
pub mod dense;
pub mod frozen;
pub mod network;
pub mod optimizer;
pub mod output;
pub mod plot;
pub mod run;
#[cfg(test)]
pub(crate) mod synthetic;
