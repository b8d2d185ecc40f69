//! What a web page in the user's browser may make this server do: nothing it was not meant to.
//!
//! Two attacks reach a server that listens on loopback without keys (the embedded default), from any page
//! the user happens to visit:
//! - **DNS rebinding**: the page's own name (`evil.example`) is made to resolve to 127.0.0.1, so the browser
//!   treats this server as the page's origin and lets it read the answers. The request still carries
//!   `Host: evil.example:3110`, so every route refuses a `Host` that is not a loopback name, the listen
//!   address, or a configured `[server] allowed_hosts` entry (421 `misdirected_host`).
//! - **Cross-site writes**: a page may send a POST to any address without asking first when its body is a
//!   form or plain text (`fetch(url, {mode: "no-cors"})`, a `<form>`). It cannot read the answer, but the
//!   write happens. Browsers name the sending page in `Origin` (and say `Sec-Fetch-Site: cross-site`), so an
//!   unsafe method whose `Origin` is not this server's own, nor a configured `[server] allowed_origins`
//!   entry, is refused (403 `cross_origin`); the bodies themselves are read by their declared type only
//!   ([`crate::extract::json_content_type`], the ingest route).
//!
//! Clients that are not browsers send no `Origin` and are unaffected; the page, served by this server,
//! is same-origin. An allowed origin also gets CORS answers (a preflight, `Access-Control-Allow-Origin`), so a
//! deliberate front end elsewhere can call the API with a key.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lakehouse_types::{ApiError, ErrorCode};

use crate::HttpError;

/// The browser rules of one server.
#[derive(Debug, Clone)]
pub struct Browsers {
    /// Lowercase host names (no port) accepted in `Host` besides loopback names and the listen address.
    hosts: Vec<String>,
    /// `*` in `allowed_hosts`: any `Host` (a server with keys behind a balancer that rewrites it).
    any_host: bool,
    /// The listen address's IP, or `None` when it listens on every address (then any IP literal is its own).
    listen_ip: Option<IpAddr>,
    /// Lowercase origins (`scheme://host[:port]`) besides the server's own.
    origins: Vec<String>,
}

impl Browsers {
    /// The rules for a server listening on `listen`, with the configured extra hosts and origins.
    pub fn new(listen: SocketAddr, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let ip = listen.ip();
        Browsers {
            hosts: allowed_hosts
                .iter()
                .filter(|h| *h != "*")
                .cloned()
                .collect(),
            any_host: allowed_hosts.iter().any(|h| h == "*"),
            listen_ip: (!ip.is_unspecified()).then_some(ip),
            origins: allowed_origins.to_vec(),
        }
    }

    /// Whether `host` (the `Host` header without its port, lowercase) names this server.
    fn host_allowed(&self, host: &str) -> bool {
        if self.any_host || host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            // A page cannot make a browser send an IP literal of ours unless it is served from that
            // address, so no rebinding goes through one.
            return ip.is_loopback() || self.listen_ip.is_none_or(|own| own == ip);
        }
        self.hosts.iter().any(|h| h == host)
    }

    /// The refusal for `request`, if it is one a browser page must not get answered.
    fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        authority: Option<&str>,
    ) -> Option<ApiError> {
        if let Some(authority) = authority {
            let host = host_of(authority);
            if !self.host_allowed(&host) {
                return Some(ApiError::new(
                    ErrorCode::MisdirectedHost,
                    format!(
                        "this server does not answer for host {host:?} (a page served under another name \
                         may be pointing its name at this machine); use 127.0.0.1 or localhost, or add the \
                         name to [server] allowed_hosts"
                    ),
                ));
            }
        }
        if safe(method) {
            return None;
        }
        let origin = headers
            .get(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or("null").trim().to_ascii_lowercase());
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
        let allowed_elsewhere = origin
            .as_deref()
            .is_some_and(|o| self.origins.iter().any(|a| a == o));
        let refused = match origin.as_deref() {
            _ if allowed_elsewhere => false,
            Some(origin) => cross_site || !same_origin(origin, authority),
            None => cross_site,
        };
        refused.then(|| {
            ApiError::new(
                ErrorCode::CrossOrigin,
                format!(
                    "a {method} from the page at {} is refused: only this server's own page (or an origin in \
                     [server] allowed_origins) may change anything through a browser",
                    origin.as_deref().unwrap_or("another site")
                ),
            )
        })
    }

    /// The origin of `headers` when it is one of the configured others (it gets CORS answers).
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?.trim().to_ascii_lowercase();
        self.origins.contains(&text).then(|| origin.clone())
    }
}

/// GET, HEAD, OPTIONS and TRACE change nothing here.
fn safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The host of an authority (`name:port`, `[::1]:port`, `name`), lowercase, without a trailing dot.
fn host_of(authority: &str) -> String {
    let authority = authority.trim().to_ascii_lowercase();
    let host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => authority[..=end].to_owned(),
            None => authority,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_owned(),
            _ => authority,
        }
    };
    host.trim_end_matches('.').to_owned()
}

/// Whether `origin` (`scheme://host[:port]`) is the server the request was sent to.
fn same_origin(origin: &str, authority: Option<&str>) -> bool {
    let Some(authority) = authority else {
        return false;
    };
    let (scheme, rest) = match origin.split_once("://") {
        Some(parts) => parts,
        None => return false,
    };
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let normal = |a: &str| {
        let a = a.trim().to_ascii_lowercase();
        a.strip_suffix(default_port).map(str::to_owned).unwrap_or(a)
    };
    normal(rest) == normal(authority)
}

/// The authority a request was sent to: the URI's (HTTP/2) or the `Host` header's.
fn authority(request: &Request) -> Option<String> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.as_str().to_owned());
    }
    request
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned())
}

/// Middleware: refuses what a browser page must not get answered, answers CORS for allowed origins.
pub async fn guard(State(rules): State<Arc<Browsers>>, request: Request, next: Next) -> Response {
    let authority = authority(&request);
    if let Some(refusal) = rules.check(request.method(), request.headers(), authority.as_deref()) {
        return HttpError(refusal).into_response();
    }
    let cors = rules.allowed_origin(request.headers());
    if let Some(origin) = &cors
        && request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut preflight = StatusCode::NO_CONTENT.into_response();
        let h = preflight.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "authorization, content-type, idempotency-key, range, x-request-id, mcp-session-id",
            ),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return preflight;
    }
    let mut response = next.run(request).await;
    if let Some(origin) = cors {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id, etag, content-range, retry-after"),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        h
    }

    fn loopback() -> Browsers {
        Browsers::new("127.0.0.1:3110".parse().expect("addr"), &[], &[])
    }

    #[test]
    fn hosts_other_than_our_own_names_are_misdirected() {
        let b = loopback();
        let none = HeaderMap::new();
        for ok in [
            "127.0.0.1:3110",
            "localhost:3110",
            "LOCALHOST",
            "[::1]:3110",
            "127.0.0.2",
            "a.localhost",
        ] {
            assert!(b.check(&Method::GET, &none, Some(ok)).is_none(), "{ok}");
        }
        for bad in [
            "evil.example:3110",
            "evil.example",
            "10.0.0.5:3110",
            "localhost.evil.example",
            "",
            "\u{fffd}",
        ] {
            let refusal = b.check(&Method::GET, &none, Some(bad)).expect(bad);
            assert_eq!(refusal.code, ErrorCode::MisdirectedHost, "{bad}");
        }
        assert!(
            b.check(&Method::GET, &none, None).is_none(),
            "no Host: not a browser"
        );
        let named = Browsers::new(
            "0.0.0.0:3110".parse().expect("addr"),
            &["lakehouse.example.com".into()],
            &[],
        );
        assert!(
            named
                .check(&Method::GET, &none, Some("lakehouse.example.com:443"))
                .is_none()
        );
        assert!(
            named
                .check(&Method::GET, &none, Some("10.0.0.5:3110"))
                .is_none(),
            "an address of ours"
        );
        assert!(
            named
                .check(&Method::GET, &none, Some("evil.example"))
                .is_some()
        );
        let any = Browsers::new("0.0.0.0:3110".parse().expect("addr"), &["*".into()], &[]);
        assert!(
            any.check(&Method::GET, &none, Some("evil.example"))
                .is_none()
        );
    }

    #[test]
    fn unsafe_methods_from_other_origins_are_refused() {
        let b = loopback();
        let at = Some("127.0.0.1:3110");
        let post = Method::POST;
        assert!(
            b.check(&post, &HeaderMap::new(), at).is_none(),
            "no Origin: not a browser"
        );
        let own = headers(&[
            ("origin", "http://127.0.0.1:3110"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(b.check(&post, &own, at).is_none());
        for bad in [
            headers(&[("origin", "http://evil.example")]),
            headers(&[("origin", "http://127.0.0.1:8080")]),
            headers(&[("origin", "http://localhost:3110")]),
            headers(&[("origin", "null")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[
                ("origin", "http://127.0.0.1:3110"),
                ("sec-fetch-site", "cross-site"),
            ]),
        ] {
            for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
                let refusal = b.check(&method, &bad, at).expect("refused");
                assert_eq!(refusal.code, ErrorCode::CrossOrigin);
            }
            assert!(
                b.check(&Method::GET, &bad, at).is_none(),
                "reads are the browser's to guard"
            );
        }
        let front = Browsers::new(
            "127.0.0.1:3110".parse().expect("addr"),
            &[],
            &["https://dash.example.com".into()],
        );
        let theirs = headers(&[
            ("origin", "https://dash.example.com"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(front.check(&post, &theirs, at).is_none());
        assert!(front.allowed_origin(&theirs).is_some());
        assert!(
            front
                .allowed_origin(&headers(&[("origin", "https://evil.example")]))
                .is_none()
        );
    }

    #[test]
    fn origins_compare_with_default_ports() {
        assert!(same_origin("https://a.example", Some("a.example:443")));
        assert!(same_origin("http://a.example:80", Some("a.example")));
        assert!(!same_origin("https://a.example", Some("a.example:8443")));
        assert!(!same_origin("ftp://a.example", Some("a.example")));
        assert_eq!(host_of("Example.COM.:80"), "example.com");
        assert_eq!(host_of("[::1]:3110"), "[::1]");
    }
}
