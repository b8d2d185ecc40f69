//! [`EmbedService`]: model selection, request limits, the cache, and the providers behind them.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use lakehouse_api::{EmbedApi, Reading, Reports};
use lakehouse_types::RequestContext;
use lakehouse_types::embed::{EmbedRequest, EmbedResponse};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::policy::{Action, Policy};

use crate::cache::{CacheStats, EmbedCache};
use crate::config::{EmbedConfig, ProviderKind};
use crate::error::{Error, Result};
use crate::provider::{LocalProvider, OllamaProvider, OpenAiProvider, Provider};

/// The embedding service: implements [`EmbedApi`] over the configured providers.
#[derive(Debug)]
pub struct EmbedService {
    local: LocalProvider,
    ollama: OllamaProvider,
    openai: Option<OpenAiProvider>,
    default_provider: ProviderKind,
    default_model: Option<String>,
    max_batch: usize,
    max_text_bytes: usize,
    preload: bool,
    cache: EmbedCache,
    policy: Arc<Policy>,
}

/// A request's model, resolved.
struct Resolved<'a> {
    provider: &'a dyn Provider,
    model: String,
}

impl EmbedService {
    /// Builds the service without loading anything; the local model loads on first use.
    pub fn new(config: &EmbedConfig) -> Result<Self> {
        let openai = match &config.openai.base_url {
            Some(url) => Some(OpenAiProvider::new(url, &config.openai)?),
            None => None,
        };
        let service = EmbedService {
            local: LocalProvider::new(config),
            ollama: OllamaProvider::new(&config.ollama)?,
            openai,
            default_provider: config.default_provider,
            default_model: config.default_model.clone(),
            max_batch: config.max_batch.max(1),
            max_text_bytes: config.max_text_bytes,
            preload: config.preload,
            cache: EmbedCache::new(&config.cache),
            policy: Arc::new(Policy::default()),
        };
        // A default that cannot resolve is a configuration error, better reported at start-up.
        service.resolve(None)?;
        Ok(service)
    }

    /// The service under `policy` (the built-in roles otherwise): embedding needs the action `embed`.
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// Builds the service and, when `config.preload` is set and the local model is the default, loads the model
    /// now so the first request does not pay for it. A model that fails to load is logged, not fatal: the
    /// service still starts, reports itself down in its health and answers requests with the reason.
    pub async fn start(config: &EmbedConfig) -> Result<Self> {
        let service = Self::new(config)?;
        if service.wants_preload()
            && let Err(err) = service.load_model().await
        {
            tracing::warn!(error = %err, "the local embedding model did not load");
        }
        Ok(service)
    }

    /// Loads the local model now (if it is not loaded yet), so the first request does not wait for it.
    pub async fn load_model(&self) -> Result<()> {
        self.local.pool().await.map(|_| ())
    }

    /// Whether the local model should be loaded at start-up: the configuration asks for it and requests that
    /// name no model go to it.
    pub fn wants_preload(&self) -> bool {
        self.preload && self.default_provider == ProviderKind::Local
    }

    /// Cache hit and miss counts, for `/metrics`.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Embeds texts with a model (as in [`EmbedRequest::model`]), checking the limits and using the cache.
    pub async fn embed_texts(
        &self,
        texts: Vec<String>,
        model: Option<&str>,
    ) -> Result<EmbedResponse> {
        self.check_limits(&texts)?;
        let Resolved { provider, model } = self.resolve(model)?;
        let cache_key: Arc<str> = format!("{}/{model}", provider.kind().as_str()).into();
        let cached = self.cache.get_many(&cache_key, &texts);

        // Each distinct uncached text goes to the provider once, however often the request repeats it.
        let mut slot_of: HashMap<&str, usize> = HashMap::new();
        let mut missing: Vec<String> = Vec::new();
        for (text, found) in texts.iter().zip(&cached) {
            if found.is_none() && !slot_of.contains_key(text.as_str()) {
                slot_of.insert(text, missing.len());
                missing.push(text.clone());
            }
        }
        let fresh: Vec<Arc<[f32]>> = if missing.is_empty() {
            Vec::new()
        } else {
            let count = missing.len();
            let vectors = provider.embed(&model, missing.clone()).await?;
            if vectors.len() != count {
                return Err(Error::ProviderProtocol {
                    provider: provider.kind().as_str(),
                    message: format!("sent {count} texts, got {} vectors back", vectors.len()),
                });
            }
            let vectors: Vec<Arc<[f32]>> = vectors.into_iter().map(Arc::from).collect();
            for (text, vector) in missing.iter().zip(&vectors) {
                self.cache.insert(&cache_key, text, Arc::clone(vector));
            }
            vectors
        };

        let mut vectors = Vec::with_capacity(texts.len());
        for (text, found) in texts.iter().zip(cached) {
            let vector = match found {
                Some(vector) => vector,
                None => match slot_of.get(text.as_str()).and_then(|&slot| fresh.get(slot)) {
                    Some(vector) => Arc::clone(vector),
                    None => {
                        return Err(Error::Inference(format!(
                            "no vector was computed for text `{text}`"
                        )));
                    }
                },
            };
            vectors.push(vector.to_vec());
        }
        let dim = vectors.first().map_or(0, Vec::len);
        if dim == 0 || vectors.iter().any(|vector| vector.len() != dim) {
            return Err(Error::ProviderProtocol {
                provider: provider.kind().as_str(),
                message: "the vectors are empty or differ in dimension".to_owned(),
            });
        }
        Ok(EmbedResponse {
            model,
            dim,
            vectors,
        })
    }

    fn check_limits(&self, texts: &[String]) -> Result<()> {
        if texts.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if texts.len() > self.max_batch {
            return Err(Error::TooManyTexts {
                count: texts.len(),
                max: self.max_batch,
            });
        }
        if let Some((index, text)) = texts
            .iter()
            .enumerate()
            .find(|(_, text)| text.len() > self.max_text_bytes)
        {
            return Err(Error::TextTooLong {
                index,
                bytes: text.len(),
                max: self.max_text_bytes,
            });
        }
        Ok(())
    }

    fn provider(&self, kind: ProviderKind) -> Result<&dyn Provider> {
        match kind {
            ProviderKind::Local => Ok(&self.local),
            ProviderKind::Ollama => Ok(&self.ollama),
            ProviderKind::Openai => match &self.openai {
                Some(openai) => Ok(openai),
                None => Err(Error::ProviderNotConfigured {
                    provider: "openai",
                    hint: "set embed.openai.base_url (and embed.openai.api_key if the service needs one)",
                }),
            },
        }
    }

    /// Resolves a request's model: absent → the configured default; `provider/model`; `provider` alone; or a
    /// bare model name that one provider serves by default.
    fn resolve(&self, requested: Option<&str>) -> Result<Resolved<'_>> {
        let Some(requested) = requested.map(str::trim) else {
            let provider = self.provider(self.default_provider)?;
            let model = self
                .default_model
                .clone()
                .unwrap_or_else(|| provider.default_model().to_owned());
            if !provider.serves(&model) {
                return Err(self.unknown(&model));
            }
            return Ok(Resolved { provider, model });
        };
        let (kind, model) = match requested.split_once('/') {
            Some((prefix, model)) => match ProviderKind::parse(prefix) {
                Some(kind) => (kind, Some(model)),
                // `sentence-transformers/all-MiniLM-L6-v2` and the like: a model name with a slash in it.
                None => return self.resolve_bare(requested),
            },
            None => match ProviderKind::parse(requested) {
                Some(kind) => (kind, None),
                None => return self.resolve_bare(requested),
            },
        };
        let provider = self.provider(kind)?;
        let model = match model {
            Some(model) if !model.is_empty() => model.to_owned(),
            Some(_) | None => provider.default_model().to_owned(),
        };
        if !provider.serves(&model) {
            return Err(self.unknown(requested));
        }
        Ok(Resolved { provider, model })
    }

    fn resolve_bare(&self, model: &str) -> Result<Resolved<'_>> {
        let candidates: [Option<&dyn Provider>; 3] = [
            Some(&self.local),
            Some(&self.ollama),
            self.openai.as_ref().map(|openai| openai as &dyn Provider),
        ];
        for provider in candidates.into_iter().flatten() {
            let serves = match provider.kind() {
                ProviderKind::Local => provider.serves(model),
                // A remote provider claims a bare name only when it is its configured model; any other name
                // for it must be written `provider/model`.
                ProviderKind::Ollama | ProviderKind::Openai => provider.default_model() == model,
            };
            if serves {
                return Ok(Resolved {
                    provider,
                    model: provider.default_model().to_owned(),
                });
            }
        }
        Err(self.unknown(model))
    }

    fn unknown(&self, requested: &str) -> Error {
        let mut available = vec![
            format!("{} (local)", self.local.default_model()),
            format!(
                "ollama/{} (or ollama/<any model pulled on the Ollama server>)",
                self.ollama.default_model()
            ),
        ];
        match &self.openai {
            Some(openai) => available.push(format!(
                "openai/{} (or openai/<any model the service offers>)",
                openai.default_model()
            )),
            None => available.push("openai/<model> once embed.openai.base_url is set".to_owned()),
        }
        Error::UnknownModel {
            requested: requested.to_owned(),
            available: available.join(", "),
        }
    }
}

#[async_trait]
impl EmbedApi for EmbedService {
    async fn embed(
        &self,
        ctx: &RequestContext,
        request: EmbedRequest,
    ) -> lakehouse_api::Result<EmbedResponse> {
        self.policy.require(&ctx.caller, Action::Embed)?;
        Ok(self
            .embed_texts(request.texts, request.model.as_deref())
            .await?)
    }

    async fn health(&self) -> ServiceHealth {
        let provider = match self.provider(self.default_provider) {
            Ok(provider) => provider,
            Err(err) => return ServiceHealth::down("local", err.to_string()),
        };
        let stats = self.cache.stats();
        let health = match provider.check().await {
            Ok(details) => ServiceHealth::ok("local")
                .with_detail("provider", provider.kind().as_str())
                .with_detail("default", details),
            Err(err) => ServiceHealth::down("local", err.to_string())
                .with_detail("provider", provider.kind().as_str()),
        };
        health.with_detail(
            "cache",
            serde_json::json!({"hits": stats.hits, "misses": stats.misses, "entries": stats.entries}),
        )
    }
}

impl Reports for EmbedService {
    fn readings(&self) -> Vec<Reading> {
        let s = self.cache_stats();
        vec![
            Reading::counter(
                "embed_cache_hits",
                "Texts answered from the embedding cache",
                s.hits,
            ),
            Reading::counter(
                "embed_cache_misses",
                "Texts the embedding cache sent to a provider",
                s.misses,
            ),
            Reading::gauge(
                "embed_cache_entries",
                "Embeddings held in the cache",
                s.entries,
            ),
            Reading::gauge(
                "embed_cache_bytes",
                "Bytes held by the embedding cache, as weighed for its bound",
                s.bytes,
            ),
        ]
    }
}
