//! Test support for dice-lab: real OTLP in, real services out.
//!
//! [`otlp::Receiver`] is an OTLP/HTTP endpoint, built on `opentelemetry-proto`, that the services
//! export to; it keeps every span it is sent and hands back whole traces as [`trace::Trace`] trees.
//! [`trace`] holds the assertions on a trace's shape that every suite uses, so "what a roll trace
//! looks like" is written once. [`process`] starts the real service binaries as child processes
//! (each with its own `service.name`, tracer provider and stdout), reads their JSON log lines, and
//! stops them with SIGTERM; [`in_process`] runs a service's routes inside the test on port 0, and
//! [`fixtures`] holds test dice and trace contexts; [`http`] the request helpers every suite uses
//! on either; [`prom`] reads `/metrics` pages; [`browser`] drives headless Chromium over
//! WebDriver; [`containers`] builds the services' images; [`wait`] polls for what arrives
//! asynchronously; [`signal`] stops what a test started; [`repo`] reads the repository's files;
//! [`backends`] is a fake Tempo and Loki serving what the services really sent; [`real_backends`]
//! starts the real Tempo, Loki and Prometheus as `dice-lab up` does, and [`alloy`] plays Alloy's
//! hops between the services and them.

pub mod alloy;
pub mod backends;
pub mod browser;
pub mod containers;
pub mod dashboards;
pub mod fixtures;
pub mod http;
pub mod in_process;
pub mod otlp;
pub mod process;
pub mod prom;
pub mod real_backends;
pub mod repo;
pub mod signal;
pub mod trace;
pub mod wait;
