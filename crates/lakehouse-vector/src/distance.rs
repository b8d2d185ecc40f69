//! Distance kernels for the graph: f32 dot product and squared Euclidean distance.
//!
//! The graph walk spends most of its time here, so the kernel is picked once per index: AVX-512F or AVX2
//! with FMA when the CPU has them (checked at run time), else a portable loop written with eight independent
//! accumulators so the compiler can keep them in vector registers. The distances are the HNSW library
//! definitions the rest of the crate uses (see [`crate::exact`]): `1 − a·b` for inner product (and for
//! cosine over unit vectors), the squared L2 distance, and the full cosine distance for graphs that store
//! vectors at their original length (snapshots written before cosine indexes stored unit vectors).
//!
//! Written here rather than taken from a crate: the two loops are short, and owning them keeps the build
//! free of C toolchains and lets the graph call them through one plain function pointer.

/// A distance between two vectors of the same length; lower is nearer.
pub(crate) type DistanceFn = fn(&[f32], &[f32]) -> f32;

/// Which distance a graph computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// `1 − a·b` (inner product, and cosine over unit vectors).
    Ip,
    /// Squared Euclidean distance.
    L2,
    /// `1 − a·b / (|a| |b|)`, for graphs holding vectors at their original length.
    Cos,
}

impl Kernel {
    /// The code the snapshot format stores.
    pub(crate) fn code(self) -> u8 {
        match self {
            Kernel::Ip => 0,
            Kernel::L2 => 1,
            Kernel::Cos => 2,
        }
    }

    /// The kernel a stored code names.
    pub(crate) fn from_code(code: u8) -> Option<Kernel> {
        match code {
            0 => Some(Kernel::Ip),
            1 => Some(Kernel::L2),
            2 => Some(Kernel::Cos),
            _ => None,
        }
    }

    /// The fastest implementation this CPU runs, and the instruction set it uses.
    pub(crate) fn select(self) -> (DistanceFn, &'static str) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            return match self {
                Kernel::Ip => (avx512::ip_distance, "avx512f"),
                Kernel::L2 => (avx512::l2_distance, "avx512f"),
                Kernel::Cos => (cos_distance, "portable"),
            };
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return match self {
                Kernel::Ip => (avx2::ip_distance, "avx2+fma"),
                Kernel::L2 => (avx2::l2_distance, "avx2+fma"),
                Kernel::Cos => (cos_distance, "portable"),
            };
        }
        match self {
            Kernel::Ip => (ip_distance, "portable"),
            Kernel::L2 => (l2_distance, "portable"),
            Kernel::Cos => (cos_distance, "portable"),
        }
    }
}

const LANES: usize = 8;

/// The dot product with eight independent partial sums (vectorisable).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut left = a.chunks_exact(LANES);
    let mut right = b.chunks_exact(LANES);
    for (x, y) in (&mut left).zip(&mut right) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = left
        .remainder()
        .iter()
        .zip(right.remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// The squared Euclidean distance with eight independent partial sums (vectorisable).
pub(crate) fn l2_distance(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut left = a.chunks_exact(LANES);
    let mut right = b.chunks_exact(LANES);
    for (x, y) in (&mut left).zip(&mut right) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let tail: f32 = left
        .remainder()
        .iter()
        .zip(right.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// `1 − a·b`.
pub(crate) fn ip_distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - dot(a, b)
}

/// The cosine distance of vectors of any length; 1 when either is all zeros.
pub(crate) fn cos_distance(a: &[f32], b: &[f32]) -> f32 {
    let (ab, aa, bb) = (dot(a, b), dot(a, a), dot(b, b));
    let norms = (aa * bb).sqrt();
    if norms == 0.0 { 1.0 } else { 1.0 - ab / norms }
}

/// Starts loading the cache line at `p` (a no-op where there is no prefetch instruction).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults or dereferences in the language's sense, whatever
    // the address.
    #[allow(unsafe_code)]
    unsafe {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use core::arch::x86_64::*;

    /// `1 − a·b` on AVX2/FMA. Only handed out by [`super::Kernel::select`] after it checked both features.
    pub(super) fn ip_distance(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: this function is reachable only through `Kernel::select`, which returns it only when the
        // running CPU reports AVX2 and FMA.
        1.0 - unsafe { dot(a, b) }
    }

    /// Squared L2 on AVX2/FMA; the same guarantee as [`ip_distance`].
    pub(super) fn l2_distance(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as in `ip_distance`: only selected on CPUs with AVX2 and FMA.
        unsafe { l2(a, b) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn sum8(v: __m256) -> f32 {
        let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let quad = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
        let one = _mm_add_ss(quad, _mm_shuffle_ps::<0b01>(quad, quad));
        _mm_cvtss_f32(one)
    }

    #[target_feature(enable = "avx2,fma")]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, sum) in acc.iter_mut().enumerate() {
                // SAFETY: i + 32 <= n, so the 8 floats at i + 8·j (j < 4) lie inside both slices.
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_ps(pa.add(i + 8 * j)),
                        _mm256_loadu_ps(pb.add(i + 8 * j)),
                    )
                };
                *sum = _mm256_fmadd_ps(x, y, *sum);
            }
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, so the 8 floats at i lie inside both slices.
            let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut result = sum8(total);
        for k in i..n {
            result += a[k] * b[k];
        }
        result
    }

    #[target_feature(enable = "avx2,fma")]
    fn l2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, sum) in acc.iter_mut().enumerate() {
                // SAFETY: i + 32 <= n, so the 8 floats at i + 8·j (j < 4) lie inside both slices.
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_ps(pa.add(i + 8 * j)),
                        _mm256_loadu_ps(pb.add(i + 8 * j)),
                    )
                };
                let d = _mm256_sub_ps(x, y);
                *sum = _mm256_fmadd_ps(d, d, *sum);
            }
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, so the 8 floats at i lie inside both slices.
            let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
            let d = _mm256_sub_ps(x, y);
            acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
            i += 8;
        }
        let total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut result = sum8(total);
        for k in i..n {
            let d = a[k] - b[k];
            result += d * d;
        }
        result
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use core::arch::x86_64::*;

    /// `1 − a·b` on AVX-512F. Only handed out by [`super::Kernel::select`] after it checked the feature.
    pub(super) fn ip_distance(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: reachable only through `Kernel::select`, which returns it only when the running CPU
        // reports AVX-512F.
        1.0 - unsafe { dot(a, b) }
    }

    /// Squared L2 on AVX-512F; the same guarantee as [`ip_distance`].
    pub(super) fn l2_distance(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as in `ip_distance`: only selected on CPUs with AVX-512F.
        unsafe { l2(a, b) }
    }

    #[target_feature(enable = "avx512f")]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut i = 0;
        while i + 32 <= n {
            for (j, sum) in acc.iter_mut().enumerate() {
                // SAFETY: i + 32 <= n, so the 16 floats at i + 16·j (j < 2) lie inside both slices.
                let (x, y) = unsafe {
                    (
                        _mm512_loadu_ps(pa.add(i + 16 * j)),
                        _mm512_loadu_ps(pb.add(i + 16 * j)),
                    )
                };
                *sum = _mm512_fmadd_ps(x, y, *sum);
            }
            i += 32;
        }
        while i + 16 <= n {
            // SAFETY: i + 16 <= n, so the 16 floats at i lie inside both slices.
            let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i))) };
            acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
            i += 16;
        }
        let mut result = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
        for k in i..n {
            result += a[k] * b[k];
        }
        result
    }

    #[target_feature(enable = "avx512f")]
    fn l2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut i = 0;
        while i + 32 <= n {
            for (j, sum) in acc.iter_mut().enumerate() {
                // SAFETY: i + 32 <= n, so the 16 floats at i + 16·j (j < 2) lie inside both slices.
                let (x, y) = unsafe {
                    (
                        _mm512_loadu_ps(pa.add(i + 16 * j)),
                        _mm512_loadu_ps(pb.add(i + 16 * j)),
                    )
                };
                let d = _mm512_sub_ps(x, y);
                *sum = _mm512_fmadd_ps(d, d, *sum);
            }
            i += 32;
        }
        while i + 16 <= n {
            // SAFETY: i + 16 <= n, so the 16 floats at i lie inside both slices.
            let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i))) };
            let d = _mm512_sub_ps(x, y);
            acc[0] = _mm512_fmadd_ps(d, d, acc[0]);
            i += 16;
        }
        let mut result = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
        for k in i..n {
            let d = a[k] - b[k];
            result += d * d;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_the_plain_definitions() {
        for n in [0usize, 1, 7, 8, 9, 31, 32, 33, 64, 100, 384] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0).collect();
            let dot_plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let l2_plain: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
            for (kernel, expected) in [(Kernel::Ip, 1.0 - dot_plain), (Kernel::L2, l2_plain)] {
                let (fast, _) = kernel.select();
                let got = fast(&a, &b);
                assert!(
                    (got - expected).abs() < 1e-3,
                    "{kernel:?} n={n}: {got} vs {expected}"
                );
            }
            assert!((ip_distance(&a, &b) - (1.0 - dot_plain)).abs() < 1e-3);
            assert!((l2_distance(&a, &b) - l2_plain).abs() < 1e-3);
        }
        assert_eq!(cos_distance(&[0.0, 0.0], &[1.0, 0.0]), 1.0);
        assert!(cos_distance(&[2.0, 0.0], &[1.0, 0.0]).abs() < 1e-6);
    }
}
