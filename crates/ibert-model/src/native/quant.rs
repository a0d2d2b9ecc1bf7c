//! Quantized weight matrices and their products with activations quantized to 8 bits.
//!
//! Every block format ([`QuantKind`]: Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K) is repacked at load
//! into *panels* of [`PANEL`] rows: for each 32-value block, the quants of the eight rows are
//! interleaved four values at a time, so one 256-bit register holds the same four values of
//! eight rows. A kernel then multiplies that register by four activation bytes broadcast to every
//! lane, and after a block each lane holds one row's integer dot product: the block's scales are
//! applied to eight rows with one float operation, and no horizontal sum is needed. The prompt's
//! tokens share each unpacked weight register (up to [`MAX_TOKEN_TILE`] at a time).
//!
//! Per (panel, block) a record holds:
//!
//! * 128 bytes of nibbles (all formats but Q8_0): register `k` (32 bytes) has, in lane `r`, row
//!   `r`'s values `4k..4k+4` in the low nibbles and values `16+4k..16+4k+4` in the high ones;
//! * Q5_0: 32 bytes of fifth bits: lane `r`, byte `i`, bit `g` is value `4g+i`'s fifth bit;
//! * Q6_K: 64 bytes of high pairs: register `h`, lane `r`, byte `i`, bits `2j..2j+2` are the top
//!   bits of value `4(4h+j)+i`;
//! * Q8_0: 256 bytes, register `g` holding values `4g..4g+4` of each row;
//! * the scales of the eight rows: `d` (f16) for Q4_0, Q5_0, Q8_0; `d` and `m` (f16) for Q4_1;
//!   the 6-bit scale and min (u8) of the sub-block for Q4_K; the two 16-value scales (i8) for
//!   Q6_K. The k-quants' super-block scales (`d`, and Q4_K's `-dmin`) are f32 beside the records.
//!
//! Every format is then "unsigned quant times scale, plus an offset": `q * s + m` per row and
//! (half) block, with the offset applied through the activation block's sum. Q8_0 is signed and
//! has no offset.
//!
//! The AVX2 kernels (and their VNNI form, which gives the same sums in fewer instructions) are
//! chosen at run time (`is_x86_feature_detected!`), so one binary runs everywhere and is fast
//! where it can be; the portable kernels compute the same sums.

use std::sync::OnceLock;

use half::f16;
use rayon::prelude::*;

use super::ggml::q4_k_scale_min;
pub use super::ggml::{GGML_F16, GGML_F32, QuantKind};

/// Values per quantization block of the activations and of a record.
pub const BLOCK: usize = 32;
/// Rows per panel.
pub const PANEL: usize = 8;
/// The most tokens that share the weight registers in the prompt's product (the VNNI kernels,
/// with 32 vector registers; the plain AVX2 ones take 4).
pub const MAX_TOKEN_TILE: usize = 8;

/// Bytes of a record (one panel's block) of `kind`.
pub(super) const fn record_bytes(kind: QuantKind) -> usize {
    match kind {
        QuantKind::Q4_0 | QuantKind::Q4_K => 128 + 16,
        QuantKind::Q4_1 => 128 + 32,
        QuantKind::Q5_0 => 128 + 32 + 16,
        QuantKind::Q6_K => 128 + 64 + 16,
        QuantKind::Q8_0 => 256 + 16,
    }
}

/// Where the scales start in a record.
pub(super) const fn scales_at(kind: QuantKind) -> usize {
    match kind {
        QuantKind::Q4_0 | QuantKind::Q4_1 | QuantKind::Q4_K => 128,
        QuantKind::Q5_0 => 160,
        QuantKind::Q6_K => 192,
        QuantKind::Q8_0 => 256,
    }
}

/// f32 super-block scales per (panel, super-block): `d` of each row, then Q4_K's `-dmin`.
pub(super) const fn super_floats(kind: QuantKind) -> usize {
    match kind {
        QuantKind::Q4_K => 2 * PANEL,
        QuantKind::Q6_K => PANEL,
        _ => 0,
    }
}

/// A quantized matrix of `rows x cols` values, repacked into panels.
#[derive(Debug, Clone)]
pub struct QMatrix {
    pub kind: QuantKind,
    pub rows: usize,
    pub cols: usize,
    records: Storage<u8>,
    supers: Storage<f32>,
}

/// Where a matrix's repacked data lives: in memory of its own, or in a mapped file of repacked
/// weights ([`super::panel_cache`]).
#[derive(Clone)]
pub(super) enum Storage<T: 'static> {
    Owned(Vec<T>),
    Mapped { map: std::sync::Arc<memmap2::Mmap>, offset: usize, len: usize },
}

impl<T> Storage<T> {
    /// `len` values of `T` at byte `offset` of `map`, if they lie inside it, aligned.
    pub(super) fn mapped(map: &std::sync::Arc<memmap2::Mmap>, offset: usize, len: usize) -> Option<Storage<T>> {
        let end = len.checked_mul(size_of::<T>()).and_then(|bytes| offset.checked_add(bytes))?;
        let aligned = (map.as_ptr() as usize + offset).is_multiple_of(align_of::<T>());
        (end <= map.len() && aligned).then(|| Storage::Mapped { map: map.clone(), offset, len })
    }
}

impl<T> std::ops::Deref for Storage<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Storage::Owned(values) => values,
            // SAFETY: `Storage::mapped` checked that the range lies inside the map and is aligned;
            // the map is read-only and lives as long as this `Arc`. The types stored (u8, f32)
            // are valid for any bits.
            Storage::Mapped { map, offset, len } => unsafe { std::slice::from_raw_parts(map.as_ptr().add(*offset).cast(), *len) },
        }
    }
}

impl<T> std::fmt::Debug for Storage<T> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Storage::Owned(values) => write!(formatter, "{} values in memory", values.len()),
            Storage::Mapped { len, offset, .. } => write!(formatter, "{len} values mapped at byte {offset}"),
        }
    }
}

/// Reads rows of a matrix in its file form: `read(first_row, buffer)` fills `buffer` with rows
/// `first_row..` (a whole number of rows).
pub type RowReader<'a> = dyn Fn(usize, &mut [u8]) -> Result<(), String> + Sync + 'a;

/// Panels repacked per parallel task at load (bounded read buffers).
const PANELS_PER_LOAD_TASK: usize = 64;

thread_local! {
    /// Where a loading thread reads rows in their file form.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl QMatrix {
    /// Repacks `rows x cols` values stored as ggml blocks in `data`.
    pub fn from_ggml(kind: QuantKind, rows: usize, cols: usize, data: &[u8]) -> Result<QMatrix, String> {
        let row_bytes = kind.row_bytes(cols).ok_or_else(|| not_whole_blocks(kind, cols))?;
        let size = rows * row_bytes;
        if data.len() < size {
            return Err(format!("{} bytes of data where {size} are needed", data.len()));
        }
        QMatrix::from_rows(kind, rows, cols, &|first, buffer: &mut [u8]| {
            buffer.copy_from_slice(&data[first * row_bytes..first * row_bytes + buffer.len()]);
            Ok(())
        })
    }

    /// Repacks a matrix read a few panels at a time (in parallel) by `read`, so the file form
    /// is never all in memory.
    pub fn from_rows(kind: QuantKind, rows: usize, cols: usize, read: &RowReader) -> Result<QMatrix, String> {
        let row_bytes = kind.row_bytes(cols).ok_or_else(|| not_whole_blocks(kind, cols))?;
        let (panels, blocks) = (rows.div_ceil(PANEL), cols / BLOCK);
        let panel_bytes = blocks * record_bytes(kind);
        let panel_supers = cols / 256 * super_floats(kind);
        let (mut records, mut all_supers) = (vec![0; panels * panel_bytes], vec![0.0; panels * panel_supers]);
        let tasks = panels.div_ceil(PANELS_PER_LOAD_TASK);
        let supers: Vec<&mut [f32]> = match panel_supers {
            0 => (0..tasks).map(|_| &mut [][..]).collect(),
            _ => all_supers.chunks_mut(PANELS_PER_LOAD_TASK * panel_supers).collect(),
        };
        records.par_chunks_mut(PANELS_PER_LOAD_TASK * panel_bytes).zip(supers).enumerate().try_for_each(|(task, (records, supers))| {
            let first_row = task * PANELS_PER_LOAD_TASK * PANEL;
            let count = (rows - first_row).min(PANELS_PER_LOAD_TASK * PANEL);
            // One read buffer per thread for the whole load: a fresh one per task would be fresh
            // pages, each faulted in and cleared.
            READ_BUFFER.with_borrow_mut(|data| {
                data.resize(count * row_bytes, 0);
                read(first_row, &mut data[..count * row_bytes])?;
                for (panel, records) in records.chunks_exact_mut(panel_bytes).enumerate() {
                    let supers = &mut supers[panel * panel_supers..(panel + 1) * panel_supers];
                    for lane in 0..PANEL.min(count - panel * PANEL) {
                        repack_row(kind, &data[(panel * PANEL + lane) * row_bytes..][..row_bytes], lane, records, supers);
                    }
                }
                Ok::<(), String>(())
            })
        })?;
        Ok(QMatrix { kind, rows, cols, records: Storage::Owned(records), supers: Storage::Owned(all_supers) })
    }

    /// Quantizes `rows x cols` floats to Q8_0 (the `load_in_8bit` path for full-precision
    /// checkpoints): a scale per block (f16, as in ggml) and the values rounded by it.
    pub fn quantize_q8_0(rows: usize, cols: usize, values: &[f32]) -> Result<QMatrix, String> {
        if !cols.is_multiple_of(BLOCK) || values.len() != rows * cols {
            return Err(format!("{} values do not make {rows} rows of {cols} in {BLOCK}-value blocks", values.len()));
        }
        let mut data = Vec::with_capacity(values.len() / BLOCK * 34);
        for block in values.chunks_exact(BLOCK) {
            let scale = f16::from_f32(block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0);
            let inverse = if scale.to_f32() > 0.0 { 1.0 / scale.to_f32() } else { 0.0 };
            data.extend_from_slice(&scale.to_le_bytes());
            data.extend(block.iter().map(|v| (v * inverse).round().clamp(-127.0, 127.0) as i8 as u8));
        }
        QMatrix::from_ggml(QuantKind::Q8_0, rows, cols, &data)
    }

    /// A matrix whose repacked records and super-block scales are already in `records` and
    /// `supers` (a mapped file of repacked weights); `None` when their sizes do not fit the shape.
    pub(super) fn from_parts(kind: QuantKind, rows: usize, cols: usize, records: Storage<u8>, supers: Storage<f32>) -> Option<QMatrix> {
        let fits = kind.row_bytes(cols).is_some()
            && records.len() == rows.div_ceil(PANEL) * (cols / BLOCK) * record_bytes(kind)
            && supers.len() == rows.div_ceil(PANEL) * (cols / 256) * super_floats(kind);
        fits.then_some(QMatrix { kind, rows, cols, records, supers })
    }

    /// The repacked records and super-block scales (to write them to a file).
    pub(super) fn parts(&self) -> (&[u8], &[f32]) {
        (&self.records, &self.supers)
    }

    /// Panels of the matrix (the last one padded with zero rows).
    pub fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL)
    }

    fn panel_data(&self, panel: usize) -> (&[u8], &[f32]) {
        let panel_bytes = self.cols / BLOCK * record_bytes(self.kind);
        let panel_supers = self.cols / 256 * super_floats(self.kind);
        (&self.records[panel * panel_bytes..(panel + 1) * panel_bytes], &self.supers[panel * panel_supers..(panel + 1) * panel_supers])
    }

    /// Row `row` as floats (the embedding lookup).
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let (records, supers) = self.panel_data(row / PANEL);
        let lane = row % PANEL;
        for (block, values) in out[..self.cols].chunks_exact_mut(BLOCK).enumerate() {
            let record = &records[block * record_bytes(self.kind)..(block + 1) * record_bytes(self.kind)];
            let quants = unpack_lane(self.kind, record, lane);
            let halves = lane_scales(self.kind, record, supers, block, lane);
            for (e, value) in values.iter_mut().enumerate() {
                let (scale, offset) = halves[e / 16];
                *value = f32::from(quants[e]) * scale + offset;
            }
        }
    }

    /// The products of panel `panel`'s rows with activation rows `first..first + count` of `x`:
    /// `out[t * PANEL + r]` for token `first + t` and row `panel * PANEL + r`.
    pub fn panel_products(&self, panel: usize, x: &QActivations, first: usize, count: usize, out: &mut [f32]) {
        assert!(
            x.cols == self.cols && first + count <= x.tokens() && out.len() >= count * PANEL,
            "activations of {} values for a matrix of {}",
            x.cols,
            self.cols
        );
        let (records, supers) = self.panel_data(panel);
        let kernels = kernels();
        let mut token = 0;
        while token < count {
            let tile = (count - token).min(kernels.tile);
            (kernels.panel)(self.kind, records, supers, x, first + token, tile, &mut out[token * PANEL..(token + tile) * PANEL]);
            token += tile;
        }
    }

    /// The dot product of row `row` with activation row `token` of `x` (for tests and checks).
    pub fn dot(&self, row: usize, x: &QActivations, token: usize) -> f32 {
        let mut out = [0.0; PANEL];
        self.panel_products(row / PANEL, x, token, 1, &mut out);
        out[row % PANEL]
    }
}

fn not_whole_blocks(kind: QuantKind, cols: usize) -> String {
    format!("a row of {cols} values is not a whole number of {}-value {kind:?} blocks", kind.block_values())
}

/// Writes lane `lane` of a panel's records (and of its super-block scales) from a row in file
/// form. The nibble bytes of the 32-value formats are already in the record's order (byte `j`
/// holds values `j` and `j + 16`): they move four at a time. The k-quants' nibbles are
/// recombined sixteen bytes at a time in a `u128`.
fn repack_row(kind: QuantKind, row: &[u8], lane: usize, records: &mut [u8], supers: &mut [f32]) {
    let (at, size) = (scales_at(kind), record_bytes(kind));
    let put_nibbles = |record: &mut [u8], nibbles: [u8; 16]| {
        for k in 0..4 {
            record[32 * k + 4 * lane..32 * k + 4 * lane + 4].copy_from_slice(&nibbles[4 * k..4 * k + 4]);
        }
    };
    let half = |bytes: &[u8], at: usize| f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32();
    let sixteen = |bytes: &[u8]| u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes"));
    const LOW: u128 = 0x0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f;
    let blocks = row.chunks_exact(kind.block_bytes());
    match kind {
        QuantKind::Q4_0 | QuantKind::Q4_1 | QuantKind::Q5_0 | QuantKind::Q8_0 => {
            for (bytes, record) in blocks.zip(records.chunks_exact_mut(size)) {
                record[at + 2 * lane..at + 2 * lane + 2].copy_from_slice(&bytes[..2]);
                match kind {
                    QuantKind::Q4_0 => put_nibbles(record, sixteen(&bytes[2..]).to_le_bytes()),
                    QuantKind::Q4_1 => {
                        put_nibbles(record, sixteen(&bytes[4..]).to_le_bytes());
                        record[at + 16 + 2 * lane..at + 16 + 2 * lane + 2].copy_from_slice(&bytes[2..4]);
                    }
                    QuantKind::Q5_0 => {
                        put_nibbles(record, sixteen(&bytes[6..]).to_le_bytes());
                        let high = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
                        for i in 0..4 {
                            record[128 + 4 * lane + i] = every_fourth_bit(high >> i);
                        }
                    }
                    _ => {
                        for g in 0..8 {
                            record[32 * g + 4 * lane..32 * g + 4 * lane + 4].copy_from_slice(&bytes[2 + 4 * g..6 + 4 * g]);
                        }
                    }
                }
            }
        }
        QuantKind::Q4_K => {
            for ((index, bytes), records) in blocks.enumerate().zip(records.chunks_exact_mut(8 * size)) {
                supers[index * 2 * PANEL + lane] = half(bytes, 0);
                supers[index * 2 * PANEL + PANEL + lane] = -half(bytes, 2);
                let scales: [(u8, u8); 8] = std::array::from_fn(|sub| q4_k_scale_min(&bytes[4..16], sub));
                for (pair, records) in records.chunks_exact_mut(2 * size).enumerate() {
                    // Sub-blocks 2p and 2p+1 share 32 bytes: the low nibbles, then the high ones.
                    let (low, high) = (sixteen(&bytes[16 + 32 * pair..]), sixteen(&bytes[32 + 32 * pair..]));
                    let (even, odd) = records.split_at_mut(size);
                    put_nibbles(even, ((low & LOW) | ((high & LOW) << 4)).to_le_bytes());
                    put_nibbles(odd, (((low >> 4) & LOW) | (high & !LOW)).to_le_bytes());
                    for (sub, record) in [(2 * pair, even), (2 * pair + 1, odd)] {
                        (record[at + lane], record[at + PANEL + lane]) = scales[sub];
                    }
                }
            }
        }
        QuantKind::Q6_K => {
            for ((index, bytes), records) in blocks.enumerate().zip(records.chunks_exact_mut(8 * size)) {
                supers[index * PANEL + lane] = half(bytes, 208);
                for (sub, record) in records.chunks_exact_mut(size).enumerate() {
                    (record[at + lane], record[at + PANEL + lane]) = (bytes[192 + 2 * sub], bytes[193 + 2 * sub]);
                    // Sub-block `sub` is quarter `sub % 4` of half `sub / 4`: its low nibbles sit in
                    // one nibble of 32 bytes, its top bits in one bit pair of 32 more.
                    let (half_index, quarter) = (sub / 4, sub % 4);
                    let low = &bytes[64 * half_index + 32 * (quarter & 1)..];
                    let low_shift = if quarter >= 2 { 4 } else { 0 };
                    let (first, second) = ((sixteen(low) >> low_shift) & LOW, (sixteen(&low[16..]) >> low_shift) & LOW);
                    put_nibbles(record, (first | (second << 4)).to_le_bytes());
                    // Byte `i` of lane `lane` in high register `h` gathers the pairs of values
                    // 4(4h+j)+i: four words of pairs, shifted by 2j within their bytes.
                    let high = &bytes[128 + 32 * half_index..];
                    for h in 0..2 {
                        let pairs = (sixteen(&high[16 * h..]) >> (2 * quarter)) & 0x0303_0303_0303_0303_0303_0303_0303_0303;
                        let word = |j: u32| ((pairs >> (32 * j)) as u32) << (2 * j);
                        let packed = word(0) | word(1) | word(2) | word(3);
                        record[128 + 32 * h + 4 * lane..128 + 32 * h + 4 * lane + 4].copy_from_slice(&packed.to_le_bytes());
                    }
                }
            }
        }
    }
}

/// Bits 0, 4, 8, ..., 28 of `bits` as one byte (bit `g` from bit `4g`).
fn every_fourth_bit(bits: u32) -> u8 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("bmi2") {
        // SAFETY: BMI2 was detected.
        return unsafe { std::arch::x86_64::_pext_u32(bits, 0x1111_1111) } as u8;
    }
    (0..8).fold(0, |byte, g| byte | ((((bits >> (4 * g)) & 1) as u8) << g))
}

/// The 32 quants of lane `lane` in a record: unsigned, or signed for Q8_0.
pub(super) fn unpack_lane(kind: QuantKind, record: &[u8], lane: usize) -> [i16; BLOCK] {
    let mut quants = [0i16; BLOCK];
    for g in 0..8 {
        for i in 0..4 {
            let e = 4 * g + i;
            quants[e] = match kind {
                QuantKind::Q8_0 => i16::from(record[32 * g + 4 * lane + i] as i8),
                _ => {
                    let byte = record[32 * (g % 4) + 4 * lane + i];
                    let low = i16::from(if g < 4 { byte & 0x0f } else { byte >> 4 });
                    match kind {
                        QuantKind::Q5_0 => low | (i16::from((record[128 + 4 * lane + i] >> g) & 1) << 4),
                        QuantKind::Q6_K => low | (i16::from((record[128 + 32 * (g / 4) + 4 * lane + i] >> (2 * (g % 4))) & 3) << 4),
                        _ => low,
                    }
                }
            };
        }
    }
    quants
}

/// `(scale, offset)` of lane `lane` for each half of block `block`: value = `q * scale + offset`.
pub(super) fn lane_scales(kind: QuantKind, record: &[u8], supers: &[f32], block: usize, lane: usize) -> [(f32, f32); 2] {
    let at = scales_at(kind);
    let half = |offset: usize| f16::from_le_bytes([record[at + offset + 2 * lane], record[at + offset + 2 * lane + 1]]).to_f32();
    let both = |pair: (f32, f32)| [pair, pair];
    match kind {
        QuantKind::Q4_0 => both((half(0), -8.0 * half(0))),
        QuantKind::Q4_1 => both((half(0), half(16))),
        QuantKind::Q5_0 => both((half(0), -16.0 * half(0))),
        QuantKind::Q8_0 => both((half(0), 0.0)),
        QuantKind::Q4_K => {
            let base = block / 8 * 2 * PANEL;
            let scale = supers[base + lane] * f32::from(record[at + lane]);
            both((scale, supers[base + PANEL + lane] * f32::from(record[at + PANEL + lane])))
        }
        QuantKind::Q6_K => {
            let d = supers[block / 8 * PANEL + lane];
            let scale = |h: usize| d * f32::from(record[at + h * PANEL + lane] as i8);
            [(scale(0), -32.0 * scale(0)), (scale(1), -32.0 * scale(1))]
        }
    }
}

/// Statistics of one activation block: its scale `d`, and `d` times the sum of its quants, over
/// the whole block and over each half; and the sum of its quants itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(32))]
pub struct BlockStats {
    pub d: f32,
    pub sum: f32,
    pub half_sums: [f32; 2],
    pub quant_sum: i32,
}

/// Activation rows quantized to 8 bits per 32-value block (llama.cpp's Q8_1, with half sums).
#[derive(Debug, Default)]
pub struct QActivations {
    cols: usize,
    quants: Vec<i8>,
    stats: Vec<BlockStats>,
}

impl QActivations {
    /// Quantizes rows of `cols` values each, reusing this buffer's memory.
    pub fn quantize(&mut self, values: &[f32], cols: usize) {
        assert!(cols.is_multiple_of(BLOCK) && values.len().is_multiple_of(cols), "rows of {cols} values");
        self.cols = cols;
        self.stats.resize(values.len() / BLOCK, BlockStats::default());
        self.quants.resize(values.len(), 0);
        let quantize = kernels().quantize;
        let quantize_block = |((block, quants), stats): ((&[f32], &mut [i8]), &mut BlockStats)| {
            let (scale, halves) = quantize(block, quants);
            let quant_sum = halves[0] + halves[1];
            *stats = BlockStats { d: scale, sum: scale * quant_sum as f32, half_sums: halves.map(|h| scale * h as f32), quant_sum };
        };
        // A prompt's many rows are quantized in parallel; one token's row is not worth the threads.
        if values.len() >= 16 * cols && values.len() >= 8192 {
            values.par_chunks_exact(BLOCK).zip(self.quants.par_chunks_exact_mut(BLOCK)).zip(self.stats.par_iter_mut()).for_each(quantize_block);
        } else {
            values.chunks_exact(BLOCK).zip(self.quants.chunks_exact_mut(BLOCK)).zip(self.stats.iter_mut()).for_each(quantize_block);
        }
    }

    pub fn tokens(&self) -> usize {
        self.quants.len().checked_div(self.cols).unwrap_or(0)
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Token `token`'s quants and block statistics.
    pub(super) fn row(&self, token: usize) -> (&[i8], &[BlockStats]) {
        let blocks = self.cols / BLOCK;
        (&self.quants[token * self.cols..(token + 1) * self.cols], &self.stats[token * blocks..(token + 1) * blocks])
    }
}

/// Quantizes one block of 32 values to `quants`: returns the scale (the largest magnitude over
/// 127) and the sums of the quants of each half. Values are rounded half away from zero.
pub(super) type BlockQuantizer = fn(&[f32], &mut [i8]) -> (f32, [i32; 2]);

/// The plain form of [`BlockQuantizer`].
pub(super) fn quantize_block(block: &[f32], quants: &mut [i8]) -> (f32, [i32; 2]) {
    let max = block[..BLOCK].iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = max / 127.0;
    let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    let mut halves = [0i32; 2];
    for (index, (value, q)) in block.iter().zip(quants[..BLOCK].iter_mut()).enumerate() {
        *q = (value * inverse).round() as i8;
        halves[index / 16] += i32::from(*q);
    }
    (scale, halves)
}

/// A panel kernel: the products of one panel (its records and super-block scales) with
/// `count` (at most the kernels' tile) activation rows from `first`, into `out[t * PANEL + r]`.
pub(super) type PanelKernel = fn(QuantKind, &[u8], &[f32], &QActivations, usize, usize, &mut [f32]);

pub(super) struct Kernels {
    name: &'static str,
    panel: PanelKernel,
    quantize: BlockQuantizer,
    /// Tokens per call of `panel`.
    tile: usize,
}

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if vector_units_allowed() {
            let vnni = std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512vl") && !forced("avx2");
            return match vnni {
                true => Kernels { name: "AVX2", panel: super::x86::panel_vnni, quantize: super::x86::quantize_block, tile: super::x86::VNNI_TILE },
                false => Kernels { name: "AVX2", panel: super::x86::panel_avx2, quantize: super::x86::quantize_block, tile: super::x86::AVX2_TILE },
            };
        }
        Kernels { name: "portable", panel: super::portable::panel, quantize: quantize_block, tile: MAX_TOKEN_TILE }
    })
}

fn forced(kernels: &str) -> bool {
    std::env::var("IBERT_NATIVE_KERNELS").is_ok_and(|v| v == kernels)
}

/// Whether the AVX2 kernels may run: the CPU has AVX2, FMA and F16C, and `IBERT_NATIVE_KERNELS`
/// is not `portable` (which forces the portable kernels, to compare or to debug; `avx2` keeps
/// the AVX2 kernels from using VNNI).
pub(crate) fn vector_units_allowed() -> bool {
    if forced("portable") {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// The kernels in use on this CPU: `AVX2` or `portable` (for `describe`). The VNNI form of the
/// AVX2 kernels computes the same sums, so it has the same name.
pub fn kernel_name() -> &'static str {
    kernels().name
}

/// The portable kernels, for tests that compare them with the chosen ones.
#[cfg(test)]
pub(super) fn portable_kernels() -> PanelKernel {
    super::portable::panel
}

#[cfg(test)]
pub(super) fn chosen_quantizer() -> BlockQuantizer {
    kernels().quantize
}

#[cfg(test)]
pub(super) fn chosen_kernels() -> (PanelKernel, usize) {
    (kernels().panel, kernels().tile)
}

#[cfg(test)]
impl QMatrix {
    pub(super) fn panel_data_for_tests(&self, panel: usize) -> (&[u8], &[f32]) {
        self.panel_data(panel)
    }
}
