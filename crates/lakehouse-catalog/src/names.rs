//! Dataset name rules.
//!
//! A name is also an SQL table name and a path segment, so it is kept to lowercase ASCII letters, digits,
//! `_` and `-`, starting with a letter or `_`, at most 128 bytes. Lowercase only: SQL folds unquoted names to
//! lowercase, and `Workers` and `workers` being two datasets would surprise everyone. `@` is reserved for
//! versions in SQL (`"workers@v3"`).

use crate::{Error, Result};

/// The longest name allowed.
pub const MAX_NAME_LEN: usize = 128;

/// Checks a dataset name.
pub fn validate_name(name: &str) -> Result<()> {
    let fail = |reason: &str| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() {
        return fail("a name must not be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return fail("a name is at most 128 bytes");
    }
    let mut chars = name.chars();
    if !chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
    {
        return fail("a name starts with a lowercase letter or '_'");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
        return fail("a name holds only lowercase letters, digits, '_' and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["workers", "job_orders", "_x", "t-2024"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Workers",
            "1x",
            "a/b",
            "a@v1",
            "..",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
