//! Near duplicates by similarity: two texts of one group (callers group texts that differ only in
//! their literals) whose token trigrams overlap by at least a threshold (Jaccard similarity),
//! estimated with MinHash signatures and found through locality-sensitive hashing bands, so that
//! each new text is compared with the few earlier ones that share a band rather than with all of
//! them. Deterministic: the hash functions are fixed.

use std::collections::{HashMap, HashSet};

use crate::stable_hash::fnv1a;

/// Hash functions in a signature.
const HASHES: usize = 64;
/// Bands of `HASHES / BANDS` values each: a pair of similarity 0.9 shares a band with
/// probability above 0.999, a pair of 0.5 with about 0.64 (and is then told apart by its
/// estimate).
const BANDS: usize = 16;
const ROWS: usize = HASHES / BANDS;
/// The most recent texts of a bucket that a new text is compared with: a bucket of a very
/// common shape would otherwise make each insert slower than the last.
const COMPARED_PER_BUCKET: usize = 32;

type Signature = [u64; HASHES];

/// The texts seen so far, by signature and band.
pub struct NearDuplicates {
    threshold: f64,
    signatures: Vec<Signature>,
    buckets: Vec<HashMap<u64, Vec<usize>>>,
}

impl NearDuplicates {
    /// `threshold`: the estimated Jaccard similarity of token trigrams from which a text is a
    /// near duplicate (0.9: one literal changed in a query of some sixty tokens).
    pub fn new(threshold: f64) -> Self {
        NearDuplicates { threshold, signatures: Vec::new(), buckets: vec![HashMap::new(); BANDS] }
    }

    /// Whether `tokens` is a near duplicate of a text of the same `group` inserted before; when
    /// it is not, it is inserted.
    pub fn insert(&mut self, group: u64, tokens: &[&str]) -> bool {
        let signature = signature(tokens);
        let mut checked = HashSet::new();
        for (band, buckets) in self.buckets.iter().enumerate() {
            let Some(earlier) = buckets.get(&band_key(&signature, band, group)) else { continue };
            for &index in earlier.iter().rev().take(COMPARED_PER_BUCKET) {
                if !checked.insert(index) {
                    continue;
                }
                if similarity(&signature, &self.signatures[index]) >= self.threshold {
                    return true;
                }
            }
        }
        let index = self.signatures.len();
        for (band, buckets) in self.buckets.iter_mut().enumerate() {
            buckets.entry(band_key(&signature, band, group)).or_default().push(index);
        }
        self.signatures.push(signature);
        false
    }
}

/// The estimated Jaccard similarity of two signatures: the share of equal minimums.
fn similarity(a: &Signature, b: &Signature) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / HASHES as f64
}

fn signature(tokens: &[&str]) -> Signature {
    let mut signature = [u64::MAX; HASHES];
    let width = tokens.len().clamp(1, 3);
    for shingle in tokens.windows(width).map(|window| fnv1a(window.join(" ").as_bytes())).chain(tokens.is_empty().then_some(0)) {
        for (index, minimum) in signature.iter_mut().enumerate() {
            *minimum = (*minimum).min(mix(shingle ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        }
    }
    signature
}

fn band_key(signature: &Signature, band: usize, group: u64) -> u64 {
    let mut hash = mix(group ^ 0xcbf2_9ce4_8422_2325);
    for value in &signature[band * ROWS..(band + 1) * ROWS] {
        hash = (hash ^ value).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// SplitMix64's finalizer: a fixed, well-mixing function of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    #[test]
    fn a_long_text_with_one_token_changed_is_a_near_duplicate_and_a_different_one_is_not() {
        let base: String = (0..80).map(|i| format!("w{i} ")).collect();
        let changed = base.replace("w40 ", "other ");
        let different: String = (0..80).map(|i| format!("v{} ", i * 7)).collect();
        let mut seen = NearDuplicates::new(0.9);
        assert!(!seen.insert(0, &words(&base)));
        assert!(seen.insert(0, &words(&changed)), "one token in 80 changed");
        assert!(!seen.insert(0, &words(&different)));
        assert!(seen.insert(0, &words(&base)), "an exact copy");
        assert!(!seen.insert(1, &words(&base)), "another group");
    }

    #[test]
    fn short_texts_differing_in_a_literal_are_kept() {
        let mut seen = NearDuplicates::new(0.9);
        assert!(!seen.insert(0, &words("select a from t where x > 5")));
        assert!(!seen.insert(0, &words("select a from t where x > 6")));
        assert!(!seen.insert(0, &[]));
        assert!(seen.insert(0, &[]));
    }

    #[test]
    fn the_estimate_follows_the_true_similarity() {
        // Two texts sharing 50 of 100 trigrams on each side: Jaccard 1/3.
        let a: Vec<String> = (0..102).map(|i| format!("t{i}")).collect();
        let b: Vec<String> = (50..152).map(|i| format!("t{i}")).collect();
        let (a, b): (Vec<&str>, Vec<&str>) = (a.iter().map(String::as_str).collect(), b.iter().map(String::as_str).collect());
        let estimate = similarity(&signature(&a), &signature(&b));
        assert!((estimate - 0.34).abs() < 0.15, "{estimate}");
    }
}
