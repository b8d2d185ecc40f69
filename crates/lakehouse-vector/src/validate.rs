//! Request validation: names, limits, batches and query vectors, all checked before anything is written.

use std::collections::HashMap;

use lakehouse_types::vector::{AddItem, Metadata, Metric};

use crate::error::{Error, Result};

/// Longest id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 512;
/// Largest metadata object accepted per item, serialised.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Largest dimension accepted.
pub const MAX_DIM: usize = 4096;

/// Checks an index name: `[a-z0-9_-]{1,64}`.
pub fn index_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

/// Checks a dimension: 1..=4096.
pub fn dimension(dim: usize) -> Result<()> {
    if (1..=MAX_DIM).contains(&dim) {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "dim must be between 1 and {MAX_DIM}, got {dim}"
        )))
    }
}

/// Checks `k`: 1..=max.
pub fn k(k: usize, max: usize) -> Result<()> {
    if (1..=max).contains(&k) {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "k must be between 1 and {max}, got {k}"
        )))
    }
}

/// Why a vector cannot be stored or searched with, if it cannot.
pub fn vector_problem(vector: &[f32], dim: usize, metric: Metric) -> Option<String> {
    if vector.len() != dim {
        return Some(format!(
            "vector has {} dimensions, the index has {dim}",
            vector.len()
        ));
    }
    if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
        return Some(format!(
            "vector[{i}] is {}, only finite numbers are allowed",
            vector[i]
        ));
    }
    if metric == Metric::Cosine && vector.iter().all(|x| *x == 0.0) {
        return Some(
            "vector is all zeros, which has no direction for cosine similarity".to_owned(),
        );
    }
    None
}

/// A batch item that passed validation; `vector` is `None` until its `text` is embedded.
#[derive(Debug, Clone)]
pub struct ValidItem {
    /// Position in the batch.
    pub position: usize,
    /// The id.
    pub id: String,
    /// The vector, when given.
    pub vector: Option<Vec<f32>>,
    /// The text to embed, when no vector was given.
    pub text: Option<String>,
    /// The metadata.
    pub metadata: Metadata,
}

/// Validates every item of a batch; the first problem found is the error, naming the item.
pub fn batch(
    items: Vec<AddItem>,
    dim: usize,
    metric: Metric,
    max_items: usize,
) -> Result<Vec<ValidItem>> {
    if items.len() > max_items {
        return Err(Error::BatchTooLarge {
            got: items.len(),
            max: max_items,
        });
    }
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
    let mut valid = Vec::with_capacity(items.len());
    for (position, item) in items.into_iter().enumerate() {
        let invalid = |id: Option<&str>, reason: String, vector: bool| Error::InvalidItem {
            position,
            id: id.map(str::to_owned),
            reason,
            vector,
        };
        let Some(id) = item.id else {
            return Err(invalid(None, "has no id".to_owned(), false));
        };
        if id.is_empty() {
            return Err(invalid(None, "has an empty id".to_owned(), false));
        }
        if id.len() > MAX_ID_BYTES {
            return Err(invalid(
                None,
                format!("id is {} bytes, at most {MAX_ID_BYTES} allowed", id.len()),
                false,
            ));
        }
        if let Some(first) = seen.get(&id) {
            let reason = format!("id appears twice in the batch (first at items[{first}])");
            return Err(invalid(Some(&id), reason, false));
        }
        match (&item.vector, &item.text) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    Some(&id),
                    "has both vector and text; send one".to_owned(),
                    false,
                ));
            }
            (None, None) => {
                return Err(invalid(
                    Some(&id),
                    "has neither vector nor text".to_owned(),
                    true,
                ));
            }
            (Some(vector), None) => {
                if let Some(problem) = vector_problem(vector, dim, metric) {
                    return Err(invalid(Some(&id), problem, true));
                }
            }
            (None, Some(_)) => {}
        }
        let metadata = item.metadata.unwrap_or_default();
        let size = serde_json::to_vec(&metadata)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_METADATA_BYTES {
            let reason = format!(
                "metadata is {size} bytes serialised, at most {MAX_METADATA_BYTES} allowed"
            );
            return Err(invalid(Some(&id), reason, false));
        }
        seen.insert(id.clone(), position);
        valid.push(ValidItem {
            position,
            id,
            vector: item.vector,
            text: item.text,
            metadata,
        });
    }
    Ok(valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: Option<&str>, vector: Option<Vec<f32>>) -> AddItem {
        AddItem {
            id: id.map(str::to_owned),
            vector,
            text: None,
            metadata: None,
        }
    }

    #[test]
    fn names() {
        assert!(index_name("workers_v2-a").is_ok());
        for bad in ["", "Workers", "a b", "a/b", "ü", &"x".repeat(65)] {
            assert!(
                matches!(index_name(bad), Err(Error::InvalidName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn batch_errors_name_the_item() {
        let ok = || item(Some("a"), Some(vec![1.0, 0.0]));
        let cases: Vec<(Vec<AddItem>, usize, bool)> = vec![
            (vec![ok(), item(None, Some(vec![1.0, 0.0]))], 1, false),
            (vec![ok(), item(Some("b"), Some(vec![1.0]))], 1, true),
            (
                vec![ok(), item(Some("b"), Some(vec![f32::NAN, 0.0]))],
                1,
                true,
            ),
            (
                vec![ok(), item(Some("b"), Some(vec![f32::INFINITY, 0.0]))],
                1,
                true,
            ),
            (vec![ok(), item(Some("b"), Some(vec![0.0, 0.0]))], 1, true),
            (vec![ok(), ok()], 1, false),
            (vec![item(Some("b"), None)], 0, true),
            (vec![item(Some(""), Some(vec![1.0, 0.0]))], 0, false),
        ];
        for (items, at, is_vector) in cases {
            match batch(items, 2, Metric::Cosine, 10) {
                Err(Error::InvalidItem {
                    position, vector, ..
                }) => {
                    assert_eq!((position, vector), (at, is_vector));
                }
                other => panic!("expected an invalid item, got {other:?}"),
            }
        }
        let too_many = (0..11)
            .map(|i| item(Some(&i.to_string()), Some(vec![1.0, 0.0])))
            .collect();
        assert!(matches!(
            batch(too_many, 2, Metric::Cosine, 10),
            Err(Error::BatchTooLarge { .. })
        ));
        // Zero vectors are fine for L2.
        assert!(
            batch(
                vec![item(Some("z"), Some(vec![0.0, 0.0]))],
                2,
                Metric::L2,
                10
            )
            .is_ok()
        );
    }
}
