//! Quantized weight matrices (ggml's Q4_0, Q4_1 and Q8_0 blocks of 32) and their dot products
//! with activations quantized to 8 bits per block, the way llama.cpp computes them.
//!
//! The weights are repacked at load: block scales become `f32` arrays beside the packed quants,
//! so the kernels read no half floats. The AVX2 kernels are chosen at run time
//! (`is_x86_feature_detected!`), so one binary runs everywhere and is fast where it can be;
//! the portable kernels compute the same sums.

use std::sync::OnceLock;

use half::f16;

/// Values per quantization block, for every block type here.
pub const BLOCK: usize = 32;

/// The ggml type ids this module reads.
pub const GGML_F32: u32 = 0;
pub const GGML_F16: u32 = 1;
pub const GGML_Q4_0: u32 = 2;
pub const GGML_Q4_1: u32 = 3;
pub const GGML_Q8_0: u32 = 8;

/// How a matrix stores its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantKind {
    /// 4-bit quants `q` in 0..16, value `(q - 8) * scale`.
    Q4_0,
    /// 4-bit quants, value `q * scale + min`.
    Q4_1,
    /// 8-bit signed quants, value `q * scale`.
    Q8_0,
}

impl QuantKind {
    pub fn from_ggml(kind: u32) -> Option<QuantKind> {
        match kind {
            GGML_Q4_0 => Some(QuantKind::Q4_0),
            GGML_Q4_1 => Some(QuantKind::Q4_1),
            GGML_Q8_0 => Some(QuantKind::Q8_0),
            _ => None,
        }
    }

    /// Bytes of one block in the file.
    pub fn block_bytes(self) -> usize {
        match self {
            QuantKind::Q4_0 => 18,
            QuantKind::Q4_1 => 20,
            QuantKind::Q8_0 => 34,
        }
    }

    /// Bytes of packed quants per block after repacking.
    fn quant_bytes(self) -> usize {
        match self {
            QuantKind::Q4_0 | QuantKind::Q4_1 => 16,
            QuantKind::Q8_0 => 32,
        }
    }
}

/// A row-major quantized matrix: `rows` rows of `cols` values, `cols` a multiple of [`BLOCK`].
#[derive(Debug, Clone)]
pub struct QMatrix {
    pub kind: QuantKind,
    pub rows: usize,
    pub cols: usize,
    scales: Vec<f32>,
    /// Q4_1 only: the per-block minimum.
    mins: Vec<f32>,
    quants: Vec<u8>,
}

impl QMatrix {
    /// Repacks `rows x cols` values stored as ggml blocks in `data`.
    pub fn from_ggml(kind: QuantKind, rows: usize, cols: usize, data: &[u8]) -> Result<QMatrix, String> {
        if !cols.is_multiple_of(BLOCK) {
            return Err(format!("a row of {cols} values is not a whole number of {BLOCK}-value blocks"));
        }
        let blocks = rows * cols / BLOCK;
        let size = blocks * kind.block_bytes();
        if data.len() < size {
            return Err(format!("{} bytes of data where {size} are needed", data.len()));
        }
        let mut matrix =
            QMatrix { kind, rows, cols, scales: Vec::with_capacity(blocks), mins: Vec::new(), quants: Vec::with_capacity(blocks * kind.quant_bytes()) };
        for block in data[..size].chunks_exact(kind.block_bytes()) {
            let half = |at: usize| f16::from_le_bytes([block[at], block[at + 1]]).to_f32();
            matrix.scales.push(half(0));
            match kind {
                QuantKind::Q4_0 => matrix.quants.extend_from_slice(&block[2..18]),
                QuantKind::Q4_1 => {
                    matrix.mins.push(half(2));
                    matrix.quants.extend_from_slice(&block[4..20]);
                }
                QuantKind::Q8_0 => matrix.quants.extend_from_slice(&block[2..34]),
            }
        }
        Ok(matrix)
    }

    /// Quantizes `rows x cols` floats to Q8_0 (the `load_in_8bit` path for full-precision
    /// checkpoints).
    pub fn quantize_q8_0(rows: usize, cols: usize, values: &[f32]) -> Result<QMatrix, String> {
        if !cols.is_multiple_of(BLOCK) || values.len() != rows * cols {
            return Err(format!("{} values do not make {rows} rows of {cols} in {BLOCK}-value blocks", values.len()));
        }
        let blocks = values.len() / BLOCK;
        let mut matrix =
            QMatrix { kind: QuantKind::Q8_0, rows, cols, scales: Vec::with_capacity(blocks), mins: Vec::new(), quants: Vec::with_capacity(values.len()) };
        for block in values.chunks_exact(BLOCK) {
            let scale = block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            matrix.scales.push(scale);
            matrix.quants.extend(block.iter().map(|v| (v * inverse).round() as i8 as u8));
        }
        Ok(matrix)
    }

    /// Row `row` as floats (the embedding lookup).
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let per_row = self.cols / BLOCK;
        for (block, values) in out[..self.cols].chunks_exact_mut(BLOCK).enumerate() {
            let index = row * per_row + block;
            let scale = self.scales[index];
            let quants = &self.quants[index * self.kind.quant_bytes()..(index + 1) * self.kind.quant_bytes()];
            match self.kind {
                QuantKind::Q8_0 => {
                    for (value, q) in values.iter_mut().zip(quants) {
                        *value = f32::from(*q as i8) * scale;
                    }
                }
                QuantKind::Q4_0 | QuantKind::Q4_1 => {
                    let (offset, min) = if self.kind == QuantKind::Q4_0 { (8.0, 0.0) } else { (0.0, self.mins[index]) };
                    for (j, q) in quants.iter().enumerate() {
                        values[j] = (f32::from(q & 0x0f) - offset) * scale + min;
                        values[j + 16] = (f32::from(q >> 4) - offset) * scale + min;
                    }
                }
            }
        }
    }

    /// The dot products of row `row` with activation rows `first..first + 4` of `x`: the row's
    /// quants are unpacked once for the four (the prompt's batched product).
    pub fn dot4(&self, row: usize, x: &QActivations, first: usize) -> [f32; 4] {
        let blocks = self.cols / BLOCK;
        let w = row * blocks;
        let quant_bytes = self.kind.quant_bytes();
        let row_quants = &self.quants[w * quant_bytes..(w + blocks) * quant_bytes];
        let scales = &self.scales[w..w + blocks];
        let a = |k: usize| (first + k) * blocks;
        let x_quants: [&[i8]; 4] = std::array::from_fn(|k| &x.quants[a(k) * BLOCK..(a(k) + blocks) * BLOCK]);
        let x_scales: [&[f32]; 4] = std::array::from_fn(|k| &x.scales[a(k)..a(k) + blocks]);
        let mut products = match self.kind {
            QuantKind::Q8_0 => (kernels().q8x4)(row_quants, scales, x_quants, x_scales),
            QuantKind::Q4_0 | QuantKind::Q4_1 => (kernels().q4x4)(row_quants, scales, x_quants, x_scales),
        };
        for (k, product) in products.iter_mut().enumerate() {
            *product += self.offset_term(w, blocks, &x.sums[a(k)..a(k) + blocks]);
        }
        products
    }

    /// The dot product of row `row` with activation row `token` of `x`.
    pub fn dot(&self, row: usize, x: &QActivations, token: usize) -> f32 {
        let blocks = self.cols / BLOCK;
        let (w, a) = (row * blocks, token * blocks);
        let quant_bytes = self.kind.quant_bytes();
        let row_quants = &self.quants[w * quant_bytes..(w + blocks) * quant_bytes];
        let scales = &self.scales[w..w + blocks];
        let x_quants = &x.quants[a * BLOCK..(a + blocks) * BLOCK];
        let (x_scales, x_sums) = (&x.scales[a..a + blocks], &x.sums[a..a + blocks]);
        let products = match self.kind {
            QuantKind::Q8_0 => kernels().q8(row_quants, scales, x_quants, x_scales),
            QuantKind::Q4_0 | QuantKind::Q4_1 => kernels().q4(row_quants, scales, x_quants, x_scales),
        };
        products + self.offset_term(w, blocks, x_sums)
    }

    /// What the 4-bit offsets add to the integer products of row blocks `w..w + blocks`, from the
    /// activation blocks' sums: Q4_0's value `(q - 8) * d` adds `-8 * d * sum`, Q4_1's
    /// `q * d + m` adds `m * sum`.
    fn offset_term(&self, w: usize, blocks: usize, x_sums: &[f32]) -> f32 {
        match self.kind {
            QuantKind::Q8_0 => 0.0,
            QuantKind::Q4_0 => -8.0 * self.scales[w..w + blocks].iter().zip(x_sums).map(|(d, s)| d * s).sum::<f32>(),
            QuantKind::Q4_1 => self.mins[w..w + blocks].iter().zip(x_sums).map(|(m, s)| m * s).sum::<f32>(),
        }
    }
}

/// Activation rows quantized to 8 bits per 32-value block (llama.cpp's Q8_1): a scale per block,
/// the block's sum (scale times the sum of its quants), and the quants.
#[derive(Debug, Default)]
pub struct QActivations {
    scales: Vec<f32>,
    sums: Vec<f32>,
    quants: Vec<i8>,
}

impl QActivations {
    /// Quantizes rows of `cols` values each, reusing this buffer's memory.
    pub fn quantize(&mut self, values: &[f32], cols: usize) {
        debug_assert!(cols.is_multiple_of(BLOCK) && values.len().is_multiple_of(cols));
        let blocks = values.len() / BLOCK;
        self.scales.resize(blocks, 0.0);
        self.sums.resize(blocks, 0.0);
        self.quants.resize(values.len(), 0);
        type BlockOut<'a> = ((&'a [f32], &'a mut [i8]), (&'a mut f32, &'a mut f32));
        let quantize_block = |((block, quants), (scale, sum)): BlockOut| {
            let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            *scale = max / 127.0;
            let inverse = if *scale > 0.0 { 1.0 / *scale } else { 0.0 };
            let mut total = 0i32;
            for (value, q) in block.iter().zip(quants.iter_mut()) {
                *q = (value * inverse).round() as i8;
                total += i32::from(*q);
            }
            *sum = *scale * total as f32;
        };
        // A prompt's many rows are quantized in parallel; one token's row is not worth the threads.
        if values.len() >= 16 * cols && values.len() >= 8192 {
            use rayon::prelude::*;
            values
                .par_chunks_exact(BLOCK)
                .zip(self.quants.par_chunks_exact_mut(BLOCK))
                .zip(self.scales.par_iter_mut().zip(self.sums.par_iter_mut()))
                .for_each(quantize_block);
        } else {
            let blocks = values.chunks_exact(BLOCK).zip(self.quants.chunks_exact_mut(BLOCK));
            blocks.zip(self.scales.iter_mut().zip(self.sums.iter_mut())).for_each(quantize_block);
        }
    }
}

/// A block kernel: weight quants, weight scales, activation quants, activation scales.
type BlockKernel = fn(&[u8], &[f32], &[i8], &[f32]) -> f32;
/// The same for four activation rows at once.
type BlockKernel4 = fn(&[u8], &[f32], [&[i8]; 4], [&[f32]; 4]) -> [f32; 4];

/// The block kernels: sum over blocks of `weight scale * activation scale * (integer dot)`.
struct Kernels {
    name: &'static str,
    q4: BlockKernel,
    q8: BlockKernel,
    q4x4: BlockKernel4,
    q8x4: BlockKernel4,
}

impl Kernels {
    fn q4(&self, quants: &[u8], scales: &[f32], x: &[i8], x_scales: &[f32]) -> f32 {
        (self.q4)(quants, scales, x, x_scales)
    }

    fn q8(&self, quants: &[u8], scales: &[f32], x: &[i8], x_scales: &[f32]) -> f32 {
        (self.q8)(quants, scales, x, x_scales)
    }
}

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if vector_units_allowed() {
            return Kernels { name: "AVX2", q4: avx2::q4_safe, q8: avx2::q8_safe, q4x4: avx2::q4x4_safe, q8x4: avx2::q8x4_safe };
        }
        Kernels { name: "portable", q4: portable::q4, q8: portable::q8, q4x4: portable::q4x4, q8x4: portable::q8x4 }
    })
}

/// Whether the AVX2 kernels may run: the CPU has AVX2 and FMA, and `IBERT_NATIVE_KERNELS` is not
/// `portable` (which forces the portable kernels, to compare or to debug).
pub(crate) fn vector_units_allowed() -> bool {
    if std::env::var("IBERT_NATIVE_KERNELS").is_ok_and(|v| v == "portable") {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// The kernels in use on this CPU: `AVX2` or `portable` (for `describe`).
pub fn kernel_name() -> &'static str {
    kernels().name
}

mod portable {
    use super::BLOCK;

    /// 4-bit quants (unsigned, low nibbles first) against 8-bit activations.
    pub fn q4(quants: &[u8], scales: &[f32], x: &[i8], x_scales: &[f32]) -> f32 {
        let mut total = 0.0;
        for (block, (scale, x_scale)) in scales.iter().zip(x_scales).enumerate() {
            let q = &quants[block * 16..block * 16 + 16];
            let a = &x[block * BLOCK..block * BLOCK + BLOCK];
            let mut sum = 0i32;
            for j in 0..16 {
                sum += i32::from(q[j] & 0x0f) * i32::from(a[j]) + i32::from(q[j] >> 4) * i32::from(a[j + 16]);
            }
            total += scale * x_scale * sum as f32;
        }
        total
    }

    pub fn q4x4(quants: &[u8], scales: &[f32], x: [&[i8]; 4], x_scales: [&[f32]; 4]) -> [f32; 4] {
        std::array::from_fn(|k| q4(quants, scales, x[k], x_scales[k]))
    }

    pub fn q8x4(quants: &[u8], scales: &[f32], x: [&[i8]; 4], x_scales: [&[f32]; 4]) -> [f32; 4] {
        std::array::from_fn(|k| q8(quants, scales, x[k], x_scales[k]))
    }

    pub fn q8(quants: &[u8], scales: &[f32], x: &[i8], x_scales: &[f32]) -> f32 {
        let mut total = 0.0;
        for (block, (scale, x_scale)) in scales.iter().zip(x_scales).enumerate() {
            let q = &quants[block * BLOCK..block * BLOCK + BLOCK];
            let a = &x[block * BLOCK..block * BLOCK + BLOCK];
            let sum: i32 = q.iter().zip(a).map(|(w, v)| i32::from(*w as i8) * i32::from(*v)).sum();
            total += scale * x_scale * sum as f32;
        }
        total
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use std::arch::x86_64::*;

    use super::BLOCK;

    pub fn q4_safe(quants: &[u8], scales: &[f32], x: &[i8], x_scales: &[f32]) -> f32 {
        assert!(quants.len() >= scales.len() * 16 && x.len() >= scales.len() * BLOCK && x_scales.len() >= scales.len());
        // SAFETY: chosen only when AVX2 and FMA were detected; the lengths are checked above.
        unsafe { q4(quants, scales, x, x_scales) }
    }

    pub fn q8_safe(quants: &[u8], scales: &[f32], x: &[i8], x_scales: &[f32]) -> f32 {
        assert!(quants.len() >= scales.len() * BLOCK && x.len() >= scales.len() * BLOCK && x_scales.len() >= scales.len());
        // SAFETY: as above.
        unsafe { q8(quants, scales, x, x_scales) }
    }

    pub fn q4x4_safe(quants: &[u8], scales: &[f32], x: [&[i8]; 4], x_scales: [&[f32]; 4]) -> [f32; 4] {
        let blocks = scales.len();
        assert!(quants.len() >= blocks * 16 && x.iter().all(|r| r.len() >= blocks * BLOCK) && x_scales.iter().all(|s| s.len() >= blocks));
        // SAFETY: chosen only when AVX2 and FMA were detected; the lengths are checked above.
        unsafe { q4x4(quants, scales, x, x_scales) }
    }

    pub fn q8x4_safe(quants: &[u8], scales: &[f32], x: [&[i8]; 4], x_scales: [&[f32]; 4]) -> [f32; 4] {
        let blocks = scales.len();
        assert!(quants.len() >= blocks * BLOCK && x.iter().all(|r| r.len() >= blocks * BLOCK) && x_scales.iter().all(|s| s.len() >= blocks));
        // SAFETY: as above.
        unsafe { q8x4(quants, scales, x, x_scales) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn q4x4(quants: &[u8], scales: &[f32], x: [&[i8]; 4], x_scales: [&[f32]; 4]) -> [f32; 4] {
        let low_nibbles = _mm_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let mut totals = [_mm256_setzero_ps(); 4];
        for block in 0..scales.len() {
            // SAFETY: in bounds by the caller's length checks; unaligned loads.
            let packed = unsafe { _mm_loadu_si128(quants.as_ptr().add(block * 16).cast()) };
            let low = _mm_and_si128(packed, low_nibbles);
            let high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles);
            let weights = _mm256_set_m128i(high, low);
            for k in 0..4 {
                // SAFETY: as above.
                let activations = unsafe { _mm256_loadu_si256(x[k].as_ptr().add(block * BLOCK).cast()) };
                let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(weights, activations), ones));
                totals[k] = _mm256_fmadd_ps(sums, _mm256_set1_ps(scales[block] * x_scales[k][block]), totals[k]);
            }
        }
        totals.map(|total| horizontal_sum(total))
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn q8x4(quants: &[u8], scales: &[f32], x: [&[i8]; 4], x_scales: [&[f32]; 4]) -> [f32; 4] {
        let ones = _mm256_set1_epi16(1);
        let mut totals = [_mm256_setzero_ps(); 4];
        for block in 0..scales.len() {
            // SAFETY: in bounds by the caller's length checks; unaligned loads.
            let weights = unsafe { _mm256_loadu_si256(quants.as_ptr().add(block * BLOCK).cast()) };
            let magnitudes = _mm256_sign_epi8(weights, weights);
            for k in 0..4 {
                // SAFETY: as above.
                let activations = unsafe { _mm256_loadu_si256(x[k].as_ptr().add(block * BLOCK).cast()) };
                let pairs = _mm256_maddubs_epi16(magnitudes, _mm256_sign_epi8(activations, weights));
                let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
                totals[k] = _mm256_fmadd_ps(sums, _mm256_set1_ps(scales[block] * x_scales[k][block]), totals[k]);
            }
        }
        totals.map(|total| horizontal_sum(total))
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn q4(quants: &[u8], scales: &[f32], x: &[i8], x_scales: &[f32]) -> f32 {
        let low_nibbles = _mm_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let mut total = _mm256_setzero_ps();
        for block in 0..scales.len() {
            // SAFETY: in bounds by the caller's length checks; unaligned loads.
            let (packed, activations) =
                unsafe { (_mm_loadu_si128(quants.as_ptr().add(block * 16).cast()), _mm256_loadu_si256(x.as_ptr().add(block * BLOCK).cast())) };
            let low = _mm_and_si128(packed, low_nibbles);
            let high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles);
            let weights = _mm256_set_m128i(high, low);
            let pairs = _mm256_maddubs_epi16(weights, activations);
            let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
            total = _mm256_fmadd_ps(sums, _mm256_set1_ps(scales[block] * x_scales[block]), total);
        }
        horizontal_sum(total)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn q8(quants: &[u8], scales: &[f32], x: &[i8], x_scales: &[f32]) -> f32 {
        let ones = _mm256_set1_epi16(1);
        let mut total = _mm256_setzero_ps();
        for block in 0..scales.len() {
            // SAFETY: in bounds by the caller's length checks; unaligned loads.
            let (weights, activations) =
                unsafe { (_mm256_loadu_si256(quants.as_ptr().add(block * BLOCK).cast()), _mm256_loadu_si256(x.as_ptr().add(block * BLOCK).cast())) };
            // maddubs multiplies unsigned by signed: move the weights' signs onto the activations.
            let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(weights, weights), _mm256_sign_epi8(activations, weights));
            let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
            total = _mm256_fmadd_ps(sums, _mm256_set1_ps(scales[block] * x_scales[block]), total);
        }
        horizontal_sum(total)
    }

    /// The sum of the eight lanes.
    #[target_feature(enable = "avx2,fma")]
    pub(in crate::native) fn horizontal_sum(v: __m256) -> f32 {
        let halves = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ggml blocks of the given kind holding pseudo-random values, and those values decoded.
    fn random_matrix(kind: QuantKind, rows: usize, cols: usize, seed: u32) -> Vec<u8> {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as u8
        };
        let mut data = Vec::new();
        for _ in 0..rows * cols / BLOCK {
            data.extend_from_slice(&f16::from_f32(0.01 + f32::from(next()) / 5000.0).to_le_bytes());
            if kind == QuantKind::Q4_1 {
                data.extend_from_slice(&f16::from_f32(-0.05 + f32::from(next()) / 4000.0).to_le_bytes());
            }
            for _ in 0..kind.quant_bytes() {
                let byte = next();
                // Q8_0 quants stay in -127..=127, as ggml writes them.
                data.push(if kind == QuantKind::Q8_0 && byte == 0x80 { 0x81 } else { byte });
            }
        }
        data
    }

    #[test]
    fn every_kernel_matches_the_dot_product_of_the_decoded_values() {
        let (rows, cols) = (3, 128);
        let activations: Vec<f32> = (0..2 * cols).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
        let mut x = QActivations::default();
        x.quantize(&activations, cols);
        for kind in [QuantKind::Q4_0, QuantKind::Q4_1, QuantKind::Q8_0] {
            let matrix = QMatrix::from_ggml(kind, rows, cols, &random_matrix(kind, rows, cols, 7)).unwrap();
            for row in 0..rows {
                let mut weights = vec![0.0; cols];
                matrix.dequantize_row(row, &mut weights);
                for token in 0..2 {
                    let exact: f32 = weights.iter().zip(&activations[token * cols..]).map(|(w, a)| w * a).sum();
                    let quantized = matrix.dot(row, &x, token);
                    let scale = weights.iter().zip(&activations[token * cols..]).map(|(w, a)| (w * a).abs()).sum::<f32>();
                    assert!((exact - quantized).abs() <= 0.01 * scale, "{kind:?} row {row} token {token}: {exact} vs {quantized}");
                    // The portable kernels give the same sums as the vectorized ones.
                    let blocks = cols / BLOCK;
                    let (w, a) = (row * blocks, token * blocks);
                    let q = kind.quant_bytes();
                    let args = (
                        &matrix.quants[w * q..(w + blocks) * q],
                        &matrix.scales[w..w + blocks],
                        &x.quants[a * BLOCK..(a + blocks) * BLOCK],
                        &x.scales[a..a + blocks],
                    );
                    let (portable, chosen) = match kind {
                        QuantKind::Q8_0 => (portable::q8(args.0, args.1, args.2, args.3), kernels().q8(args.0, args.1, args.2, args.3)),
                        _ => (portable::q4(args.0, args.1, args.2, args.3), kernels().q4(args.0, args.1, args.2, args.3)),
                    };
                    assert!((portable - chosen).abs() <= 1e-4 * portable.abs().max(1.0), "{kind:?}: {portable} vs {chosen}");
                }
            }
        }
    }

    #[test]
    fn four_rows_at_once_give_the_single_row_products() {
        let cols = 96;
        let activations: Vec<f32> = (0..5 * cols).map(|i| ((i * 53 % 97) as f32 - 48.0) / 11.0).collect();
        let mut x = QActivations::default();
        x.quantize(&activations, cols);
        for kind in [QuantKind::Q4_0, QuantKind::Q4_1, QuantKind::Q8_0] {
            let matrix = QMatrix::from_ggml(kind, 2, cols, &random_matrix(kind, 2, cols, 3)).unwrap();
            let four = matrix.dot4(1, &x, 1);
            for (k, product) in four.iter().enumerate() {
                let single = matrix.dot(1, &x, 1 + k);
                assert!((product - single).abs() <= 1e-4 * single.abs().max(1.0), "{kind:?} row {k}: {product} vs {single}");
            }
        }
    }

    #[test]
    fn quantizing_to_q8_0_keeps_values_within_half_a_step() {
        let values: Vec<f32> = (0..64).map(|i| (i as f32 - 30.0) / 7.0).collect();
        let matrix = QMatrix::quantize_q8_0(2, 32, &values).unwrap();
        let mut row = vec![0.0; 32];
        matrix.dequantize_row(1, &mut row);
        let step = values[32..].iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        assert!(row.iter().zip(&values[32..]).all(|(a, b)| (a - b).abs() <= step / 2.0 + 1e-6), "{row:?}");
    }

    #[test]
    fn a_short_buffer_is_refused() {
        let error = QMatrix::from_ggml(QuantKind::Q8_0, 2, 64, &[0; 100]).unwrap_err();
        assert!(error.contains("136 are needed"), "{error}");
    }
}
