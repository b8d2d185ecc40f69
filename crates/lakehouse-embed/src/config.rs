//! The `[embed]` section of the configuration.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The name of the built-in local model.
pub const LOCAL_MODEL: &str = "all-MiniLM-L6-v2";

/// Which provider answers requests that name no model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// The built-in model, run in this process.
    Local,
    /// An Ollama server's `/api/embed`.
    Ollama,
    /// Any OpenAI-compatible `/v1/embeddings`.
    Openai,
}

impl ProviderKind {
    /// The name used in `provider/model` and in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Openai => "openai",
        }
    }

    /// The provider for a name, as written before the `/` of `provider/model`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "local" => Some(ProviderKind::Local),
            "ollama" => Some(ProviderKind::Ollama),
            "openai" => Some(ProviderKind::Openai),
            _ => None,
        }
    }
}

/// Embedding service settings (`[embed]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedConfig {
    /// The provider used when a request names no model.
    pub default_provider: ProviderKind,
    /// The model used when a request names none; `None` means the default provider's own model.
    pub default_model: Option<String>,
    /// Where the local model's files are (`model.safetensors`, `tokenizer.json`, `config.json`).
    pub model_dir: PathBuf,
    /// The Ollama provider.
    pub ollama: OllamaConfig,
    /// The OpenAI-compatible provider.
    pub openai: OpenAiConfig,
    /// The cache in front of every provider.
    pub cache: CacheConfig,
    /// Most texts one request may carry.
    pub max_batch: usize,
    /// Longest text, in bytes, one request may carry.
    pub max_text_bytes: usize,
    /// Inference threads for the local model. Each forward pass already spreads its matrix products over
    /// every core, so one thread per process is the right default; more helps only on many-core machines.
    pub threads: usize,
    /// How long, in microseconds, the local model waits after a request arrives to gather concurrent ones
    /// into the same forward pass.
    pub batch_window_us: u64,
    /// Texts allowed to wait for the local model before requests are refused with 503.
    pub max_queued_texts: usize,
    /// Whether to load the local model when the service starts (otherwise on first use).
    pub preload: bool,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            default_provider: ProviderKind::Local,
            default_model: None,
            model_dir: default_model_dir(),
            ollama: OllamaConfig::default(),
            openai: OpenAiConfig::default(),
            cache: CacheConfig::default(),
            max_batch: 256,
            max_text_bytes: 32 * 1024,
            threads: 1,
            batch_window_us: 1_000,
            max_queued_texts: 8_192,
            preload: true,
        }
    }
}

/// The default local model directory: `<user cache dir>/lakehouse/models/all-MiniLM-L6-v2`.
pub fn default_model_dir() -> PathBuf {
    // Without a cache dir (no HOME) fall back to a path relative to the working directory, which the
    // missing-model error will name.
    dirs::cache_dir()
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("lakehouse")
        .join("models")
        .join(LOCAL_MODEL)
}

/// The Ollama provider (`[embed.ollama]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OllamaConfig {
    /// The server, e.g. `http://127.0.0.1:11434`.
    pub base_url: String,
    /// The model asked for when a request names the provider only.
    pub model: String,
    /// Per-attempt timeout, in seconds.
    pub timeout_secs: f64,
    /// Attempts after the first on connection errors, timeouts, 429 and 5xx.
    pub retries: u32,
}

impl Default for OllamaConfig {
    fn default() -> Self {
        OllamaConfig {
            base_url: "http://127.0.0.1:11434".to_owned(),
            model: "nomic-embed-text".to_owned(),
            timeout_secs: 30.0,
            retries: 2,
        }
    }
}

impl OllamaConfig {
    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        secs(self.timeout_secs)
    }
}

/// The OpenAI-compatible provider (`[embed.openai]`).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The API base, up to and including `/v1` (e.g. `https://api.openai.com/v1`); unset disables the provider.
    pub base_url: Option<String>,
    /// The model asked for when a request names the provider only.
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
    /// Per-attempt timeout, in seconds.
    pub timeout_secs: f64,
    /// Attempts after the first on connection errors, timeouts, 429 and 5xx.
    pub retries: u32,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: None,
            model: "text-embedding-3-small".to_owned(),
            api_key: None,
            timeout_secs: 30.0,
            retries: 2,
        }
    }
}

impl OpenAiConfig {
    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        secs(self.timeout_secs)
    }
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("timeout_secs", &self.timeout_secs)
            .field("retries", &self.retries)
            .finish()
    }
}

/// The cache in front of every provider (`[embed.cache]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Most entries kept; 0 disables the cache.
    pub max_entries: u64,
    /// Most bytes (texts and vectors) kept.
    pub max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        // About 20,000 384-d vectors with their texts: a working set of queries and profiles that stays a small
        // part of the process's memory budget.
        CacheConfig {
            max_entries: 20_000,
            max_bytes: 32 * 1024 * 1024,
        }
    }
}

fn secs(value: f64) -> Duration {
    // A nonsensical value (negative, NaN) falls back to the default rather than panicking in Duration.
    Duration::try_from_secs_f64(value).unwrap_or(Duration::from_secs(30))
}
