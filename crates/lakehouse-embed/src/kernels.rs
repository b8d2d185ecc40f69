//! The encoder's fused CPU kernels, as candle custom ops.
//!
//! candle runs element-wise ops on one thread and composes softmax and masking from several passes over
//! memory; for a small model like MiniLM those passes cost as much as the matrix products. These kernels do
//! each step between two matrix products in one parallel pass over rows, on packed sequences (no padding):
//! - [`Attention`]: bias, scaled dot products, softmax and the weighted sum of values, per query row, over the
//!   keys of its own sequence only.
//! - [`BiasGelu`]: bias then exact (erf) GELU.
//! - [`BiasResidualNorm`]: bias, residual add, then layer normalisation.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, bail};
use rayon::prelude::*;

/// Longest sequence the attention kernel handles (BERT's position table is 512 long).
pub(crate) const MAX_SEQ_LEN: usize = 512;

/// The contiguous f32 data of a tensor, or an error naming the op.
fn contiguous<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: expects f32 input");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: expects contiguous input"),
    }
}

/// The `(rows, cols)` of a 2-D layout.
fn dims2(layout: &Layout, op: &str) -> candle_core::Result<(usize, usize)> {
    match *layout.shape().dims() {
        [rows, cols] => Ok((rows, cols)),
        ref dims => bail!("{op}: expects a 2-D input, got {dims:?}"),
    }
}

/// A dot product written so the compiler vectorises it (eight independent accumulators).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Multi-head self-attention over packed sequences.
///
/// Input: `(tokens, 3 × hidden)`, the fused Q, K, V projections without their biases. Output: `(tokens,
/// hidden)`, each head's context in its columns. Sequence `s` occupies rows `offsets[s]..offsets[s + 1]`.
#[derive(Debug)]
pub(crate) struct Attention {
    pub(crate) heads: usize,
    pub(crate) head_dim: usize,
    /// The Q, K, V biases, concatenated like the input's columns.
    pub(crate) bias: Vec<f32>,
    /// Row offsets of the sequences; starts at 0, ends at the token count.
    pub(crate) offsets: Vec<usize>,
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "packed-attention"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = contiguous(storage, layout, self.name())?;
        let (tokens, width) = dims2(layout, self.name())?;
        let hidden = self.heads * self.head_dim;
        if width != 3 * hidden || self.bias.len() != width || self.offsets.last() != Some(&tokens) {
            bail!(
                "packed-attention: input {tokens}×{width} does not fit {} heads of {}",
                self.heads,
                self.head_dim
            );
        }
        let scale = 1.0 / (self.head_dim as f32).sqrt();

        // Bias once per row, and the query pre-scaled, so the inner loops are pure dot products.
        let mut biased = vec![0f32; qkv.len()];
        biased
            .par_chunks_mut(width)
            .zip(qkv.par_chunks(width))
            .for_each(|(out, row)| {
                for (i, ((o, x), b)) in out.iter_mut().zip(row).zip(&self.bias).enumerate() {
                    *o = if i < hidden { (x + b) * scale } else { x + b };
                }
            });

        // Which sequence each row belongs to.
        let mut sequence_of = vec![0usize; tokens];
        for (index, window) in self.offsets.windows(2).enumerate() {
            if window[1] - window[0] > MAX_SEQ_LEN {
                bail!(
                    "packed-attention: a sequence of {} tokens exceeds {MAX_SEQ_LEN}",
                    window[1] - window[0]
                );
            }
            sequence_of[window[0]..window[1]].fill(index);
        }

        let mut out = vec![0f32; tokens * hidden];
        out.par_chunks_mut(hidden)
            .enumerate()
            .for_each(|(row, out)| {
                let sequence = sequence_of[row];
                let (start, end) = (self.offsets[sequence], self.offsets[sequence + 1]);
                let mut scores = [0f32; MAX_SEQ_LEN];
                let scores = &mut scores[..end - start];
                for head in 0..self.heads {
                    let columns = head * self.head_dim..(head + 1) * self.head_dim;
                    let query = &biased[row * width..][columns.clone()];
                    let mut max = f32::NEG_INFINITY;
                    for (score, key_row) in scores.iter_mut().zip(start..end) {
                        let key = &biased[key_row * width + hidden..][columns.clone()];
                        *score = dot(query, key);
                        max = max.max(*score);
                    }
                    let mut sum = 0.0;
                    for score in scores.iter_mut() {
                        *score = (*score - max).exp();
                        sum += *score;
                    }
                    let context = &mut out[columns.clone()];
                    for (score, value_row) in scores.iter().zip(start..end) {
                        let value = &biased[value_row * width + 2 * hidden..][columns.clone()];
                        let weight = score / sum;
                        for (c, v) in context.iter_mut().zip(value) {
                            *c += weight * v;
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((tokens, hidden))))
    }
}

/// `gelu(x + bias)` with the exact (erf) GELU BERT uses.
#[derive(Debug)]
pub(crate) struct BiasGelu {
    pub(crate) bias: Vec<f32>,
}

impl CustomOp1 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = contiguous(storage, layout, self.name())?;
        let (rows, cols) = dims2(layout, self.name())?;
        if cols != self.bias.len() {
            bail!("bias-gelu: {cols} columns but {} biases", self.bias.len());
        }
        let mut out = vec![0f32; input.len()];
        out.par_chunks_mut(cols)
            .zip(input.par_chunks(cols))
            .for_each(|(out, row)| {
                for ((o, x), b) in out.iter_mut().zip(row).zip(&self.bias) {
                    let v = x + b;
                    *o = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((rows, cols))))
    }
}

/// The error function, to 1.5e-7 absolute (Abramowitz and Stegun 7.1.26): branch-free apart from the sign,
/// so the GELU loop vectorises, and far below what moves a normalised embedding.
#[inline]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * (-z * z).exp();
    y.copysign(x)
}

/// `layer_norm(x + bias + residual)`; the residual is the second input.
#[derive(Debug)]
pub(crate) struct BiasResidualNorm {
    pub(crate) bias: Vec<f32>,
    pub(crate) gamma: Vec<f32>,
    pub(crate) beta: Vec<f32>,
    pub(crate) eps: f32,
}

impl CustomOp2 for BiasResidualNorm {
    fn name(&self) -> &'static str {
        "bias-residual-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = contiguous(s1, l1, self.name())?;
        let residual = contiguous(s2, l2, self.name())?;
        let (rows, cols) = dims2(l1, self.name())?;
        if dims2(l2, self.name())? != (rows, cols) || cols != self.bias.len() {
            bail!("bias-residual-norm: mismatched shapes");
        }
        let mut out = vec![0f32; input.len()];
        out.par_chunks_mut(cols)
            .zip(input.par_chunks(cols).zip(residual.par_chunks(cols)))
            .for_each(|(out, (row, res))| {
                for (((o, x), r), b) in out.iter_mut().zip(row).zip(res).zip(&self.bias) {
                    *o = x + b + r;
                }
                normalise(out, &self.gamma, &self.beta, self.eps);
            });
        Ok((CpuStorage::F32(out), Shape::from((rows, cols))))
    }
}

/// Layer normalisation of one row in place.
pub(crate) fn normalise(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let variance = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    let inv = 1.0 / (variance + eps).sqrt();
    for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *x = (*x - mean) * inv * g + b;
    }
}

#[cfg(test)]
mod tests {
    use super::erf;

    #[test]
    fn erf_is_accurate_to_a_few_parts_in_ten_million() {
        // Reference values of erf to 9 digits.
        let cases: [(f32, f64); 6] = [
            (0.0, 0.0),
            (0.1, 0.112_462_916),
            (0.5, 0.520_499_878),
            (1.0, 0.842_700_793),
            (2.0, 0.995_322_265),
            (3.5, 0.999_999_257),
        ];
        for (x, expected) in cases {
            let (up, down) = (f64::from(erf(x)), f64::from(erf(-x)));
            assert!(
                (up - expected).abs() < 3e-7,
                "erf({x}) = {up} not {expected}"
            );
            assert!((down + expected).abs() < 3e-7, "erf(-{x}) = {down}");
        }
    }
}
