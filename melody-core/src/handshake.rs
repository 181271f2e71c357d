//! The HTTP/1.1 upgrade: incremental parsing, validation, and the bytes of the answer.

use bytes::Bytes;
use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::handshake::derive_accept_key;
use tungstenite::handshake::machine::TryParse;
use tungstenite::http::{HeaderMap, StatusCode};

use crate::config::Config;
use crate::error::HandshakeRejection;
use crate::origin;

/// The upgrade request, as parsed (body-less `http::Request`).
pub type Request = tungstenite::http::Request<()>;

/// An upgrade request kept as received and parsed on first use.
///
/// A parsed request (an `http::HeaderMap` and a copy of every header value) costs about
/// 1 KB; most sessions never look at theirs after the handshake, so the raw head (a
/// couple of hundred bytes) is what a session keeps until someone asks.
///
/// Once a WebSocket session is open, its head no longer carries the fields its
/// handshake consumed: `Connection`, `Upgrade`, `Sec-WebSocket-Key`,
/// `Sec-WebSocket-Version` and `Sec-WebSocket-Extensions` (the outcome of the last is
/// the session's compression). Every other field (`Host`, `Origin`, `Cookie`,
/// `Sec-WebSocket-Protocol`, ...) stays. Before then (the request hook, a held
/// request) the head is whole.
pub struct RequestHead {
    raw: Box<[u8]>,
    parsed: std::sync::OnceLock<Box<Request>>,
}

impl RequestHead {
    /// A head kept as the bytes of the request line and headers.
    pub(crate) fn raw(raw: Box<[u8]>) -> Self {
        RequestHead {
            raw,
            parsed: std::sync::OnceLock::new(),
        }
    }

    /// The head an open WebSocket session keeps: without the fields its handshake
    /// consumed (see the type's docs), and unparsed again, so a parse made for the
    /// request hook does not stay for the session's life. (A head an HTTP framework
    /// parsed has no bytes: its parse loses those fields.)
    pub(crate) fn into_session_head(self) -> Self {
        if self.raw.is_empty() {
            use tungstenite::http::header;
            let mut request = self.parsed.into_inner().unwrap_or_default();
            for name in [
                header::CONNECTION,
                header::UPGRADE,
                header::SEC_WEBSOCKET_KEY,
                header::SEC_WEBSOCKET_VERSION,
                header::SEC_WEBSOCKET_EXTENSIONS,
            ] {
                request.headers_mut().remove(name);
            }
            return RequestHead::from_parsed(request);
        }
        let mut kept = Vec::with_capacity(self.raw.len());
        let mut dropping = false;
        for (n, line) in self.raw.split_inclusive(|b| *b == b'\n').enumerate() {
            // A line starting with white space continues the field before it.
            let continues = n > 0 && matches!(line.first(), Some(b' ' | b'\t'));
            if !continues {
                dropping = n > 0 && is_consumed_field(line);
            }
            if !dropping {
                kept.extend_from_slice(line);
            }
        }
        let raw = if kept.len() == self.raw.len() {
            self.raw
        } else {
            kept.into_boxed_slice()
        };
        RequestHead::raw(raw)
    }

    /// A head already parsed (by an HTTP framework).
    pub fn parsed(request: Request) -> Self {
        Self::from_parsed(Box::new(request))
    }

    fn from_parsed(request: Box<Request>) -> Self {
        RequestHead {
            raw: Box::default(),
            parsed: std::sync::OnceLock::from(request),
        }
    }

    /// The request's path (`/chat` of `GET /chat?room=1`), read off the request line
    /// without parsing the headers, so asking for it (logs, metrics) keeps a session's
    /// head unparsed.
    pub fn path(&self) -> &str {
        if let Some(parsed) = self.parsed.get() {
            return parsed.uri().path();
        }
        let target = self
            .raw
            .split(|b| *b == b' ')
            .nth(1)
            .and_then(|target| std::str::from_utf8(target).ok());
        match target {
            // Origin form, as upgrade requests are sent; anything else is parsed.
            Some(target) if target.starts_with('/') => {
                target.split_once('?').map_or(target, |(path, _)| path)
            }
            _ => self.request().uri().path(),
        }
    }

    /// The request: method, URI, version, headers. Parsed on the first call.
    pub fn request(&self) -> &Request {
        self.parsed.get_or_init(|| {
            // These bytes parsed once already, during the handshake.
            let request = Request::try_parse(&self.raw).ok().flatten().map(|(_, r)| r);
            Box::new(request.unwrap_or_default())
        })
    }
}

impl std::fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHead")
            .field("uri", self.request().uri())
            .finish()
    }
}

/// Header fields a WebSocket handshake consumes (see [`RequestHead`]; the same as the
/// header names removed from a framework's parse in `into_session_head`).
const CONSUMED_FIELDS: [&[u8]; 5] = [
    b"connection",
    b"upgrade",
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-extensions",
];

/// Whether a header line (`Name: value\r\n`) is one of [`CONSUMED_FIELDS`].
fn is_consumed_field(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return false;
    };
    let name = line[..colon].trim_ascii();
    CONSUMED_FIELDS
        .iter()
        .any(|field| name.eq_ignore_ascii_case(field))
}

/// The outcome of parsing the bytes received so far.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// The request is not complete yet.
    Partial,
    /// A whole request, and how many bytes it took (the rest are WebSocket frames).
    Complete { request: Box<Request>, len: usize },
    /// The bytes cannot become a valid request.
    Invalid(HandshakeRejection),
}

/// Parses the request in `buf`, refusing one that outgrows `max` bytes.
pub(crate) fn parse(buf: &[u8], max: usize) -> Parsed {
    match Request::try_parse(buf) {
        Ok(Some((len, request))) if len <= max => Parsed::Complete {
            request: Box::new(request),
            len,
        },
        Ok(Some(_)) => Parsed::Invalid(too_large()),
        Ok(None) if buf.len() >= max => Parsed::Invalid(too_large()),
        Ok(None) => Parsed::Partial,
        Err(WsError::Protocol(ProtocolError::WrongHttpMethod)) => Parsed::Invalid(
            HandshakeRejection::new(StatusCode::METHOD_NOT_ALLOWED, "only GET can upgrade"),
        ),
        // tungstenite turns httparse's `TooManyHeaders` into a capacity error.
        Err(WsError::Capacity(CapacityError::TooManyHeaders)) => Parsed::Invalid(too_large()),
        Err(_) => Parsed::Invalid(HandshakeRejection::new(
            StatusCode::BAD_REQUEST,
            "malformed HTTP/1.1 upgrade request",
        )),
    }
}

fn too_large() -> HandshakeRejection {
    HandshakeRejection::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "handshake request exceeds max_handshake_size",
    )
}

/// A validated upgrade: what the 101 response must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// The `Sec-WebSocket-Accept` value.
    pub accept_key: String,
    /// The chosen subprotocol, if the client offered one we speak.
    pub protocol: Option<String>,
    /// The permessage-deflate parameters agreed, if the client offered the extension
    /// and the configuration accepts it (the response carries them).
    pub deflate: Option<crate::DeflateParams>,
}

/// A validated event-stream request: what its `200 text/event-stream` response must
/// carry besides the fixed headers (see [`StreamAccept::response_headers`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamAccept {
    /// The request's `Origin`, echoed in `Access-Control-Allow-Origin` so that a
    /// browser's cross-origin `EventSource` may read the stream (the origin passed the
    /// config's [`OriginPolicy`](crate::OriginPolicy)).
    pub allow_origin: Option<String>,
    /// Send `Access-Control-Allow-Credentials: true` with it: the origin was allowed by
    /// name (the request's own host or an allow-list entry), so an `EventSource` opened
    /// `withCredentials` works. Not under `OriginPolicy::Any`, which would hand any
    /// site its visitors' authenticated streams.
    pub allow_credentials: bool,
}

impl StreamAccept {
    /// Every header of the response but the framing ones: `Content-Type:
    /// text/event-stream`, `Cache-Control: no-cache`, `X-Accel-Buffering: no` (nginx
    /// would buffer the stream otherwise), and the CORS headers when the request was
    /// cross-origin. An HTTP framework serving the stream sends these.
    pub fn response_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("content-type", "text/event-stream".to_owned()),
            ("cache-control", "no-cache".to_owned()),
            ("x-accel-buffering", "no".to_owned()),
        ];
        if let Some(origin) = &self.allow_origin {
            headers.push(("access-control-allow-origin", origin.clone()));
            headers.push(("vary", "origin".to_owned()));
            if self.allow_credentials {
                headers.push(("access-control-allow-credentials", "true".to_owned()));
            }
        }
        headers
    }
}

/// Whether a request asks for an event stream: a `GET` that asks for no upgrade and
/// accepts `text/event-stream` (as every `EventSource` does).
///
/// ```
/// use melody_core::{http, is_event_stream_request};
///
/// let sse = http::Request::get("/events").header("accept", "text/event-stream").body(())?;
/// assert!(is_event_stream_request(&sse));
/// let page = http::Request::get("/").header("accept", "text/html").body(())?;
/// assert!(!is_event_stream_request(&page));
/// # Ok::<(), http::Error>(())
/// ```
pub fn is_event_stream_request(request: &Request) -> bool {
    request.method() == tungstenite::http::Method::GET
        && !asks_upgrade(request)
        && request
            .headers()
            .get_all("accept")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|range| {
                let media = range.split(';').next().unwrap_or("").trim();
                media.eq_ignore_ascii_case("text/event-stream")
            })
}

/// Checks an event-stream request against the config's origin policy.
pub(crate) fn validate_stream(
    request: &Request,
    config: &Config,
) -> Result<StreamAccept, HandshakeRejection> {
    let headers = request.headers();
    let Some(origin) = headers.get("origin") else {
        return Ok(StreamAccept::default());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !origin::allowed(origin, host, &config.origin_policy) {
        return Err(HandshakeRejection::new(
            StatusCode::FORBIDDEN,
            "origin not allowed",
        ));
    }
    Ok(StreamAccept {
        allow_origin: Some(origin.to_owned()),
        allow_credentials: config.origin_policy != crate::OriginPolicy::Any,
    })
}

/// The head of the `200` that starts an event stream we frame ourselves (chunked).
pub(crate) fn stream_head(accept: &StreamAccept) -> Bytes {
    let mut s = String::with_capacity(192);
    s.push_str("HTTP/1.1 200 OK\r\n");
    for (name, value) in accept.response_headers() {
        s.push_str(name);
        s.push_str(": ");
        s.push_str(&value);
        s.push_str("\r\n");
    }
    s.push_str("Transfer-Encoding: chunked\r\n\r\n");
    Bytes::from(s)
}

/// Checks an upgrade request against RFC 6455 §4.2.1 and the config's policies.
pub(crate) fn validate(request: &Request, config: &Config) -> Result<Accept, HandshakeRejection> {
    let headers = request.headers();
    let bad = |reason| Err(HandshakeRejection::new(StatusCode::BAD_REQUEST, reason));
    if request.method() != tungstenite::http::Method::GET {
        return Err(HandshakeRejection::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET can upgrade",
        ));
    }
    if !asks_upgrade(request) && !has_token(headers, "connection", "upgrade") {
        // A browser or crawler on a socket's path: say what it takes (RFC 7231 §6.5.15).
        return Err(HandshakeRejection::new(
            StatusCode::UPGRADE_REQUIRED,
            "a WebSocket endpoint: upgrade to websocket, version 13",
        ));
    }
    if !has_token(headers, "connection", "upgrade") {
        return bad("not a WebSocket handshake: `Connection: Upgrade` missing");
    }
    if !has_token(headers, "upgrade", "websocket") {
        return bad("not a WebSocket handshake: `Upgrade: websocket` missing");
    }
    if headers.get("sec-websocket-version").map(|v| v.as_bytes()) != Some(b"13") {
        return Err(HandshakeRejection::new(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported WebSocket version: only 13 is spoken",
        ));
    }
    let Some(key) = headers.get("sec-websocket-key") else {
        return bad("`Sec-WebSocket-Key` missing");
    };
    if !is_valid_key(key.as_bytes()) {
        return bad("`Sec-WebSocket-Key` is not 16 bytes in base64");
    }
    let Some(host) = headers.get("host").and_then(|h| h.to_str().ok()) else {
        return bad("`Host` missing");
    };
    if let Some(origin) = headers.get("origin") {
        let origin = origin.to_str().unwrap_or("");
        if !origin::allowed(origin, host, &config.origin_policy) {
            return Err(HandshakeRejection::new(
                StatusCode::FORBIDDEN,
                "origin not allowed",
            ));
        }
    }
    Ok(Accept {
        accept_key: derive_accept_key(key.as_bytes()),
        protocol: choose_protocol(headers, &config.subprotocols),
        deflate: crate::deflate::negotiate(headers, config.compression),
    })
}

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// 24 base64 characters that decode to 16 bytes: 22 symbols then `==`.
fn is_valid_key(key: &[u8]) -> bool {
    let symbol = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24 && key[..22].iter().all(symbol) && &key[22..] == b"==" && {
        // The last symbol carries 2 bits of data and 4 zero bits.
        let last = key[21];
        b"AQgw".contains(&last)
    }
}

/// The first of our subprotocols, in our order of preference, that the client offers.
fn choose_protocol(headers: &HeaderMap, ours: &[String]) -> Option<String> {
    if ours.is_empty() {
        return None;
    }
    let offered: Vec<&str> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    ours.iter().find(|p| offered.contains(&p.as_str())).cloned()
}

/// Whether a request asks for any protocol upgrade at all.
pub(crate) fn asks_upgrade(request: &Request) -> bool {
    request.headers().contains_key("upgrade")
}

/// A 200 response carrying `page` as HTML, closing the connection after it.
pub(crate) fn page_response(page: &Bytes) -> Bytes {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        page.len()
    );
    let mut response = Vec::with_capacity(head.len() + page.len());
    response.extend_from_slice(head.as_bytes());
    response.extend_from_slice(page);
    Bytes::from(response)
}

/// The 101 response.
pub(crate) fn switching_protocols(accept: &Accept) -> Bytes {
    let mut s = String::with_capacity(160);
    s.push_str("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n");
    s.push_str("Sec-WebSocket-Accept: ");
    s.push_str(&accept.accept_key);
    s.push_str("\r\n");
    if let Some(p) = &accept.protocol {
        s.push_str("Sec-WebSocket-Protocol: ");
        s.push_str(p);
        s.push_str("\r\n");
    }
    if let Some(deflate) = &accept.deflate {
        s.push_str("Sec-WebSocket-Extensions: ");
        s.push_str(&deflate.response_header());
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    Bytes::from(s)
}

/// An HTTP error response whose body is the one-line reason.
pub(crate) fn error_response(rejection: &HandshakeRejection) -> Bytes {
    let extra = if rejection.status == StatusCode::UPGRADE_REQUIRED {
        "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n"
    } else {
        ""
    };
    response_with(rejection.status, rejection.reason, extra)
}

/// The response of a refused request verdict: its status, reason (the body) and extra
/// headers, the framing ones excepted.
pub(crate) fn refusal_response(refusal: &crate::verdict::Refusal) -> Bytes {
    let mut extra = String::new();
    for (name, value) in refusal.headers.iter() {
        if crate::verdict::is_framing_header(name) {
            continue;
        }
        // `HeaderValue` holds no CR or LF, so a value cannot split the response; its
        // bytes need not be UTF-8, hence the lossy rendering of the rare ones that are not.
        extra.push_str(name.as_str());
        extra.push_str(": ");
        extra.push_str(&String::from_utf8_lossy(value.as_bytes()));
        extra.push_str("\r\n");
    }
    // The reason is one line of the body: line breaks in it become spaces.
    let reason = refusal.reason.replace(['\r', '\n'], " ");
    response_with(refusal.effective_status(), &reason, &extra)
}

fn response_with(status: StatusCode, reason: &str, extra: &str) -> Bytes {
    let body = format!("{reason}\n");
    Bytes::from(format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OriginPolicy;

    fn request(extra: &str) -> Vec<u8> {
        format!(
            "GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn check(extra: &str, config: &Config) -> Result<Accept, HandshakeRejection> {
        match parse(&request(extra), 8192) {
            Parsed::Complete { request, .. } => validate(&request, config),
            other => panic!("unexpected parse result {other:?}"),
        }
    }

    #[test]
    fn a_session_head_drops_the_fields_its_handshake_consumed_and_its_parse() {
        let raw = "GET /chat?room=1 HTTP/1.1\r\nHost: a\r\nconnection: Upgrade\r\n\
                   Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Origin: http://a\r\nSEC-WEBSOCKET-VERSION: 13\r\n\
                   Sec-WebSocket-Extensions: permessage-deflate\r\n\
                   Sec-WebSocket-Protocol: chat\r\nCookie: id=7\r\n\r\n";
        let head = RequestHead::raw(raw.as_bytes().into());
        // Parsed once (as the request hook does): the session's head starts unparsed.
        assert_eq!(head.request().headers().len(), 9);
        let kept = head.into_session_head();
        assert!(kept.parsed.get().is_none());
        assert_eq!(
            std::str::from_utf8(&kept.raw).unwrap(),
            "GET /chat?room=1 HTTP/1.1\r\nHost: a\r\nOrigin: http://a\r\n\
             Sec-WebSocket-Protocol: chat\r\nCookie: id=7\r\n\r\n"
        );
        let request = kept.request();
        assert_eq!(request.uri(), "/chat?room=1");
        let names: Vec<_> = request.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["host", "origin", "sec-websocket-protocol", "cookie"]
        );
        // Nothing to drop: the same bytes. A framework's parsed head loses them too.
        let plain = RequestHead::raw(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..].into());
        let plain_bytes = plain.raw.as_ptr();
        assert_eq!(plain.into_session_head().raw.as_ptr(), plain_bytes);
        let framework = Request::builder()
            .uri("/p")
            .header("upgrade", "websocket")
            .body(())
            .unwrap();
        let framework = RequestHead::parsed(framework).into_session_head();
        assert!(framework.request().headers().is_empty());
        assert_eq!(framework.path(), "/p");
    }

    #[test]
    fn a_heads_path_comes_off_the_request_line_without_parsing_it() {
        let head = |raw: &str| RequestHead::raw(raw.as_bytes().into());
        let with_query = head("GET /chat?room=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(with_query.path(), "/chat");
        assert!(with_query.parsed.get().is_none(), "no parse for the path");
        assert_eq!(head("GET /ws HTTP/1.1\r\nHost: a\r\n\r\n").path(), "/ws");
        // Absolute form is parsed, and agrees with the parsed URI.
        let absolute = head("GET http://a/x/y?q HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(absolute.path(), "/x/y");
        assert_eq!(absolute.path(), absolute.request().uri().path());
        let framework = RequestHead::parsed(Request::builder().uri("/p?q").body(()).unwrap());
        assert_eq!(framework.path(), "/p");
    }

    #[test]
    fn rfc_6455_sample_key_gives_the_sample_accept() {
        let accept = check("", &Config::default()).unwrap();
        assert_eq!(accept.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn partial_requests_wait_and_oversized_ones_are_refused() {
        let req = request("");
        assert!(matches!(
            parse(&req[..req.len() - 1], 8192),
            Parsed::Partial
        ));
        match parse(&req[..req.len() - 1], 40) {
            Parsed::Invalid(r) => assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn origin_policies() {
        let same = Config::default();
        assert!(check("Origin: http://example.com\r\n", &same).is_ok());
        assert!(check("Origin: https://EXAMPLE.com/\r\n", &same).is_ok());
        let refused = check("Origin: http://evil.test\r\n", &same).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(check("Origin: null\r\n", &same).is_err());
        let list = Config::default()
            .origin_policy(OriginPolicy::AllowList(vec!["http://evil.test".into()]));
        assert!(check("Origin: http://evil.test\r\n", &list).is_ok());
        let any = Config::default().origin_policy(OriginPolicy::Any);
        assert!(check("Origin: http://anything.test\r\n", &any).is_ok());
    }

    #[test]
    fn subprotocol_follows_our_preference() {
        let config = Config::default().subprotocols(vec!["v2".into(), "v1".into()]);
        let accept = check("Sec-WebSocket-Protocol: v1, v2\r\n", &config).unwrap();
        assert_eq!(accept.protocol.as_deref(), Some("v2"));
        let none = check("Sec-WebSocket-Protocol: v9\r\n", &config).unwrap();
        assert_eq!(none.protocol, None);
    }

    #[test]
    fn keys_must_be_16_bytes_of_base64() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZR=="));
        assert!(!is_valid_key(b"short=="));
    }
}
