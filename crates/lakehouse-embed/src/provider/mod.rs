//! The providers behind one interface: the built-in local model, Ollama and any OpenAI-compatible service.
//!
//! Modules:
//! - [`local`]: [`LocalProvider`], the model loaded on first use and run on the [`crate::InferencePool`].
//! - [`ollama`]: [`OllamaProvider`], Ollama's batch `/api/embed`.
//! - [`openai`]: [`OpenAiProvider`], `POST {base_url}/embeddings`.
//! - `http`: what the remote providers share (timeouts, bounded retries, error classification).

mod http;
pub mod local;
pub mod ollama;
pub mod openai;

use async_trait::async_trait;

pub use local::LocalProvider;
pub use ollama::OllamaProvider;
pub use openai::OpenAiProvider;

use crate::config::ProviderKind;
use crate::error::Result;

/// Something that turns texts into vectors.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// The model asked for when a request names only the provider (or nothing, for the default provider).
    fn default_model(&self) -> &str;

    /// Whether this provider serves `model`. The local provider serves its one model; a remote one serves
    /// whatever its server has, so any name is passed on and the server decides.
    fn serves(&self, model: &str) -> bool;

    /// Embeds texts with a model, one vector per text, in order. `texts` is never empty.
    async fn embed(&self, model: &str, texts: Vec<String>) -> Result<Vec<Vec<f32>>>;

    /// Checks that the provider can embed: the model loads, the server answers.
    async fn check(&self) -> Result<serde_json::Value>;
}
