//! Recall against ef_search on generated data (exploration aid).
use lakehouse_types::vector::Metric;
use lakehouse_vector::exact;
use lakehouse_vector::hnsw::{Hnsw, HnswParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() {
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dim = 384;
    let noise: f32 = std::env::var("NOISE").ok().and_then(|v| v.parse().ok()).unwrap_or(0.35);
    let rank: usize = std::env::var("RANK").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut rng = StdRng::seed_from_u64(7);
    let clusters = 64;
    let centres: Vec<Vec<f32>> = (0..clusters).map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect();
    let bases: Vec<Vec<Vec<f32>>> = (0..clusters).map(|_| (0..rank).map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect()).collect();
    let make = |rng: &mut StdRng| {
        let c = rng.random_range(0..clusters);
        let mut v: Vec<f32> = centres[c].iter().map(|x| x + rng.random_range(-noise..noise)).collect();
        for b in &bases[c] {
            let w = rng.random_range(-1.0f32..1.0);
            for (x, y) in v.iter_mut().zip(b) { *x += w * y; }
        }
        v
    };
    let data: Vec<Vec<f32>> = (0..n).map(|_| make(&mut rng)).collect();
    let queries: Vec<Vec<f32>> = (0..100).map(|_| make(&mut rng)).collect();
    let mut h = Hnsw::new(dim, Metric::Cosine, HnswParams::default()).unwrap();
    let t = std::time::Instant::now();
    let items: Vec<(u64, &[f32])> = data.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())).collect();
    h.add_many(&items).unwrap();
    eprintln!("build {:?}", t.elapsed());
    let truth: Vec<Vec<u64>> = queries.iter().map(|q| exact::search(Metric::Cosine, q, 10, items.iter().copied()).into_iter().map(|x| x.0).collect()).collect();
    let ex: Vec<Vec<u64>> = queries.iter().map(|q| h.exact_search(q, 10).unwrap().into_iter().map(|x| x.0).collect()).collect();
    let agree: usize = truth.iter().zip(&ex).map(|(t, e)| e.iter().filter(|k| t.contains(k)).count()).sum();
    eprintln!("usearch exact vs rust exact: {}", agree as f64 / 1000.0);
    for ef in [16, 32, 64, 128, 256, 512] {
        h.set_expansion_search(ef);
        let t = std::time::Instant::now();
        let got: usize = queries.iter().zip(&truth).map(|(q, t)| h.search(q, 10).unwrap().iter().filter(|x| t.contains(&x.0)).count()).sum();
        eprintln!("ef {ef}: recall {:.3} in {:?}", got as f64 / 1000.0, t.elapsed());
    }
}
