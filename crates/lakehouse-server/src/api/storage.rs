//! storaged's routes: `/v1/storage/objects`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use futures::StreamExt;
use lakehouse_api::StorageApi;
use lakehouse_types::storage::{ByteRange, ListQuery, ObjectInfo};
use lakehouse_types::{ApiError, ErrorCode};

use crate::{Ctx, HttpError};

type Svc = State<Arc<dyn StorageApi>>;

/// The storage routes over `service`.
pub fn router(service: Arc<dyn StorageApi>) -> Router {
    Router::new()
        .route("/v1/storage/objects", get(list_objects))
        .route(
            "/v1/storage/objects/",
            put(empty_key)
                .get(empty_key)
                .head(empty_key)
                .delete(empty_key),
        )
        .route(
            "/v1/storage/objects/{*key}",
            put(put_object)
                .get(get_object)
                .head(head_object)
                .delete(delete_object),
        )
        .with_state(service)
}

/// The key from the path: percent-decoded by axum, then checked by the service.
fn key(path: Result<Path<String>, PathRejection>) -> Result<String, HttpError> {
    path.map(|Path(key)| key).map_err(|rejection| {
        HttpError(ApiError::new(
            ErrorCode::InvalidKey,
            format!("the key is not valid UTF-8 text: {}", rejection.body_text()),
        ))
    })
}

async fn empty_key() -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::InvalidKey,
        "invalid key: the key is empty",
    ))
}

async fn put_object(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let key = key(path)?;
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stream = body
        .into_data_stream()
        .map(|chunk| {
            chunk.map_err(|e| {
                ApiError::bad_request(format!("the request body could not be read: {e}"))
            })
        })
        .boxed();
    let stored = service.put(&ctx, &key, content_length, stream).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

async fn get_object(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let key = key(path)?;
    let range = headers.get(header::RANGE).map(parse_range).transpose()?;
    let object = service.get(&ctx, &key, range).await?;
    let mut response_headers = object_headers(&object.info);
    let length = object.range.end - object.range.start;
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let status = if object.partial {
        let content_range = format!(
            "bytes {}-{}/{}",
            object.range.start,
            object.range.end - 1,
            object.info.size
        );
        if let Ok(value) = HeaderValue::from_str(&content_range) {
            response_headers.insert(header::CONTENT_RANGE, value);
        }
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    Ok((status, response_headers, Body::from_stream(object.body)).into_response())
}

async fn head_object(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HttpError> {
    let key = key(path)?;
    let info = service.head(&ctx, &key).await?;
    let mut headers = object_headers(&info);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    Ok((StatusCode::OK, headers).into_response())
}

async fn delete_object(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    let key = key(path)?;
    service.delete(&ctx, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_objects(
    ctx: Ctx,
    State(service): Svc,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let Query(query) = query.map_err(|rejection| {
        HttpError(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("bad query parameters: {}", rejection.body_text()),
        ))
    })?;
    Ok(Json(service.list(&ctx, &query).await?).into_response())
}

fn object_headers(info: &ObjectInfo) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(etag) = &info.etag {
        let quoted = if etag.starts_with('"') || etag.starts_with("W/") {
            etag.clone()
        } else {
            format!("\"{etag}\"")
        };
        if let Ok(value) = HeaderValue::from_str(&quoted) {
            headers.insert(header::ETAG, value);
        }
    }
    let modified = info
        .last_modified
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(value) = HeaderValue::from_str(&modified) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    headers
}

/// Parses `Range: bytes=a-b | a- | -n`. One range per request.
pub fn parse_range(value: &HeaderValue) -> Result<ByteRange, HttpError> {
    let bad = |why: &str| {
        HttpError(ApiError::new(
            ErrorCode::InvalidRange,
            format!(
                "unsupported Range header ({why}); use one range like `bytes=0-1023`, `bytes=1024-` or `bytes=-512`"
            ),
        ))
    };
    let text = value.to_str().map_err(|_| bad("not text"))?;
    let spec = text
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| bad("the unit must be bytes"))?;
    if spec.contains(',') {
        return Err(bad("multiple ranges"));
    }
    let (start, end) = spec.split_once('-').ok_or_else(|| bad("no '-'"))?;
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad("not a number"));
    match (start.trim().is_empty(), end.trim().is_empty()) {
        (false, false) => Ok(ByteRange::FromTo {
            start: number(start)?,
            end_inclusive: number(end)?,
        }),
        (false, true) => Ok(ByteRange::From {
            start: number(start)?,
        }),
        (true, false) => Ok(ByteRange::Suffix { len: number(end)? }),
        (true, true) => Err(bad("empty range")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        let parse =
            |s: &'static str| parse_range(&HeaderValue::from_static(s)).map_err(|e| e.0.code);
        assert_eq!(
            parse("bytes=0-9"),
            Ok(ByteRange::FromTo {
                start: 0,
                end_inclusive: 9
            })
        );
        assert_eq!(parse("bytes=5-"), Ok(ByteRange::From { start: 5 }));
        assert_eq!(parse("bytes=-5"), Ok(ByteRange::Suffix { len: 5 }));
        for bad in [
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
            "bytes=a-b",
            "bytes=5",
        ] {
            assert_eq!(parse(bad), Err(ErrorCode::InvalidRange), "{bad}");
        }
    }
}
