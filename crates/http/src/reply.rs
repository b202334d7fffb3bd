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

/// The raw query string, empty when there is none.
pub fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}
