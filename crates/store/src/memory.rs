//! The traces the store keeps: the most recent ones, within a budget of bytes.
//!
//! Spans are grouped by trace as they arrive. Each span is counted at about the bytes it holds
//! ([`traces::Span::size`]); when the total passes the budget, whole traces go, the oldest first
//! (by when their first span arrived), until it fits again.

use std::collections::{HashMap, VecDeque};

use traces::Span;

/// The kept traces.
pub(crate) struct Memory {
    traces: HashMap<String, Kept>,
    /// Trace ids in the order their first span arrived, with that arrival's number.
    order: VecDeque<(String, u64)>,
    bytes: usize,
    budget: usize,
    arrivals: u64,
}

struct Kept {
    spans: Vec<Span>,
    bytes: usize,
    arrival: u64,
}

/// What an insert did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Inserted {
    pub(crate) spans: usize,
    pub(crate) evicted_traces: usize,
}

impl Memory {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            traces: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            budget,
            arrivals: 0,
        }
    }

    /// Keeps `spans`, then evicts the oldest traces while over the budget.
    pub(crate) fn insert(&mut self, spans: Vec<Span>) -> Inserted {
        let mut inserted = Inserted {
            spans: spans.len(),
            ..Inserted::default()
        };
        for span in spans {
            let size = span.size();
            let kept = match self.traces.get_mut(&span.trace_id) {
                Some(kept) => kept,
                None => {
                    self.arrivals += 1;
                    self.order.push_back((span.trace_id.clone(), self.arrivals));
                    self.traces.entry(span.trace_id.clone()).or_insert(Kept {
                        spans: Vec::new(),
                        bytes: 0,
                        arrival: self.arrivals,
                    })
                }
            };
            kept.spans.push(span);
            kept.bytes += size;
            self.bytes += size;
        }
        while self.bytes > self.budget {
            let Some((trace_id, arrival)) = self.order.pop_front() else {
                break;
            };
            if self
                .traces
                .get(&trace_id)
                .is_some_and(|k| k.arrival == arrival)
                && let Some(kept) = self.traces.remove(&trace_id)
            {
                self.bytes -= kept.bytes;
                inserted.evicted_traces += 1;
            }
        }
        inserted
    }

    /// The spans of a trace, in the order they arrived.
    pub(crate) fn get(&self, trace_id: &str) -> Option<Vec<Span>> {
        self.traces.get(trace_id).map(|kept| kept.spans.clone())
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn traces(&self) -> usize {
        self.traces.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use traces::{Kind, Status};

    use super::*;

    fn span(trace: u32, id: u32) -> Span {
        Span {
            trace_id: format!("{trace:032x}"),
            span_id: format!("{id:016x}"),
            parent_span_id: String::new(),
            name: "roll".into(),
            kind: Kind::Internal,
            attributes: BTreeMap::new(),
            resource: Arc::new(BTreeMap::new()),
            scope: String::new(),
            status: Status::Unset,
            status_message: String::new(),
            start_ns: 1,
            end_ns: 2,
        }
    }

    #[test]
    fn the_oldest_traces_go_first_and_the_budget_holds() {
        let one = span(0, 0).size();
        let mut memory = Memory::new(one * 10);
        for trace in 0..5 {
            memory.insert(vec![span(trace, 1), span(trace, 2)]);
        }
        assert_eq!((memory.traces(), memory.bytes()), (5, one * 10));
        // A span for an old trace keeps its place in the order.
        let done = memory.insert(vec![span(5, 1), span(0, 3)]);
        assert_eq!(done.evicted_traces, 1);
        assert!(
            memory.get(&format!("{:032x}", 0)).is_none(),
            "the oldest went"
        );
        assert!(memory.get(&format!("{:032x}", 1)).is_some());
        assert!(memory.bytes() <= one * 10);
        assert_eq!(memory.get(&format!("{:032x}", 5)).unwrap().len(), 1);
    }
}
