//! One span, as the lab's tools look at it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// A resource's attributes (`service.name`, `service.namespace`, ...), shared by its spans.
pub type Resource = Arc<BTreeMap<String, Value>>;

/// One span.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: Kind,
    /// Span attributes; strings, integers, doubles, booleans and lists as JSON values.
    pub attributes: BTreeMap<String, Value>,
    /// The resource's attributes.
    pub resource: Resource,
    /// The instrumentation scope's name.
    pub scope: String,
    pub status: Status,
    pub status_message: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// A span's kind, as OTLP numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// A span's status code, as OTLP numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Unset,
    Ok,
    Error,
}

impl Kind {
    /// The kind of OTLP's number.
    pub fn from_otlp(number: i32) -> Self {
        match number {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// The kind [`Kind::name`] names; `Unspecified` for any other word.
    pub fn from_name(name: &str) -> Self {
        [
            Self::Internal,
            Self::Server,
            Self::Client,
            Self::Producer,
            Self::Consumer,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
        .unwrap_or(Self::Unspecified)
    }

    /// The kind in lowercase: `server`, `client`, `internal`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

impl Status {
    /// The status of OTLP's number.
    pub fn from_otlp(number: i32) -> Self {
        match number {
            1 => Self::Ok,
            2 => Self::Error,
            _ => Self::Unset,
        }
    }

    /// The status [`Status::name`] names; `Unset` for any other word.
    pub fn from_name(name: &str) -> Self {
        [Self::Ok, Self::Error]
            .into_iter()
            .find(|status| status.name() == name)
            .unwrap_or(Self::Unset)
    }

    /// The status in lowercase: `unset`, `ok`, `error`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

impl Span {
    /// The resource's `service.name`.
    pub fn service(&self) -> &str {
        self.resource
            .get("service.name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// An attribute, or `Value::Null` when absent.
    pub fn attr(&self, key: &str) -> &Value {
        self.attributes.get(key).unwrap_or(&Value::Null)
    }

    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}
