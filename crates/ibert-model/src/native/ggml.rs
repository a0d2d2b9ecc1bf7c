//! ggml's quantized block formats as they lie in a GGUF file, and their plain decoding.
//!
//! The decoding here is written straight from the format descriptions, one value at a time: it
//! is the reference the repacked matrices and the vectorized kernels are tested against, and it
//! serves embedding lookups of matrices kept in their file form.
//!
//! | format | values per block | bytes | value |
//! |---|---|---|---|
//! | Q4_0 | 32 | 18: `d` f16, 16 nibble bytes | `(q - 8) * d` |
//! | Q4_1 | 32 | 20: `d`, `m` f16, 16 nibble bytes | `q * d + m` |
//! | Q5_0 | 32 | 22: `d` f16, 32 high bits, 16 nibble bytes | `(q - 16) * d` |
//! | Q8_0 | 32 | 34: `d` f16, 32 signed bytes | `q * d` |
//! | Q4_K | 256 | 144: `d`, `dmin` f16, 12 bytes of 6-bit scales and mins, 128 nibble bytes | `q * d * sc - dmin * m` per 32 |
//! | Q6_K | 256 | 210: 128 low-nibble bytes, 64 bytes of 2-bit highs, 16 signed scales, `d` f16 | `(q - 32) * d * sc` per 16 |
//!
//! In the 32-value formats, byte `j` of the nibbles holds value `j` (low nibble) and value
//! `j + 16` (high nibble); Q5_0's bit `j` of the high bits is value `j`'s fifth bit.

use half::f16;

/// The ggml type ids this backend reads.
pub const GGML_F32: u32 = 0;
pub const GGML_F16: u32 = 1;
pub const GGML_Q4_0: u32 = 2;
pub const GGML_Q4_1: u32 = 3;
pub const GGML_Q5_0: u32 = 6;
pub const GGML_Q8_0: u32 = 8;
pub const GGML_Q4_K: u32 = 12;
pub const GGML_Q6_K: u32 = 14;

/// A ggml type id's name, for messages (`Q5_K (13)`).
pub fn type_name(kind: u32) -> String {
    let name = match kind {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        _ => "unknown",
    };
    format!("{name} ({kind})")
}

/// How a matrix stores its values: the block formats this backend computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types, reason = "named as ggml names them")]
pub enum QuantKind {
    Q4_0,
    Q4_1,
    Q5_0,
    Q8_0,
    Q4_K,
    Q6_K,
}

impl QuantKind {
    pub const ALL: [QuantKind; 6] = [QuantKind::Q4_0, QuantKind::Q4_1, QuantKind::Q5_0, QuantKind::Q8_0, QuantKind::Q4_K, QuantKind::Q6_K];

    pub fn from_ggml(kind: u32) -> Option<QuantKind> {
        match kind {
            GGML_Q4_0 => Some(QuantKind::Q4_0),
            GGML_Q4_1 => Some(QuantKind::Q4_1),
            GGML_Q5_0 => Some(QuantKind::Q5_0),
            GGML_Q8_0 => Some(QuantKind::Q8_0),
            GGML_Q4_K => Some(QuantKind::Q4_K),
            GGML_Q6_K => Some(QuantKind::Q6_K),
            _ => None,
        }
    }

    pub fn ggml_type(self) -> u32 {
        match self {
            QuantKind::Q4_0 => GGML_Q4_0,
            QuantKind::Q4_1 => GGML_Q4_1,
            QuantKind::Q5_0 => GGML_Q5_0,
            QuantKind::Q8_0 => GGML_Q8_0,
            QuantKind::Q4_K => GGML_Q4_K,
            QuantKind::Q6_K => GGML_Q6_K,
        }
    }

    /// Values per block in the file: 32, or 256 for the k-quants' super-blocks.
    pub fn block_values(self) -> usize {
        match self {
            QuantKind::Q4_K | QuantKind::Q6_K => 256,
            _ => 32,
        }
    }

    /// Bytes of one block in the file.
    pub fn block_bytes(self) -> usize {
        match self {
            QuantKind::Q4_0 => 18,
            QuantKind::Q4_1 => 20,
            QuantKind::Q5_0 => 22,
            QuantKind::Q8_0 => 34,
            QuantKind::Q4_K => 144,
            QuantKind::Q6_K => 210,
        }
    }

    /// Bytes of a row of `cols` values, when `cols` is a whole number of blocks.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        cols.is_multiple_of(self.block_values()).then(|| cols / self.block_values() * self.block_bytes())
    }
}

fn half(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// Q4_K's 6-bit scale and min of sub-block `j` (0..8) from the 12 packed bytes: the first four
/// sub-blocks keep theirs in the low 6 bits of bytes `j` and `j + 4`; the last four split theirs
/// between a nibble of bytes `j + 4` and the top 2 bits of bytes `j - 4` and `j`.
pub fn q4_k_scale_min(scales: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        ((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4), (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4))
    }
}

/// Q6_K's unsigned 6-bit quant (0..64) of value `e` (0..256) of a block.
pub fn q6_k_quant(block: &[u8], e: usize) -> u8 {
    let (half, within) = (e / 128, e % 128);
    let (quarter, l) = (within / 32, within % 32);
    let low_byte = block[64 * half + l + 32 * (quarter & 1)];
    let low = if quarter >= 2 { low_byte >> 4 } else { low_byte & 0x0f };
    let high = (block[128 + 32 * half + l] >> (2 * quarter)) & 3;
    low | (high << 4)
}

/// Decodes the blocks of `data` (one row, or several) into `out`, one value per element.
pub fn dequantize(kind: QuantKind, data: &[u8], out: &mut [f32]) {
    let values = kind.block_values();
    for (block, out) in data.chunks_exact(kind.block_bytes()).zip(out.chunks_exact_mut(values)) {
        match kind {
            QuantKind::Q4_0 | QuantKind::Q4_1 => {
                let d = half(block, 0);
                let (offset, min, quants) = if kind == QuantKind::Q4_1 { (0.0, half(block, 2), &block[4..20]) } else { (8.0, 0.0, &block[2..18]) };
                for (j, q) in quants.iter().enumerate() {
                    out[j] = (f32::from(q & 0x0f) - offset) * d + min;
                    out[j + 16] = (f32::from(q >> 4) - offset) * d + min;
                }
            }
            QuantKind::Q5_0 => {
                let d = half(block, 0);
                let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
                for (j, q) in block[6..22].iter().enumerate() {
                    let low = i32::from(q & 0x0f) | (((high >> j) & 1) << 4) as i32;
                    let top = i32::from(q >> 4) | (((high >> (j + 16)) & 1) << 4) as i32;
                    out[j] = (low - 16) as f32 * d;
                    out[j + 16] = (top - 16) as f32 * d;
                }
            }
            QuantKind::Q8_0 => {
                let d = half(block, 0);
                for (value, q) in out.iter_mut().zip(&block[2..34]) {
                    *value = f32::from(*q as i8) * d;
                }
            }
            QuantKind::Q4_K => {
                let (d, dmin) = (half(block, 0), half(block, 2));
                let (scales, quants) = (&block[4..16], &block[16..144]);
                for (j, out) in out.chunks_exact_mut(32).enumerate() {
                    let (scale, min) = q4_k_scale_min(scales, j);
                    let (scale, min) = (d * f32::from(scale), dmin * f32::from(min));
                    // Sub-blocks 2i and 2i+1 share 32 bytes: low nibbles, then high nibbles.
                    let bytes = &quants[32 * (j / 2)..32 * (j / 2) + 32];
                    for (value, q) in out.iter_mut().zip(bytes) {
                        let q = if j % 2 == 0 { q & 0x0f } else { q >> 4 };
                        *value = scale * f32::from(q) - min;
                    }
                }
            }
            QuantKind::Q6_K => {
                let d = half(block, 208);
                for (e, value) in out.iter_mut().enumerate() {
                    let scale = f32::from(block[192 + e / 16] as i8);
                    *value = d * scale * f32::from(i16::from(q6_k_quant(block, e)) - 32);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(value: f32) -> [u8; 2] {
        f16::from_f32(value).to_le_bytes()
    }

    #[test]
    fn q4_0_and_q5_0_centre_their_quants() {
        let mut block = f16_bytes(0.5).to_vec();
        block.extend([0x1f; 16]);
        let mut out = [0.0; 32];
        dequantize(QuantKind::Q4_0, &block, &mut out);
        assert_eq!((out[0], out[16]), ((15.0 - 8.0) * 0.5, (1.0 - 8.0) * 0.5));
        // Q5_0: value 0's fifth bit set (bit 0), value 16's clear.
        let mut block = f16_bytes(0.25).to_vec();
        block.extend(1u32.to_le_bytes());
        block.extend([0x1f; 16]);
        dequantize(QuantKind::Q5_0, &block, &mut out);
        assert_eq!((out[0], out[1], out[16]), ((31.0 - 16.0) * 0.25, (15.0 - 16.0) * 0.25, (1.0 - 16.0) * 0.25));
    }

    #[test]
    fn q4_k_scales_and_mins_unpack_from_twelve_bytes() {
        // Sub-block 1: scale 5, min 7 in the low 6 bits; sub-block 5: scale 0x2a, min 0x31
        // split over byte 9's nibbles and the top bits of bytes 1 and 5.
        let mut scales = [0u8; 12];
        scales[1] = 5 | (0x2 << 6);
        scales[5] = 7 | (0x3 << 6);
        scales[9] = 0xa | (0x1 << 4);
        assert_eq!(q4_k_scale_min(&scales, 1), (5, 7));
        assert_eq!(q4_k_scale_min(&scales, 5), (0x2a, 0x31));
    }

    #[test]
    fn q6_k_reads_low_nibbles_and_high_pairs_by_quarter() {
        let mut block = vec![0u8; 210];
        // Value 96: first half, quarter 3, l = 0: the high nibble of byte 32, bits 6..8 of byte 128.
        block[32] = 0xb0;
        block[128] = 0b10 << 6;
        assert_eq!(q6_k_quant(&block, 96), 0xb | (0b10 << 4));
        // Value 128 + 1: second half, quarter 0, l = 1.
        block[64 + 1] = 0x03;
        block[128 + 32 + 1] = 0b01;
        assert_eq!(q6_k_quant(&block, 129), 0x03 | (0b01 << 4));
    }
}
