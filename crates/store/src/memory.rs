//! The traces the store keeps: the most recent ones, within a budget of bytes.
//!
//! A trace is kept as the protobuf pieces its spans came in ([`crate::split`]), so what is counted
//! is what is held: each piece's bytes, plus a fixed allowance for the bookkeeping around a piece
//! and around a trace. When the total passes the budget, whole traces go, the oldest first (by when
//! their first span arrived), until it fits again.

use std::collections::{HashMap, VecDeque};

use crate::split::{Piece, TraceKey};

/// What a piece costs beyond its bytes: its place in its trace's list, and the allocator's due.
const PIECE_OVERHEAD: usize = 48;
/// What a trace costs beyond its pieces: its entry in the map (with the map's spare room), its
/// place in the arrival order, and its list of pieces.
const TRACE_OVERHEAD: usize = 160;

/// The kept traces.
pub(crate) struct Memory {
    traces: HashMap<TraceKey, Kept>,
    /// Trace ids in the order their first span arrived, with that arrival's number.
    order: VecDeque<(TraceKey, u64)>,
    bytes: usize,
    budget: usize,
    arrivals: u64,
}

struct Kept {
    pieces: Vec<Piece>,
    bytes: usize,
    arrival: u64,
}

/// What an insert did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Inserted {
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

    /// Keeps `pieces`, then evicts the oldest traces while over the budget.
    pub(crate) fn insert(&mut self, pieces: Vec<(TraceKey, Piece)>) -> Inserted {
        let mut inserted = Inserted::default();
        for (trace, piece) in pieces {
            let kept = match self.traces.get_mut(&trace) {
                Some(kept) => kept,
                None => {
                    self.arrivals += 1;
                    self.order.push_back((trace, self.arrivals));
                    self.bytes += TRACE_OVERHEAD;
                    self.traces.entry(trace).or_insert(Kept {
                        pieces: Vec::new(),
                        bytes: TRACE_OVERHEAD,
                        arrival: self.arrivals,
                    })
                }
            };
            let size = piece.len() + PIECE_OVERHEAD;
            kept.pieces.push(piece);
            kept.bytes += size;
            self.bytes += size;
        }
        while self.bytes > self.budget {
            let Some((trace, arrival)) = self.order.pop_front() else {
                break;
            };
            if self
                .traces
                .get(&trace)
                .is_some_and(|k| k.arrival == arrival)
                && let Some(kept) = self.traces.remove(&trace)
            {
                self.bytes -= kept.bytes;
                inserted.evicted_traces += 1;
            }
        }
        if self.traces.capacity() > 4 * self.traces.len().max(64) {
            self.traces.shrink_to_fit();
        }
        inserted
    }

    /// A trace's pieces, in the order they came, if it is kept.
    pub(crate) fn get(&self, trace: &TraceKey) -> Option<Vec<Piece>> {
        self.traces.get(trace).map(|kept| kept.pieces.clone())
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
    use super::*;

    fn key(trace: u8) -> TraceKey {
        [trace; 16]
    }

    #[test]
    fn the_oldest_traces_go_first_and_the_budget_holds() {
        let piece = vec![7u8; 100];
        let one = piece.len() + PIECE_OVERHEAD;
        let mut memory = Memory::new((one + TRACE_OVERHEAD) * 5 + one * 5);
        for trace in 0..5 {
            memory.insert(vec![
                (key(trace), piece.clone()),
                (key(trace), piece.clone()),
            ]);
        }
        assert_eq!(memory.traces(), 5);
        assert_eq!(memory.bytes(), (2 * one + TRACE_OVERHEAD) * 5);
        // A piece of an old trace keeps the trace's place in the order.
        let done = memory.insert(vec![(key(5), piece.clone()), (key(0), piece.clone())]);
        assert_eq!(done.evicted_traces, 1);
        assert!(memory.get(&key(0)).is_none(), "the oldest went");
        assert!(memory.get(&key(1)).is_some());
        assert!(memory.bytes() <= memory.budget);
        assert_eq!(memory.get(&key(5)).unwrap(), vec![piece]);
    }
}
