//! Sentences per second of the local model over a file of sentences, at the given batch sizes.
//!
//! `cargo run --release -p lakehouse-embed --example throughput -- SENTENCES_FILE [BATCH ...]` (one sentence
//! per line; batch sizes default to 1 8 32). Each batch size makes one untimed pass over the first 64
//! sentences, then one timed pass over all of them in order. `scripts/bench/embed_compare.py` runs this and
//! sentence-transformers on the same file, so both see the same sentences in the same order.

use std::path::PathBuf;
use std::time::Instant;

use lakehouse_embed::LocalModel;
use lakehouse_embed::config::default_model_dir;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next() else {
        eprintln!("usage: throughput SENTENCES_FILE [BATCH ...]");
        std::process::exit(2);
    };
    let mut batches: Vec<usize> = args.filter_map(|a| a.parse().ok()).collect();
    if batches.is_empty() {
        batches = vec![1, 8, 32];
    }
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let sentences: Vec<&str> = text.lines().collect();
    let dir =
        std::env::var_os("LAKEHOUSE_EMBED_MODEL_DIR").map_or_else(default_model_dir, PathBuf::from);
    let model = LocalModel::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    for batch in batches {
        for chunk in sentences[..sentences.len().min(64)].chunks(batch) {
            model.embed(chunk).unwrap_or_else(|e| panic!("{e}"));
        }
        let started = Instant::now();
        for chunk in sentences.chunks(batch) {
            model.embed(chunk).unwrap_or_else(|e| panic!("{e}"));
        }
        let rate = sentences.len() as f64 / started.elapsed().as_secs_f64();
        println!("batch {batch}: {rate:.1} sentences/s");
    }
}
