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

    /// OTLP's number for the kind.
    pub fn otlp(self) -> i32 {
        match self {
            Self::Unspecified => 0,
            Self::Internal => 1,
            Self::Server => 2,
            Self::Client => 3,
            Self::Producer => 4,
            Self::Consumer => 5,
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

    /// OTLP's number for the status.
    pub fn otlp(self) -> i32 {
        match self {
            Self::Unset => 0,
            Self::Ok => 1,
            Self::Error => 2,
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

    /// About how many bytes the span holds, its shared resource left out: what a store counts
    /// against its memory budget.
    pub fn size(&self) -> usize {
        fn value(v: &Value) -> usize {
            match v {
                Value::String(s) => s.len() + 24,
                Value::Array(items) => items.iter().map(value).sum::<usize>() + 24,
                _ => 16,
            }
        }
        std::mem::size_of::<Self>()
            + self.trace_id.len()
            + self.span_id.len()
            + self.parent_span_id.len()
            + self.name.len()
            + self.scope.len()
            + self.status_message.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + value(v) + 48)
                .sum::<usize>()
    }
}
