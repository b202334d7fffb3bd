//! The store's read side, answered as Tempo and Loki answer.
//!
//! - `GET /api/traces/{id}`: Tempo's v1 JSON (`{"batches": [...]}`); an unknown trace is `404`
//!   with an empty body, as Tempo answers it.
//! - `GET /api/v2/traces/{id}`: Tempo's v2 JSON (`{"trace": {"resourceSpans": [...]}}`); an
//!   unknown trace is `200` with `{"trace": {}}`, as Tempo 2.x and 3.x answer it.
//! - An id is read as Tempo reads one: hex digits, at most 32, left-padded with zeros; anything
//!   else is `400` with Tempo's plain-text sentence. Tempo's `start` and `end` are accepted and
//!   not needed: every kept trace is searched.
//! - `GET /loki/api/v1/query_range`: the subset that [`crate::loki`] answers, `400` in plain text
//!   (as Loki answers a bad query) for the rest.
//! - `GET /ready` (`ready`, as Tempo and Loki say it, with `Server: dice-lab-store` so that
//!   `dice-lab status` can tell the store from them) and Tempo's `GET /api/echo` (`echo`).

use std::sync::Arc;

use http::{HeaderValue, StatusCode, header};
use lab_http::app::App;
use lab_http::reply::{json, raw_query};
use warp::Filter as _;
use warp::reply::{Reply as _, Response};

use crate::{Store, loki};

/// Which of Tempo's two trace-by-id routes.
#[derive(Clone, Copy)]
enum Version {
    V1,
    V2,
}

/// Adds the query routes, `/ready` and `/api/echo`.
pub(crate) fn routes(app: App, store: &Arc<Store>) -> App {
    let with_store = {
        let store = store.clone();
        move || {
            let store = store.clone();
            warp::any().map(move || store.clone())
        }
    };
    let v1 = warp::path!("api" / "traces" / String)
        .and(with_store())
        .map(|id: String, store: Arc<Store>| async move { trace(&store, &id, Version::V1) });
    let v2 = warp::path!("api" / "v2" / "traces" / String)
        .and(with_store())
        .map(|id: String, store: Arc<Store>| async move { trace(&store, &id, Version::V2) });
    let logs = warp::path!("loki" / "api" / "v1" / "query_range")
        .and(with_store())
        .and(raw_query())
        .map(|store: Arc<Store>, query: String| async move { query_range(&store, query).await });
    let ready = warp::path!("ready").map(|| async {
        let mut ready = text(StatusCode::OK, "ready");
        // Tempo and Loki answer `/ready` the same way on the same ports: this tells the store apart.
        ready
            .headers_mut()
            .insert(header::SERVER, HeaderValue::from_static(crate::SERVER));
        ready
    });
    let echo = warp::path!("api" / "echo").map(|| async { text(StatusCode::OK, "echo") });
    app.quiet_route("/api/traces/{traceID}", v1)
        .quiet_route("/api/v2/traces/{traceID}", v2)
        .quiet_route("/loki/api/v1/query_range", logs)
        .quiet_route("/ready", ready)
        .quiet_route("/api/echo", echo)
}

fn trace(store: &Store, id: &str, version: Version) -> Response {
    let id = match tempo_trace_id(id) {
        Ok(id) => id,
        Err(message) => return text(StatusCode::BAD_REQUEST, &message),
    };
    let spans = store.trace(&id);
    match (version, spans) {
        (Version::V1, Some(spans)) => json(StatusCode::OK, &traces::tempo::v1(&spans)),
        (Version::V1, None) => StatusCode::NOT_FOUND.into_response(),
        (Version::V2, spans) => json(
            StatusCode::OK,
            &traces::tempo::v2(&spans.unwrap_or_default()),
        ),
    }
}

/// A trace id as Tempo reads one from a URL: hex digits (either case), at most 32, an odd count
/// led by a zero, fewer than 32 padded with zeros on the left; in lowercase.
fn tempo_trace_id(id: &str) -> Result<String, String> {
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    if let Some((at, bad)) = id.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "trace IDs can only contain hex characters: invalid character '{bad}' at position {}",
            at + 1
        ));
    }
    if id.len() > 32 {
        return Err("trace IDs can't be larger than 128 bits".into());
    }
    Ok(format!("{:0>32}", id.to_ascii_lowercase()))
}

async fn query_range(store: &Arc<Store>, query: String) -> Response {
    let dir = store.log_dir.clone();
    let answered = tokio::task::spawn_blocking(move || {
        loki::query_range(&dir, &query, std::time::SystemTime::now())
    })
    .await;
    match answered {
        Ok(Ok(answer)) => {
            if answer.skipped_lines > 0 {
                tracing::debug!(
                    skipped = answer.skipped_lines,
                    "log lines left out: not JSON objects, no timestamp, or too long"
                );
            }
            json(StatusCode::OK, &answer.body)
        }
        Ok(Err(error)) => text(StatusCode::BAD_REQUEST, &error.to_string()),
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the query failed: {error}"),
        ),
    }
}

/// A plain-text answer, as Tempo and Loki give for errors and readiness.
fn text(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(format!("{body}\n").into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_as_tempo_reads_them() {
        assert_eq!(
            tempo_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            tempo_trace_id("abc").unwrap(),
            "00000000000000000000000000000abc"
        );
        assert_eq!(
            tempo_trace_id("xyz").unwrap_err(),
            "trace IDs can only contain hex characters: invalid character 'x' at position 1"
        );
        assert_eq!(
            tempo_trace_id(&"a".repeat(33)).unwrap_err(),
            "trace IDs can't be larger than 128 bits"
        );
    }
}
