//! AdamW over an adapter's factors, with linear warm-up then cosine decay of the learning rate
//! and clipping of the gradient's global norm.

use ibert_model::adapter::LoraAdapter;
use serde::{Deserialize, Serialize};

/// The optimizer's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hyperparameters {
    pub learning_rate: f32,
    pub warmup_steps: u64,
    pub total_steps: u64,
    /// The rate at the end of the cosine, as a fraction of the peak.
    pub final_fraction: f32,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// The largest global gradient norm; larger gradients are scaled down to it.
    pub clip_norm: f32,
}

impl Hyperparameters {
    /// AdamW's usual betas and epsilon, decay to 10% of the peak, no weight decay, clipping at
    /// norm 1, over `total_steps` after `warmup_steps`.
    pub fn new(learning_rate: f32, warmup_steps: u64, total_steps: u64) -> Hyperparameters {
        Hyperparameters {
            learning_rate,
            warmup_steps,
            total_steps,
            final_fraction: 0.1,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            clip_norm: 1.0,
        }
    }

    /// The learning rate of step `step` (counted from 1).
    pub fn rate(&self, step: u64) -> f32 {
        if step <= self.warmup_steps {
            return self.learning_rate * step as f32 / self.warmup_steps.max(1) as f32;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f32 / decay_steps as f32).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f32::consts::PI * progress).cos());
        self.learning_rate * (self.final_fraction + (1.0 - self.final_fraction) * cosine)
    }
}

/// The first and second moments, shaped as the adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamW {
    pub first: LoraAdapter,
    pub second: LoraAdapter,
}

/// A copy of `adapter` with every factor zero.
pub fn zeros_like(adapter: &LoraAdapter) -> LoraAdapter {
    let mut zeros = adapter.clone();
    for (_, _, factors) in zeros.iter_mut() {
        factors.a.fill(0.0);
        factors.b.fill(0.0);
    }
    zeros
}

/// Every value of the adapter's factors, in one fixed order.
fn values_mut(adapter: &mut LoraAdapter) -> impl Iterator<Item = &mut f32> {
    adapter.iter_mut().flat_map(|(_, _, f)| f.a.iter_mut().chain(f.b.iter_mut()))
}

fn values(adapter: &LoraAdapter) -> impl Iterator<Item = &f32> {
    adapter.iter().flat_map(|(_, _, f)| f.a.iter().chain(f.b.iter()))
}

/// The gradient's global L2 norm.
pub fn norm(gradients: &LoraAdapter) -> f32 {
    values(gradients).map(|g| f64::from(*g) * f64::from(*g)).sum::<f64>().sqrt() as f32
}

impl AdamW {
    pub fn new(adapter: &LoraAdapter) -> AdamW {
        AdamW { first: zeros_like(adapter), second: zeros_like(adapter) }
    }

    /// One update of `parameters` by `gradients` at step `step` (from 1): clips the gradient to
    /// the norm limit, then applies AdamW with decoupled weight decay. Returns the norm before
    /// clipping.
    pub fn update(&mut self, parameters: &mut LoraAdapter, gradients: &LoraAdapter, step: u64, settings: &Hyperparameters) -> f32 {
        let norm = norm(gradients);
        let clip = if norm > settings.clip_norm && norm > 0.0 { settings.clip_norm / norm } else { 1.0 };
        let rate = settings.rate(step);
        let (beta1, beta2) = (settings.beta1, settings.beta2);
        let correction1 = 1.0 - beta1.powi(step as i32);
        let correction2 = 1.0 - beta2.powi(step as i32);
        let moments = values_mut(&mut self.first).zip(values_mut(&mut self.second));
        for ((parameter, gradient), (m, v)) in values_mut(parameters).zip(values(gradients)).zip(moments) {
            let g = gradient * clip;
            *m = beta1 * *m + (1.0 - beta1) * g;
            *v = beta2 * *v + (1.0 - beta2) * g * g;
            let update = (*m / correction1) / ((*v / correction2).sqrt() + settings.epsilon);
            *parameter -= rate * (update + settings.weight_decay * *parameter);
        }
        norm
    }
}

#[cfg(test)]
mod tests {
    use ibert_model::architecture::{Architecture, Projection};

    use super::*;

    fn settings() -> Hyperparameters {
        Hyperparameters::new(0.1, 10, 110)
    }

    #[test]
    fn the_rate_warms_up_then_follows_a_cosine_down_to_its_floor() {
        let s = settings();
        assert!((s.rate(1) - 0.01).abs() < 1e-6 && (s.rate(10) - 0.1).abs() < 1e-6);
        assert!((s.rate(60) - 0.055).abs() < 1e-4, "{}", s.rate(60));
        assert!((s.rate(110) - 0.01).abs() < 1e-6 && (s.rate(500) - 0.01).abs() < 1e-6);
        assert!((11..110).all(|step| s.rate(step + 1) <= s.rate(step)));
    }

    #[test]
    fn adamw_minimizes_a_quadratic_and_clips_large_gradients() {
        let shape = crate::synthetic::shape(1);
        let mut parameters = LoraAdapter::zeros(Architecture::Qwen2, &shape, 2, 4.0, &[Projection::Up], 0);
        let target: Vec<f32> = crate::synthetic::wavy(parameters.parameters(), 5.0, 1.0);
        let mut optimizer = AdamW::new(&parameters);
        let mut s = settings();
        s.total_steps = 400;
        let distance = |p: &LoraAdapter| values(p).zip(&target).map(|(a, b)| (a - b).powi(2)).sum::<f32>();
        let start = distance(&parameters);
        for step in 1..=400 {
            // The gradient of |p - target|^2, scaled up so that clipping acts on every step.
            let mut gradients = parameters.clone();
            for (g, t) in values_mut(&mut gradients).zip(&target) {
                *g = 1000.0 * (*g - t);
            }
            let before = norm(&gradients);
            assert_eq!(optimizer.update(&mut parameters, &gradients, step, &s), before);
        }
        assert!(distance(&parameters) < 0.01 * start, "{} from {start}", distance(&parameters));
    }
}
