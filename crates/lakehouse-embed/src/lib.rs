//! Text to vectors for Lakehouse (the `embedd` service).
//!
//! [`EmbedService`] implements [`lakehouse_api::EmbedApi`]: it resolves the requested model to a provider,
//! enforces the request limits, answers what it can from a bounded cache and sends the rest to the provider.
//!
//! Modules:
//! - [`config`]: [`EmbedConfig`], the `[embed]` settings.
//! - [`error`]: [`Error`] and its mapping onto the error-code table.
//! - [`local`]: [`LocalModel`], all-MiniLM-L6-v2 with candle (tokenise, encode, mean-pool, normalise).
//! - `encoder`, `kernels`: the BERT encoder over packed (unpadded) sequences and its fused CPU kernels.
//! - [`pool`]: [`InferencePool`], the blocking threads that run the local model, micro-batching concurrent
//!   requests into one forward pass.
//! - [`cache`]: [`EmbedCache`], the bounded cache keyed by provider, model and exact text.
//! - [`provider`]: the providers (local, Ollama, OpenAI-compatible) behind one interface.
//! - [`service`]: [`EmbedService`], the service itself.
#![deny(missing_docs)]

pub mod cache;
pub mod config;
mod encoder;
pub mod error;
mod kernels;
pub mod local;
pub mod pool;
pub mod provider;
pub mod service;

pub use cache::{CacheStats, EmbedCache};
pub use config::{EmbedConfig, ProviderKind};
pub use error::{Error, Result};
pub use local::LocalModel;
pub use pool::InferencePool;
pub use service::EmbedService;
