//! The web page: `GET /` and `GET /assets/<path>`, served by the gateway.
//!
//! The files of `crates/lakehouse-server/page/` are compiled into the binary (rust-embed, embedding in debug
//! builds too, so a test binary is self-contained). When `LAKEHOUSE_PAGE_DIR` names a folder, files are read
//! from it on every request instead: edit the page and reload, no rebuild. Every answer carries an ETag (a
//! conditional GET gets 304) and a Content-Security-Policy that lets the page reach its own server only.

use std::borrow::Cow;
use std::path::PathBuf;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lakehouse_types::{ApiError, ErrorCode};
use rust_embed::RustEmbed;

use crate::HttpError;

#[derive(RustEmbed)]
#[folder = "page/"]
struct Assets;

/// The environment variable naming a folder to serve the page from instead of the compiled-in files.
pub const PAGE_DIR_ENV: &str = "LAKEHOUSE_PAGE_DIR";

/// What the page may load and reach: its own server only.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The page's routes (outside authentication: the page asks for a key itself).
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Result<Response, HttpError> {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, HttpError> {
    serve(&path, &headers)
}

fn not_found(path: &str) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::NotFound,
        format!("no page asset {path:?}"),
    ))
}

/// A relative path of plain segments (no `..`, no hidden files, nothing a file system could misread).
fn valid(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 200
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

fn read(path: &str) -> Option<Cow<'static, [u8]>> {
    match std::env::var_os(PAGE_DIR_ENV) {
        Some(dir) => std::fs::read(PathBuf::from(dir).join(path))
            .ok()
            .map(Cow::Owned),
        None => Assets::get(path).map(|file| file.data),
    }
}

fn serve(path: &str, headers: &HeaderMap) -> Result<Response, HttpError> {
    if !valid(path) {
        return Err(not_found(path));
    }
    let bytes = read(path).ok_or_else(|| not_found(path))?;
    let hash = blake3::hash(&bytes);
    let etag = format!("\"{}\"", &hash.to_hex()[..16]);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.into_owned().into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    // Revalidate every time: the ETag makes that a 304 when nothing changed.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_folder() {
        assert!(valid("index.html") && valid("js/search.js"));
        for bad in [
            "",
            "../Cargo.toml",
            "js/../x",
            "/etc/passwd",
            ".hidden",
            "a//b",
            "a\\b",
            "x%2e",
        ] {
            assert!(!valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_page_is_compiled_in() {
        let index = Assets::get("index.html").expect("index.html is embedded");
        let text = String::from_utf8_lossy(&index.data);
        assert!(
            text.contains("/assets/"),
            "index.html loads its assets from /assets/"
        );
        assert_eq!(content_type("js/main.js"), "text/javascript; charset=utf-8");
    }
}
