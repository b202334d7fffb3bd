//! The HTTP side that every dice-lab service shares, so that no service carries a copy of it.
//!
//! A service describes its routes to an [`app::App`], which wraps each one in the request's
//! SERVER span, access line and metrics (`observe`), puts the [`faults`] switches in front of
//! the API routes, and adds `/healthz`, `/metrics`, `/admin/faults` and a JSON 404. A
//! [`server::Server`] serves the result on a listener until a shutdown signal and drains it;
//! [`runner::run_service`] is the life of a service binary around both. [`client::Upstream`] makes
//! the calls to other services, as CLIENT spans with their own errors and metrics. [`reply`] holds
//! the JSON answers, and the one mapping from an error to its status; `propagation` reads and
//! writes the W3C trace context headers.
//!
//! Modules depend one way: `reply`, `server` and `propagation` at the bottom; `observe` uses all
//! three; `faults` uses `observe` and `reply`; `app` uses `faults`, `observe`, `reply` and
//! `server`; `client` uses `reply` and `propagation`; `runner` uses `server` and `client`.

pub mod app;
pub mod client;
pub mod faults;
mod observe;
mod propagation;
pub mod reply;
pub mod runner;
pub mod server;
