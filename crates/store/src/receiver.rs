//! `POST /v1/traces`: OTLP/HTTP trace exports, as the OTLP specification defines them.
//!
//! A request is binary protobuf (`Content-Type: application/x-protobuf`) or JSON
//! (`application/json`), optionally gzip-compressed (`Content-Encoding: gzip`). Success is `200`
//! with an empty `ExportTraceServiceResponse` in the request's encoding. A body that cannot be
//! read is `400`, too large `413`, another media type or encoding `415`; each with a
//! `google.rpc.Status` whose `message` says why, in the request's encoding (JSON when that is
//! unknown). A request is decoded whole before any of it is kept, so a bad one changes nothing.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use lab_http::app::App;
use lab_http::reply::{BodyError, read_body};
use prost::Message as _;
use traces::otlp::{self, Encoding, RpcStatus};
use warp::Filter as _;
use warp::reply::Response;

use crate::Store;
use crate::split::{self, Piece, TraceKey};

/// The largest body accepted, as sent (compressed or not).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// The largest body accepted once decompressed.
const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;
/// How long a client may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The `outcome` label values of `store_export_requests_total`.
pub(crate) const OUTCOMES: [&str; 5] = [
    "accepted",
    "unreadable",
    "too_large",
    "unsupported_media_type",
    "undecodable",
];

/// Why an export request was refused: its status, and the sentence of its `Status`.
struct Refusal {
    status: StatusCode,
    outcome: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, outcome: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            outcome,
            message: message.into(),
        }
    }
}

/// gRPC's `INVALID_ARGUMENT`, the code of every refusal here.
const INVALID_ARGUMENT: i32 = 3;

/// Adds `POST /v1/traces`.
pub(crate) fn routes(app: App, store: &Arc<Store>) -> App {
    let store = store.clone();
    let export = warp::path!("v1" / "traces")
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(warp::body::stream())
        .map(move |content_type: Option<String>, encoding: Option<String>, body| {
            let store = store.clone();
            async move {
                let media = content_type.as_deref().and_then(Encoding::of_content_type);
                let outcome = async {
                    let media = media.ok_or_else(|| {
                        Refusal::new(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            "unsupported_media_type",
                            format!(
                                "Content-Type must be application/x-protobuf or application/json, not {}",
                                content_type.as_deref().unwrap_or("none")
                            ),
                        )
                    })?;
                    let body = tokio::time::timeout(BODY_TIMEOUT, read_body(body, MAX_BODY))
                        .await
                        .map_err(|_| {
                            Refusal::new(
                                StatusCode::BAD_REQUEST,
                                "unreadable",
                                format!("the body did not arrive within {} s", BODY_TIMEOUT.as_secs()),
                            )
                        })?
                        .map_err(refused_body)?;
                    let body = decompress(encoding.as_deref(), body)?;
                    let (pieces, spans) = cut(&body, media).map_err(|detail| {
                        Refusal::new(StatusCode::BAD_REQUEST, "undecodable", detail)
                    })?;
                    Ok::<_, Refusal>((media, pieces, spans))
                }
                .await;
                match outcome {
                    Ok((media, pieces, spans)) => {
                        store.keep(pieces, spans);
                        store.counts.exports.with_label_values(&["accepted"]).inc();
                        accepted(media)
                    }
                    Err(refusal) => {
                        store
                            .counts
                            .exports
                            .with_label_values(&[refusal.outcome])
                            .inc();
                        tracing::warn!(
                            status = refusal.status.as_u16(),
                            reason = %refusal.message,
                            "an OTLP export was refused"
                        );
                        refused(media.unwrap_or(Encoding::Json), refusal)
                    }
                }
            }
        });
    app.quiet_post_route("/v1/traces", export)
}

/// The request's pieces by trace, and how many spans it held. JSON is read into OTLP's types and
/// written as protobuf first; protobuf is cut as it is.
fn cut(body: &[u8], media: Encoding) -> Result<(Vec<(TraceKey, Piece)>, u64), String> {
    let protobuf;
    let body = match media {
        Encoding::Protobuf => body,
        Encoding::Json => {
            let request = otlp::request(body, media).map_err(|e| e.to_string())?;
            protobuf = request.encode_to_vec();
            &protobuf
        }
    };
    split::split(body).map_err(|e| format!("not an OTLP ExportTraceServiceRequest: {e}"))
}

fn refused_body(error: BodyError) -> Refusal {
    match error {
        BodyError::TooLarge(_) => Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            error.to_string(),
        ),
        BodyError::Unreadable(_) => {
            Refusal::new(StatusCode::BAD_REQUEST, "unreadable", error.to_string())
        }
    }
}

/// The body as sent, or gunzipped (within [`MAX_DECOMPRESSED`]).
fn decompress(encoding: Option<&str>, body: Vec<u8>) -> Result<Vec<u8>, Refusal> {
    match encoding.map(str::trim) {
        None | Some("") => Ok(body),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(body),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_slice())
                .take(MAX_DECOMPRESSED as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|error| {
                    Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "unreadable",
                        format!("the body is not valid gzip: {error}"),
                    )
                })?;
            if out.len() > MAX_DECOMPRESSED {
                return Err(Refusal::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the body must be at most {MAX_DECOMPRESSED} bytes once decompressed"),
                ));
            }
            Ok(out)
        }
        Some(other) => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Encoding must be gzip or none, not {other}"),
        )),
    }
}

/// `200` with an empty `ExportTraceServiceResponse`: no bytes in protobuf, `{}` in JSON.
fn accepted(media: Encoding) -> Response {
    let body = match media {
        Encoding::Protobuf => Bytes::new(),
        Encoding::Json => Bytes::from_static(b"{}"),
    };
    with_type(StatusCode::OK, media, body)
}

/// The refusal's status with its `google.rpc.Status`.
fn refused(media: Encoding, refusal: Refusal) -> Response {
    let status = RpcStatus {
        code: INVALID_ARGUMENT,
        message: refusal.message,
    };
    let body = match media {
        Encoding::Protobuf => Bytes::from(status.encode_to_vec()),
        Encoding::Json => Bytes::from(
            serde_json::json!({ "code": status.code, "message": status.message }).to_string(),
        ),
    };
    with_type(refusal.status, media, body)
}

fn with_type(status: StatusCode, media: Encoding, body: Bytes) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(match media {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }),
    );
    response
}
