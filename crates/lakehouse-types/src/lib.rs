//! Wire types shared by every Lakehouse service.
//!
//! No HTTP framework and no IO here: these are the serde structs that cross the seam between services
//! (in-process or over the network) and the one table of error codes with their HTTP statuses.
//!
//! Modules:
//! - [`error`]: [`ErrorCode`] (code → status) and [`ApiError`], the error every service interface returns.
//! - [`auth`]: [`Caller`] and [`Role`], who is making a request.
//! - [`health`]: the `/health` body.
//! - [`keys`]: the object key rules.
//! - [`storage`]: object metadata and listing types.
//! - [`dataset`]: catalog, ingest and SQL types.
//! - [`embed`]: embedding requests and responses.
//! - [`vector`]: vector index requests and responses.
//! - [`filter`]: the filter language of vector and matrix search.
//! - [`policy`]: what each role may see and do.
//! - [`matrix`]: matrix search requests and responses.
//! - [`bounded`]: lists decoded with a cap.
//! - [`text`]: answers as text tables.
#![deny(missing_docs)]

pub mod auth;
pub mod bounded;
pub mod dataset;
pub mod embed;
pub mod error;
pub mod filter;
pub mod health;
pub mod keys;
pub mod matrix;
pub mod policy;
pub mod storage;
pub mod text;
pub mod vector;

pub use auth::{Caller, RequestContext, Role};
pub use error::{ApiError, ErrorCode};

#[cfg(test)]
mod tests {
    use lakehouse_test_helpers::fuzz::{Gen, cases};

    /// Near-misses of every JSON request body: decoding answers or refuses, never panics, and what decodes
    /// encodes again.
    #[test]
    fn fuzz_request_bodies() {
        fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(bytes: &[u8]) {
            if let Ok(value) = serde_json::from_slice::<T>(bytes) {
                serde_json::to_vec(&value).expect("a decoded request encodes");
            }
        }
        type Decode = fn(&[u8]);
        let bodies: [(&str, Decode); 7] = [
            (
                r#"{"sql": "SELECT 1", "max_rows": 10}"#,
                round_trip::<crate::dataset::SqlRequest>,
            ),
            (
                r#"{"texts": ["a", "b"]}"#,
                round_trip::<crate::embed::EmbedRequest>,
            ),
            (
                r#"{"vector": [0.1, -2e3], "k": 5, "filter": {"state": "TX"}}"#,
                round_trip::<crate::vector::SearchRequest>,
            ),
            (
                r#"{"items": [{"id": "a", "vector": [1.0, 0.5], "metadata": {"x": 1}}]}"#,
                round_trip::<crate::vector::AddRequest>,
            ),
            (
                r#"{"name": "i", "dim": 384, "metric": "cosine"}"#,
                round_trip::<crate::vector::CreateIndexRequest>,
            ),
            (
                r#"{"query": "forklift", "k": 10, "filters": {"state": "TX"}, "corpora": ["w"], "mode": "hybrid"}"#,
                round_trip::<crate::matrix::MatrixSearchRequest>,
            ),
            (
                concat!(
                    r#"{"name": "w", "dataset": "workers", "id_column": "id", "text": "{a} {b}", "#,
                    r#""rules": [{"field": "s", "equals": "x"}]}"#
                ),
                round_trip::<crate::matrix::CorpusDefinition>,
            ),
        ];
        let mut g = Gen::new(4);
        for _ in 0..cases(20_000) {
            let (body, decode) = g.pick(&bodies);
            decode(&g.mutate(body));
        }
    }
}
