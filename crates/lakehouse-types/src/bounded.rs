//! Lists decoded with a cap: past `MAX` elements decoding stops with an error, so a request cannot make the
//! server build more of them than the cap, whatever its body holds.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};

/// The most items one vector batch may hold, whatever `[vector] max_batch_items` says.
pub const MAX_BATCH_ITEMS: usize = 100_000;

/// A list of at most `MAX` elements (`#[serde(deserialize_with = "bounded::list::<_, _, 10>")]`).
pub fn list<'de, D, T, const MAX: usize>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Capped<T, const MAX: usize>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for Capped<T, MAX> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of at most {MAX} elements")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX).min(1024));
            while let Some(element) = seq.next_element()? {
                if out.len() == MAX {
                    return Err(A::Error::custom(format!(
                        "the list has more than {MAX} elements, the most accepted"
                    )));
                }
                out.push(element);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_seq(Capped::<T, MAX>(PhantomData))
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Three {
        #[serde(deserialize_with = "super::list::<_, _, 3>")]
        items: Vec<u8>,
    }

    #[test]
    fn lists_are_capped() {
        let three: Three = serde_json::from_str(r#"{"items": [1, 2, 3]}"#).expect("at the cap");
        assert_eq!(three.items, vec![1, 2, 3]);
        let e = serde_json::from_str::<Three>(r#"{"items": [1, 2, 3, 4]}"#).expect_err("over");
        assert!(e.to_string().contains("more than 3 elements"), "{e}");
        let e = serde_json::from_str::<Three>(r#"{"items": 7}"#).expect_err("not a list");
        assert!(e.to_string().contains("at most 3"), "{e}");
    }
}
