//! The HTTP errors melody answers on the axum path: its own checks' rejections and
//! the request hook's refusals, both a status, headers and a one-line `reason\n`
//! `text/plain` body, as `serve` writes them.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use melody_core::{HandshakeRejection, Refusal};

/// A rejection by melody's own checks (method, key, origin, session cap, closing).
pub(crate) fn rejection(rejection: HandshakeRejection) -> Response<Body> {
    let mut response = plain(rejection.status, rejection.reason);
    if rejection.status == StatusCode::UPGRADE_REQUIRED {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    response
}

/// The request hook's refusal, with its extra headers (e.g. `WWW-Authenticate`).
pub(crate) fn refusal(refusal: &Refusal) -> Response<Body> {
    let mut response = plain(refusal.status, &refusal.reason);
    let headers = response.headers_mut();
    for (name, value) in refusal.extra_headers() {
        headers.append(name.clone(), value.clone());
    }
    response
}

/// `status` with `reason` as the body.
pub(crate) fn plain(status: StatusCode, reason: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!("{reason}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
