//! The packed encoder against candle-transformers' BERT (padded batches with an attention mask, mean pooling,
//! normalisation), over texts of many lengths in one batch, so packing and per-sequence attention are
//! checked against an independent implementation and not only against the twelve reference vectors.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use lakehouse_embed::LocalModel;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::{cosine, model_dir};

fn texts() -> Vec<String> {
    let words = [
        "forklift",
        "operator",
        "welder",
        "OSHA",
        "certified",
        "night",
        "shift",
        "Houston",
        "pallet",
        "jack",
    ];
    (0..40)
        .map(|i| {
            // Lengths from 0 to ~300 words, so some texts are truncated at 256 tokens.
            let count = (i * i * 7) % 300;
            (0..count)
                .map(|j| words[(i + j) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn candle_transformers_vectors(texts: &[String]) -> Vec<Vec<f32>> {
    let dir = model_dir();
    let device = Device::Cpu;
    let config: Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).expect("config"))
            .expect("config parses");
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &device).expect("weights");
    let model = BertModel::load(
        VarBuilder::from_tensors(tensors, DType::F32, &device),
        &config,
    )
    .expect("model");
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).expect("tokenizer");
    tokenizer.with_padding(Some(PaddingParams::default()));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: 256,
            ..TruncationParams::default()
        }))
        .expect("truncation");
    let encodings = tokenizer
        .encode_batch(texts.to_vec(), true)
        .expect("tokenises");
    let len = encodings[0].get_ids().len();
    let ids: Vec<u32> = encodings
        .iter()
        .flat_map(|e| e.get_ids().to_vec())
        .collect();
    let mask: Vec<f32> = encodings
        .iter()
        .flat_map(|e| e.get_attention_mask().iter().map(|&m| m as f32))
        .collect();
    let ids = Tensor::from_vec(ids, (texts.len(), len), &device).expect("ids");
    let mask = Tensor::from_vec(mask, (texts.len(), len), &device).expect("mask");
    let hidden = model
        .forward(&ids, &ids.zeros_like().expect("types"), Some(&mask))
        .expect("forward");
    let summed = hidden
        .broadcast_mul(&mask.unsqueeze(2).expect("mask"))
        .expect("mul")
        .sum(1)
        .expect("sum");
    let pooled = summed
        .broadcast_div(&mask.sum_keepdim(1).expect("count"))
        .expect("mean");
    pooled.to_vec2::<f32>().expect("vectors")
}

#[test]
fn packed_encoder_matches_candle_transformers_bert() {
    let texts = texts();
    let expected = candle_transformers_vectors(&texts);
    let model = LocalModel::load(&model_dir()).expect("model loads");
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let actual = model.embed(&refs).expect("embeds");
    for ((text, expected), actual) in texts.iter().zip(&expected).zip(&actual) {
        let similarity = cosine(expected, actual);
        assert!(
            similarity >= 0.99999,
            "cosine {similarity} for a text of {} bytes",
            text.len()
        );
    }
}
