//! Object key rules, shared by storaged and its HTTP client: 1–1024 bytes of `A-Z a-z 0-9 . _ - /`, no empty,
//! `.` or `..` segment, no leading `/`.

/// Prefixes that hold the services' own data; only the admin role may write under them.
pub const RESERVED_PREFIXES: &[&str] = &["datasets/", "_catalog/", "vectors/", "recordings/"];

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

fn allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'/')
}

/// Checks a full object key.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".to_owned());
    }
    check_bytes(key)?;
    if key.starts_with('/') {
        return Err(format!("{} starts with '/'; keys are relative", shown(key)));
    }
    for segment in key.split('/') {
        match segment {
            "" => {
                return Err(format!(
                    "{} has an empty path segment (a doubled or trailing '/')",
                    shown(key)
                ));
            }
            "." | ".." => {
                return Err(format!("{} has a {segment:?} path segment", shown(key)));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a LIST prefix: the same alphabet and length, but it may be empty, end in `/` or stop mid-segment.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    check_bytes(prefix)?;
    if prefix.starts_with('/') {
        return Err(format!("prefix {} starts with '/'", shown(prefix)));
    }
    let complete_segments = prefix.split('/').rev().skip(1);
    for segment in complete_segments {
        if matches!(segment, "" | "." | "..") {
            return Err(format!(
                "prefix {} has an empty, '.' or '..' segment",
                shown(prefix)
            ));
        }
    }
    Ok(())
}

/// The reserved prefix `key` falls under, if any.
pub fn reserved_prefix(key: &str) -> Option<&'static str> {
    RESERVED_PREFIXES
        .iter()
        .copied()
        .find(|prefix| key.starts_with(prefix))
}

fn check_bytes(key: &str) -> Result<(), String> {
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "the key is {} bytes long; the limit is {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    if let Some((index, ch)) = key
        .char_indices()
        .find(|(_, ch)| !ch.is_ascii() || !allowed(*ch as u8))
    {
        return Err(format!(
            "{} has the character {ch:?} at byte {index}; keys may use only A-Z a-z 0-9 . _ - /",
            shown(key)
        ));
    }
    Ok(())
}

/// The key as shown in a message: escaped, and cut when long.
fn shown(key: &str) -> String {
    let cut: String = key.chars().take(80).collect();
    if cut.len() < key.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_keys_pass() {
        for key in [
            "a",
            "a/b/c.csv",
            "A-Z_0.9/x",
            "datasets/x",
            "..a/b..",
            "a/.hidden",
        ] {
            validate_key(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        validate_key(&"k".repeat(MAX_KEY_BYTES)).expect("1024 bytes is allowed");
    }

    #[test]
    fn bad_keys_fail_with_a_reason() {
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("/abs", "starts with '/'"),
            ("a/../b", "\"..\""),
            ("..", "\"..\""),
            ("a/./b", "\".\""),
            ("a//b", "empty path segment"),
            ("a/", "empty path segment"),
            ("a\nb", "'\\n'"),
            ("a\u{0}b", "'\\0'"),
            ("a b", "' '"),
            ("é", "'é'"),
            ("a%2e", "'%'"),
            ("a\\b", "'\\\\'"),
            (&long, "limit is 1024"),
        ];
        for (key, expected) in cases {
            let err = validate_key(key).expect_err(key);
            assert!(
                err.contains(expected),
                "{key:?}: {err:?} should mention {expected}"
            );
        }
    }

    #[test]
    fn prefixes_may_be_partial() {
        for prefix in ["", "a", "a/", "a/b", "a/b/c."] {
            validate_prefix(prefix).unwrap_or_else(|e| panic!("{prefix}: {e}"));
        }
        for prefix in ["/a", "a//", "../a", "a/../", "a b"] {
            assert!(validate_prefix(prefix).is_err(), "{prefix} should fail");
        }
    }

    #[test]
    fn reserved_prefixes_are_found() {
        assert_eq!(reserved_prefix("datasets/x/y"), Some("datasets/"));
        assert_eq!(reserved_prefix("_catalog/a"), Some("_catalog/"));
        assert_eq!(reserved_prefix("datasets"), None);
        assert_eq!(reserved_prefix("user/datasets/x"), None);
    }

    /// Keys from the pieces the rules are about: never a panic, and every key accepted keeps every rule.
    #[test]
    fn fuzz_keys() {
        use lakehouse_test_helpers::fuzz::{Gen, cases};
        let pieces = [
            "a",
            "Z",
            "9",
            ".",
            "..",
            "/",
            "//",
            "_",
            "-",
            " ",
            "é",
            "\\",
            "%2e",
            "\u{0}",
            "datasets/",
        ];
        let mut g = Gen::new(3);
        for _ in 0..cases(50_000) {
            let mut key = g.join(&pieces, 12);
            if g.one_in(100) {
                key = "k".repeat(MAX_KEY_BYTES - 2 + g.below(4));
            }
            if validate_key(&key).is_ok() {
                assert!(!key.is_empty() && key.len() <= MAX_KEY_BYTES, "{key:?}");
                assert!(key.bytes().all(allowed), "{key:?}");
                assert!(
                    key.split('/').all(|s| !matches!(s, "" | "." | "..")),
                    "{key:?}"
                );
            }
            if validate_prefix(&key).is_ok() {
                assert!(
                    key.len() <= MAX_KEY_BYTES && key.bytes().all(allowed),
                    "{key:?}"
                );
                assert!(!key.starts_with('/'), "{key:?}");
            }
        }
    }
}
