//! f32 matrix products for the parts of training that are not the frozen base: the LoRA
//! factors and attention. They run on the `gemm` crate (the one candle uses), through views that
//! carry their strides, so that a head's columns inside a `tokens x heads*head_dim` array or a
//! transposed matrix need no copy.

/// A read-only matrix: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// `data` as `rows x cols`, row after row.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> View<'a> {
        View { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The same values with rows and columns swapped (no copy).
    pub fn t(self) -> View<'a> {
        View { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// Columns `first..first + count`.
    pub fn columns(self, first: usize, count: usize) -> View<'a> {
        assert!(first + count <= self.cols, "columns {first}..{} of {}", first + count, self.cols);
        let offset = (first * self.col_stride).min(self.data.len());
        View { data: &self.data[offset..], cols: count, ..self }
    }

    /// Rows `first..first + count`.
    pub fn rows(self, first: usize, count: usize) -> View<'a> {
        assert!(first + count <= self.rows, "rows {first}..{} of {}", first + count, self.rows);
        let offset = (first * self.row_stride).min(self.data.len());
        View { data: &self.data[offset..], rows: count, ..self }
    }

    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// A matrix to write, rows of `cols` values `row_stride` apart.
pub struct ViewMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
}

impl<'a> ViewMut<'a> {
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize) -> ViewMut<'a> {
        ViewMut { data, rows, cols, row_stride: cols }
    }

    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.row_stride + self.cols <= self.data.len()
    }
}

/// Whether a product spreads over the thread pool (large products) or runs on the calling
/// thread (products already inside a parallel task, such as one attention head).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    Pool,
    Caller,
}

/// `out = scale * a @ b`, or `out += scale * a @ b` when `accumulate`. The result does not
/// depend on how many threads run it (each output value is summed by one thread, in one order).
pub fn matmul(out: ViewMut, a: View, b: View, scale: f32, accumulate: bool, threads: Threads) {
    assert!(a.cols == b.rows && out.rows == a.rows && out.cols == b.cols, "{}x{} @ {}x{} into {}x{}", a.rows, a.cols, b.rows, b.cols, out.rows, out.cols);
    assert!(a.fits() && b.fits() && out.fits(), "a view reaches past its data");
    if out.rows == 0 || out.cols == 0 {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            for row in out.data.chunks_mut(out.row_stride).take(out.rows) {
                row[..out.cols].fill(0.0);
            }
        }
        return;
    }
    let parallelism = match threads {
        Threads::Pool => gemm::Parallelism::Rayon(rayon::current_num_threads()),
        Threads::Caller => gemm::Parallelism::None,
    };
    // SAFETY: the asserts above keep every index the strides reach inside the slices; `out` is
    // borrowed mutably, so nothing else reads or writes it meanwhile.
    unsafe {
        gemm::gemm(
            out.rows,
            out.cols,
            a.cols,
            out.data.as_mut_ptr(),
            1,
            out.row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `a @ b^T` for row-major `a` (`m x k`) and `b` (`n x k`): `m x n`.
pub fn times_transposed(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0.0; m * n];
    matmul(ViewMut::new(&mut out, m, n), View::new(a, m, k), View::new(b, n, k).t(), 1.0, false, Threads::Pool);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(a: View, b: View) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols).map(|k| a.data[i * a.row_stride + k * a.col_stride] * b.data[k * b.row_stride + j * b.col_stride]).sum();
            }
        }
        out
    }

    #[test]
    fn strided_and_transposed_views_multiply_as_plain_loops() {
        let a: Vec<f32> = (0..6 * 10).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..5 * 4).map(|i| (i as f32 * 0.11).cos()).collect();
        // Columns 3..7 of a 6x10 matrix times the transpose of a 5x4 one.
        let left = View::new(&a, 6, 10).columns(3, 4);
        let right = View::new(&b, 5, 4).t();
        let mut out = vec![1.0; 6 * 5];
        matmul(ViewMut::new(&mut out, 6, 5), left, right, 2.0, true, Threads::Caller);
        let expected = plain(left, right);
        for (o, e) in out.iter().zip(&expected) {
            assert!((o - (1.0 + 2.0 * e)).abs() < 1e-5, "{o} against {e}");
        }
        let product = times_transposed(&b, &b, 5, 5, 4);
        assert!((product[7] - (0..4).map(|k| b[4 + k] * b[2 * 4 + k]).sum::<f32>()).abs() < 1e-5);
    }

    #[test]
    #[should_panic(expected = "reaches past")]
    fn a_view_past_its_data_is_refused() {
        let a = vec![0.0; 5];
        let view = View { data: &a, rows: 2, cols: 3, row_stride: 3, col_stride: 1 };
        let mut out = vec![0.0; 2];
        matmul(ViewMut::new(&mut out, 2, 1), view, View::new(&[1.0, 1.0, 1.0], 3, 1), 1.0, false, Threads::Caller);
    }
}
