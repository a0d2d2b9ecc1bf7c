//! Training throughput in the reference benchmark's setting: 4 sequences of 256 tokens a step,
//! the loss on every token, LoRA rank 16 on all seven projections, on whatever threads rayon
//! has (2 on the reference machine). Prints tokens/s over the timed steps and the process's
//! peak resident memory.
//!
//! `cargo bench -p ibert-train --bench train_step -- MODEL.gguf [quantized|dense] [STEPS]`

use std::time::Instant;

use ibert_model::Gguf;
use ibert_model::architecture::Projection;
use ibert_model::native::DecoderWeights;
use ibert_train::frozen::FrozenPrecision;
use ibert_train::network::{Batch, Dropout, Network, split_mix};
use ibert_train::optimizer::{AdamW, Hyperparameters, zeros_like};

const SEQUENCES: usize = 4;
const LENGTH: usize = 256;

fn peak_memory_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let Some(path) = args.first() else {
        eprintln!("usage: cargo bench -p ibert-train --bench train_step -- MODEL.gguf [quantized|dense] [STEPS]");
        return;
    };
    let precision = args.get(1).and_then(|p| FrozenPrecision::parse(p)).unwrap_or_default();
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    let header = Gguf::open(std::path::Path::new(path)).expect("a GGUF model");
    let weights = DecoderWeights::load(&header).expect("a model the native backend runs");
    let vocabulary = weights.vocabulary() as u64;
    let network = Network::new(weights, precision);
    let mut adapter = ibert_model::LoraAdapter::zeros(network.weights().architecture, network.shape(), 16, 32.0, &Projection::ALL, 0);
    for (i, (_, _, f)) in adapter.iter_mut().enumerate() {
        f.a.iter_mut().enumerate().for_each(|(j, v)| *v = ((split_mix((i as u64) << 32 ^ j as u64) >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02);
    }
    let settings = Hyperparameters::new(1e-4, 1, 100);
    let mut optimizer = AdamW::new(&adapter);
    let tokens: Vec<u32> = (0..SEQUENCES * LENGTH).map(|i| (split_mix(i as u64) % vocabulary) as u32).collect();
    let sequences = (0..SEQUENCES).map(|s| s * LENGTH..(s + 1) * LENGTH).collect();
    let targets = (0..SEQUENCES).flat_map(|s| (s * LENGTH..(s + 1) * LENGTH - 1).map(|row| (row, tokens[row + 1])).collect::<Vec<_>>()).collect::<Vec<_>>();
    let batch = Batch { tokens, sequences, targets };
    let mut gradients = zeros_like(&adapter);
    let mut timed = 0.0;
    for step in 0..=steps {
        let started = Instant::now();
        gradients = zeros_like(&gradients);
        let scale = 1.0 / batch.targets.len() as f32;
        let loss = network.train_step(&adapter, &batch, Some(Dropout { rate: 0.0, seed: 0 }), scale, &mut gradients).expect("a step");
        optimizer.update(&mut adapter, &gradients, step as u64 + 1, &settings);
        let seconds = started.elapsed().as_secs_f64();
        // The first step warms the caches and the allocator up; it is not timed.
        if step > 0 {
            timed += seconds;
        }
        eprintln!("step {step}: loss {:.3}, {:.2} s", loss / batch.targets.len() as f64, seconds);
    }
    let rate = (steps * SEQUENCES * LENGTH) as f64 / timed;
    println!(
        "{path}: {} frozen base, {} threads, {SEQUENCES} x {LENGTH} tokens a step: {rate:.1} tokens/s, peak memory {:.0} MB",
        precision.name(),
        rayon::current_num_threads(),
        peak_memory_mb()
    );
}
