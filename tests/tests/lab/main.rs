//! Every suite that needs no harness of its own, in one test binary (as zero2prod's
//! `tests/api/main.rs` does), so that the workspace links one binary for them, not ten. The
//! container suite and the lab guide have harnesses of their own (`containers.rs`, `guide.rs`).

mod backend_configs;
mod browser;
mod connections;
mod docs;
mod faults;
mod fuzz;
mod http_contract;
mod launcher;
mod nix;
mod observability;
mod parts;
mod startup;
mod store;
mod trace_view;
mod traces;
mod waterfall;
