//! embedd's routes: `POST /v1/embed` and the OpenAI-compatible `POST /v1/embeddings`.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};
use lakehouse_api::EmbedApi;
use lakehouse_types::embed::{EmbedRequest, EmbedResponse};
use lakehouse_types::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::{ApiJson, Ctx, HttpError};

type Svc = State<Arc<dyn EmbedApi>>;

/// Largest request body: a full batch (256 texts of 32 KiB) with room for JSON escapes; the service checks
/// the real limits and names them.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The embedding routes over `service`.
pub fn router(service: Arc<dyn EmbedApi>) -> Router {
    Router::new()
        .route("/v1/embed", post(embed))
        .route("/v1/embeddings", post(openai_embeddings))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

/// `POST /v1/embed`: `{"texts": [...]}` or `{"text": "..."}`, with an optional `model`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedBody {
    #[serde(default)]
    texts: Option<Vec<String>>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

async fn embed(
    ctx: Ctx,
    State(service): Svc,
    ApiJson(body): ApiJson<EmbedBody>,
) -> Result<Json<EmbedResponse>, HttpError> {
    let texts = match (body.texts, body.text) {
        (Some(texts), None) => texts,
        (None, Some(text)) => vec![text],
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "send either `texts` (a list) or `text` (one string), not both",
            )
            .into());
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "the body needs `texts` (a list of strings) or `text` (one string)",
            )
            .into());
        }
    };
    Ok(Json(
        service
            .embed(
                &ctx,
                EmbedRequest {
                    texts,
                    model: body.model,
                },
            )
            .await?,
    ))
}

/// OpenAI's `input`: one string or a list of strings. Token-id arrays are part of OpenAI's format but need
/// OpenAI's tokenizer, so they are refused by name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
    Other(serde_json::Value),
}

/// The OpenAI embeddings request.
#[derive(Debug, Deserialize)]
struct OpenAiRequest {
    input: Input,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
    // `user` and any other field OpenAI adds are accepted and ignored, as OpenAI-compatible servers do.
}

#[derive(Debug, Serialize)]
struct OpenAiResponse {
    object: &'static str,
    data: Vec<OpenAiItem>,
    model: String,
    usage: Usage,
}

#[derive(Debug, Serialize)]
struct OpenAiItem {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Embedding {
    Float(Vec<f32>),
    /// Little-endian f32s, base64-encoded: what OpenAI's Python client asks for by default.
    Base64(String),
}

/// Token counts are not tracked by the service; zero says so rather than guessing.
#[derive(Debug, Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}

async fn openai_embeddings(
    ctx: Ctx,
    State(service): Svc,
    ApiJson(request): ApiJson<OpenAiRequest>,
) -> Result<Json<OpenAiResponse>, HttpError> {
    let texts = match request.input {
        Input::One(text) => vec![text],
        Input::Many(texts) => texts,
        Input::Other(value) => {
            let found = match value {
                serde_json::Value::Array(_) => "token-id arrays are not supported",
                serde_json::Value::Null => "it is null",
                serde_json::Value::Bool(_) => "it is a boolean",
                serde_json::Value::Number(_) => "it is a number",
                serde_json::Value::String(_) => "it is a string that could not be read",
                serde_json::Value::Object(_) => "it is an object",
            };
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("`input` must be a string or a list of strings; {found}"),
            )
            .into());
        }
    };
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`encoding_format` must be `float` or `base64`, not `{other}`"
            ))
            .into());
        }
    };
    let answer = service
        .embed(
            &ctx,
            EmbedRequest {
                texts,
                model: request.model,
            },
        )
        .await?;
    if let Some(dimensions) = request.dimensions
        && dimensions != answer.dim
    {
        return Err(ApiError::bad_request(format!(
            "model `{}` produces {}-dimensional vectors; `dimensions` must be {} or absent",
            answer.model, answer.dim, answer.dim
        ))
        .into());
    }
    let data = answer
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| OpenAiItem {
            object: "embedding",
            index,
            embedding: if base64 {
                Embedding::Base64(encode_f32s(&vector))
            } else {
                Embedding::Float(vector)
            },
        })
        .collect();
    Ok(Json(OpenAiResponse {
        object: "list",
        data,
        model: answer.model,
        usage: Usage {
            prompt_tokens: 0,
            total_tokens: 0,
        },
    }))
}

/// Standard base64 (with padding) of the vector's little-endian bytes.
fn encode_f32s(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (position, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if position <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode_f32s;

    #[test]
    fn base64_of_floats_matches_the_standard_encoding() {
        // 1.0f32 is 00 00 80 3F little-endian; 0.5 is 00 00 00 3F.
        assert_eq!(encode_f32s(&[1.0]), "AACAPw==");
        assert_eq!(encode_f32s(&[1.0, 0.5]), "AACAPwAAAD8=");
        assert_eq!(encode_f32s(&[1.0, 0.5, -2.0]), "AACAPwAAAD8AAADA");
        assert_eq!(encode_f32s(&[]), "");
    }
}
