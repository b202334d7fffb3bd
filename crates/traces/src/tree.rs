//! The spans of one trace, as a tree.

use std::fmt::Write as _;

use crate::span::Span;

/// The spans of one trace.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    spans: Vec<Span>,
}

impl Trace {
    pub fn new(spans: Vec<Span>) -> Self {
        Self { spans }
    }

    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Spans whose parent is not in the trace (normally one: the root), earliest first.
    pub fn roots(&self) -> Vec<&Span> {
        let mut roots: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| !self.spans.iter().any(|p| p.span_id == s.parent_span_id))
            .collect();
        roots.sort_by_key(|s| s.start_ns);
        roots
    }

    /// A span's children, earliest first.
    pub fn children(&self, parent: &Span) -> Vec<&Span> {
        let mut children: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| s.parent_span_id == parent.span_id)
            .collect();
        children.sort_by_key(|s| s.start_ns);
        children
    }

    /// Spans of `service` named `name`.
    pub fn find(&self, service: &str, name: &str) -> Vec<&Span> {
        self.spans
            .iter()
            .filter(|s| s.service() == service && s.name == name)
            .collect()
    }

    /// How many spans of `service` are named `name`.
    pub fn count(&self, service: &str, name: &str) -> usize {
        self.find(service, name).len()
    }

    /// Every span with its depth, parents before their children and siblings earliest first: the
    /// order of a waterfall's rows.
    pub fn depth_first(&self) -> Vec<(usize, &Span)> {
        let mut out = Vec::with_capacity(self.spans.len());
        let mut stack: Vec<(usize, &Span)> =
            self.roots().into_iter().rev().map(|s| (0, s)).collect();
        while let Some((depth, span)) = stack.pop() {
            out.push((depth, span));
            stack.extend(
                self.children(span)
                    .into_iter()
                    .rev()
                    .map(|child| (depth + 1, child)),
            );
        }
        out
    }

    /// The tree as indented text: service, kind, name, status and duration of every span.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (depth, span) in self.depth_first() {
            let _ = writeln!(
                out,
                "{:indent$}{} {:?} '{}' {:?} {:.1} ms",
                "",
                span.service(),
                span.kind,
                span.name,
                span.status,
                span.duration_ns() as f64 / 1e6,
                indent = depth * 2
            );
        }
        out
    }
}
