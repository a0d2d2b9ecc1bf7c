use ibert_model::adapter::LoraAdapter;
use ibert_model::architecture::Projection;
use ibert_model::native::NativeDecoder;

use super::*;
use crate::optimizer::zeros_like;
use crate::synthetic::{self, VOCABULARY};

/// Two sequences packed into one batch, the loss on most of their rows.
fn batch() -> Batch {
    let tokens: Vec<u32> = (0..13).map(|i| (i * 7 + 3) % VOCABULARY as u32).collect();
    let sequences = vec![0..6, 6..13];
    let targets = sequences.iter().flat_map(|s| (s.start + 1..s.end - 1).map(|row| (row, tokens[row + 1]))).collect();
    Batch { tokens, sequences, targets }
}

fn gradients(network: &Network, adapter: &LoraAdapter, dropout: Option<Dropout>) -> (f64, LoraAdapter) {
    let mut gradients = zeros_like(adapter);
    let loss = network.train_step(adapter, &batch(), dropout, 1.0, &mut gradients).unwrap();
    (loss, gradients)
}

/// The loss with one factor value moved by `delta`.
fn moved_loss(network: &Network, adapter: &LoraAdapter, dropout: Option<Dropout>, at: (usize, usize, bool, usize), delta: f32) -> f64 {
    let mut moved = adapter.clone();
    let (block, slot_index, is_a, index) = at;
    let factors = moved.blocks[block][slot_index].as_mut().unwrap();
    if is_a {
        factors.a[index] += delta
    } else {
        factors.b[index] += delta
    }
    let mut ignored = zeros_like(adapter);
    network.train_step(&moved, &batch(), dropout, 1.0, &mut ignored).unwrap()
}

#[test]
fn gradients_match_finite_differences_through_every_projection_and_block() {
    let network = Network::new(synthetic::weights(2), FrozenPrecision::Dense);
    let adapter = synthetic::adapter(2, &Projection::ALL, 0);
    for dropout in [None, Some(Dropout { rate: 0.3, seed: 7 })] {
        let (_, analytic) = gradients(&network, &adapter, dropout);
        let mut checked = 0;
        for block in 0..2 {
            for projection in Projection::ALL {
                let index = slot(projection);
                let factors = analytic.blocks[block][index].as_ref().unwrap();
                for (is_a, values) in [(true, &factors.a), (false, &factors.b)] {
                    // The value with the largest gradient, and one in the middle.
                    let largest = (0..values.len()).max_by(|a, b| values[*a].abs().total_cmp(&values[*b].abs())).unwrap();
                    for at in [largest, values.len() / 2] {
                        let delta = 1e-2;
                        let plus = moved_loss(&network, &adapter, dropout, (block, index, is_a, at), delta);
                        let minus = moved_loss(&network, &adapter, dropout, (block, index, is_a, at), -delta);
                        let numeric = (plus - minus) / (2.0 * f64::from(delta));
                        let exact = f64::from(values[at]);
                        assert!(
                            (numeric - exact).abs() <= 0.03 * exact.abs().max(numeric.abs()) + 2e-3,
                            "block {block} {} {} [{at}]: finite difference {numeric}, backward {exact} (dropout {dropout:?})",
                            projection.module(),
                            if is_a { "A" } else { "B" }
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 7 * 2 * 2);
    }
}

#[test]
fn only_blocks_from_the_lowest_adapted_one_train_and_zero_b_gives_the_base() {
    let network = Network::new(synthetic::weights(3), FrozenPrecision::Dense);
    let mut adapter = synthetic::adapter(3, &[Projection::Query, Projection::Down], 1);
    let (_, analytic) = gradients(&network, &adapter, None);
    assert!(analytic.blocks[0].iter().all(Option::is_none));
    assert!(analytic.iter().all(|(_, _, f)| f.a.iter().chain(&f.b).any(|v| *v != 0.0)));
    // B = 0 (a fresh adapter): the base's loss, and gradients only for B.
    adapter.iter_mut().for_each(|(_, _, f)| f.b.fill(0.0));
    let (loss, analytic) = gradients(&network, &adapter, None);
    assert!((loss - network.loss(None, &batch()).unwrap()).abs() < 1e-6);
    assert!(analytic.iter().all(|(_, _, f)| f.a.iter().all(|v| *v == 0.0) && f.b.iter().any(|v| *v != 0.0)));
}

#[test]
fn packed_sequences_do_not_see_each_other() {
    let network = Network::new(synthetic::weights(2), FrozenPrecision::Dense);
    let adapter = synthetic::adapter(2, &Projection::ALL, 0);
    let packed = batch();
    let alone = |range: Range<usize>| {
        let tokens = packed.tokens[range.clone()].to_vec();
        let targets = packed.targets.iter().filter(|(row, _)| range.contains(row)).map(|(row, t)| (row - range.start, *t)).collect();
        network.loss(Some(&adapter), &Batch { sequences: std::iter::once(0..tokens.len()).collect(), tokens, targets }).unwrap()
    };
    let separate = alone(0..6) + alone(6..13);
    assert!((network.loss(Some(&adapter), &packed).unwrap() - separate).abs() < 1e-4);
}

#[test]
fn the_quantized_backward_gives_nearly_the_dense_gradients() {
    let adapter = synthetic::adapter(2, &Projection::ALL, 0);
    let (_, dense) = gradients(&Network::new(synthetic::weights(2), FrozenPrecision::Dense), &adapter, None);
    let (_, quantized) = gradients(&Network::new(synthetic::weights(2), FrozenPrecision::Quantized), &adapter, None);
    for ((block, projection, d), (_, _, q)) in dense.iter().zip(quantized.iter()) {
        let (d, q): (Vec<f32>, Vec<f32>) = (d.a.iter().chain(&d.b).copied().collect(), q.a.iter().chain(&q.b).copied().collect());
        let dot: f32 = d.iter().zip(&q).map(|(a, b)| a * b).sum();
        let cosine = dot / (d.iter().map(|v| v * v).sum::<f32>().sqrt() * q.iter().map(|v| v * v).sum::<f32>().sqrt());
        assert!(cosine > 0.99, "block {block} {}: cosine {cosine}", projection.module());
    }
}

#[test]
fn inference_with_the_adapter_gives_the_training_forward_logits() {
    let adapter = synthetic::adapter(2, &Projection::ALL, 0);
    let network = Network::new(synthetic::weights(2), FrozenPrecision::Quantized);
    let mut decoder = NativeDecoder::new(synthetic::weights(2)).with_adapter(&adapter).unwrap();
    let tokens = batch().tokens;
    let trained = network.last_logits(Some(&adapter), &tokens).unwrap();
    let served = decoder.logits_from_start(&tokens).unwrap();
    // The same kernels for the base; the adapter's products are summed in another order.
    let largest = served.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = trained.iter().zip(&served).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst <= 1e-4 * largest.max(1.0), "logits differ by {worst} (largest {largest})");
    // And the test can tell: without the adapter they differ.
    let base = network.last_logits(None, &tokens).unwrap();
    assert!(base.iter().zip(&served).any(|(a, b)| (a - b).abs() > 100.0 * worst.max(1e-6)));
}
