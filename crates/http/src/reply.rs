//! The answers every route gives: JSON bodies, the contract's `{"error": "..."}`, and the one
//! place where an error becomes its status.
//!
//! A route's error type implements [`ErrorStatus`] (its status, and its sentence by `Display`), as
//! zero2prod maps each route's error enum to a status; [`result`] turns a route's outcome into the
//! answer, so no handler chooses a status by hand.

use http::StatusCode;
use serde::Serialize;
use warp::Filter;
use warp::reply::{Reply as _, Response};

/// A route's error: the status it is answered with; its `Display` is the sentence of the body.
pub trait ErrorStatus: std::fmt::Display {
    fn status(&self) -> StatusCode;

    /// Seconds after which the client may try again, for a refusal that will pass (a `503` of
    /// a service at its limit); sent as `Retry-After`.
    fn retry_after(&self) -> Option<u32> {
        None
    }
}

/// `200` with `body`, or the error's status with its sentence (and `Retry-After` when it has one).
pub fn result<T: Serialize, E: ErrorStatus>(outcome: Result<T, E>) -> Response {
    match outcome {
        Ok(body) => json(StatusCode::OK, &body),
        Err(error) => {
            let mut response = json_error(error.status(), error.to_string());
            if let Some(seconds) = error.retry_after() {
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
            }
            response
        }
    }
}

/// A JSON body with a status.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// The contract's error body: `{"error": "<human sentence>"}`.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    json(status, &serde_json::json!({ "error": message.into() }))
}

/// The JSON 405 for a method a route does not take, with the `Allow` header listing those it does.
pub fn method_not_allowed(message: String, allow: &'static str) -> Response {
    let mut response = json_error(StatusCode::METHOD_NOT_ALLOWED, message);
    response
        .headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    response
}

/// The 400 of a route that takes no query parameters, when it was given some.
pub(crate) fn no_query(template: &str, query: &str) -> Option<Response> {
    (!query.is_empty()).then(|| {
        json_error(
            StatusCode::BAD_REQUEST,
            format!("{template} takes no query parameters"),
        )
    })
}

/// The raw query string, empty when there is none.
pub fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// Why a request's body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("cannot read the body: {0}")]
    Unreadable(String),
    #[error("the body must be at most {0} bytes")]
    TooLarge(usize),
}

impl ErrorStatus for BodyError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unreadable(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

/// A request's whole body, refused as soon as it passes `limit` bytes.
pub async fn read_body<S, B>(body: S, limit: usize) -> Result<Vec<u8>, BodyError>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures::StreamExt as _;
    let mut body = std::pin::pin!(body);
    let mut read = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|error| BodyError::Unreadable(error.to_string()))?;
        while chunk.has_remaining() {
            let part = chunk.chunk();
            if read.len() + part.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            read.extend_from_slice(part);
            let taken = part.len();
            chunk.advance(taken);
        }
    }
    Ok(read)
}
