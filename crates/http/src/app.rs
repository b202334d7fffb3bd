//! A service's routes, each traced, counted and logged, plus what every service answers.
//!
//! A service creates an [`App`] (which holds its own Prometheus registry, so two services in one
//! test process keep separate numbers), adds its routes, and turns it into one warp filter with
//! [`App::into_routes`]: its own routes first, then `/healthz`, `/metrics`, `/admin/faults` and,
//! for any other path, a JSON 404. Each route is given as a warp filter that matches the path and
//! yields the future that answers it; the app runs that future inside the request's SERVER span
//! (`observe`). Methods other than GET and HEAD get a JSON 405, so a client never sees
//! warp's plain-text rejections. API routes have the fault switches in front of them, and refuse
//! query parameters unless they read their own query ([`App::api_route_with_query`]); the page,
//! its assets, `/healthz` and `/metrics` ignore a query, as browsers and scrapers may send one.

use std::future::Future;

use http::{Method, StatusCode};
use prometheus::Registry;
use telemetry::metrics;
use warp::filters::BoxedFilter;
use warp::reply::{Reply as _, Response};
use warp::{Filter, Rejection};

use crate::faults::{FaultSettings, Faults, Switch};
use crate::observe::{self, HttpMetrics, Request};
use crate::reply::{json, json_error, method_not_allowed, raw_query};
use crate::server::Routes;

/// A service's routes under construction.
pub struct App {
    registry: Registry,
    http: HttpMetrics,
    faults: Faults,
    routes: Option<BoxedFilter<(Response,)>>,
}

impl App {
    /// An app for `service` with its fault switches (`settings`, and its own `switches`).
    pub fn new(service: &'static str, settings: &FaultSettings, switches: Vec<Switch>) -> Self {
        let registry = metrics::registry();
        let http = HttpMetrics::new(&registry);
        let faults = Faults::new(service, settings, switches, &registry);
        Self {
            registry,
            http,
            faults,
            routes: None,
        }
    }

    /// The registry the service adds its own metrics to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A route that is not part of the service's API (a page, its assets): no fault applies.
    /// `filter` must match the path only and yield the future that answers it.
    pub fn route<F, Fut>(mut self, template: &'static str, filter: F) -> Self
    where
        F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let route = traced(&self.http, template, filter);
        self.routes = Some(match self.routes.take() {
            Some(routes) => routes.or(route).unify().boxed(),
            None => route,
        });
        self
    }

    /// A route of the service's API that takes no query parameters: inside the request's span,
    /// the switched-on latency comes first, then maybe an injected 500 instead of the answer.
    pub fn api_route<F, Fut>(self, template: &'static str, filter: F) -> Self
    where
        F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let strict = filter
            .and(raw_query())
            .map(move |answer: Fut, query: String| async move {
                if query.is_empty() {
                    answer.await
                } else {
                    no_parameters(template)
                }
            });
        self.api_route_with_query(template, strict)
    }

    /// A route of the service's API that reads its own query (and says which parameters it
    /// takes): the fault switches as in [`App::api_route`].
    pub fn api_route_with_query<F, Fut>(self, template: &'static str, filter: F) -> Self
    where
        F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let faults = self.faults.clone();
        self.route(
            template,
            filter.map(move |answer: Fut| {
                let faults = faults.clone();
                async move {
                    match faults.inject().await {
                        Some(injected) => injected,
                        None => answer.await,
                    }
                }
            }),
        )
    }

    /// The service's routes, then `/healthz`, `/metrics`, `/admin/faults` and a JSON 404, with
    /// the registry of their metrics.
    pub fn into_routes(self) -> Routes {
        let Self {
            registry,
            http,
            faults,
            routes,
        } = self;
        let common = healthz(&http)
            .or(metrics_page(&http, registry.clone()))
            .unify()
            .or(faults.admin(&http))
            .unify()
            .or(not_found(&http))
            .unify()
            .boxed();
        let filter = match routes {
            Some(routes) => routes.or(common).unify().boxed(),
            None => common,
        };
        Routes { filter, registry }
    }
}

/// The 400 of an API route asked with parameters it does not take.
fn no_parameters(template: &str) -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        format!("{template} takes no query parameters"),
    )
}

/// One route, observed; other methods than GET and HEAD get a 405.
fn traced<F, Fut>(http: &HttpMetrics, template: &'static str, filter: F) -> BoxedFilter<(Response,)>
where
    F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let http = http.clone();
    filter
        .and(observe::request())
        .then(move |answer: Fut, request: Request| {
            let http = http.clone();
            async move {
                if request.method == Method::GET || request.method == Method::HEAD {
                    observe::observe(&http, Some(template), request, answer).await
                } else {
                    let method = request.method.clone();
                    let refuse = async move {
                        method_not_allowed(
                            format!("{template} answers GET, not {method}"),
                            "GET, HEAD",
                        )
                    };
                    observe::observe(&http, Some(template), request, refuse).await
                }
            }
        })
        .boxed()
}

/// The last route: a JSON 404 for any path no other route matched.
fn not_found(http: &HttpMetrics) -> BoxedFilter<(Response,)> {
    let http = http.clone();
    observe::request()
        .then(move |request: Request| {
            let http = http.clone();
            let path = telemetry::truncate(&request.path).into_owned();
            async move {
                let answer = async move {
                    json_error(StatusCode::NOT_FOUND, format!("no route for {path}"))
                };
                observe::observe(&http, None, request, answer).await
            }
        })
        .boxed()
}

/// `/healthz`: 200 once the service is serving.
fn healthz(http: &HttpMetrics) -> BoxedFilter<(Response,)> {
    traced(
        http,
        "/healthz",
        warp::path!("healthz")
            .map(|| async { json(StatusCode::OK, &serde_json::json!({"status": "ok"})) }),
    )
}

/// `/metrics`: the registry in the Prometheus text format.
fn metrics_page(http: &HttpMetrics, registry: Registry) -> BoxedFilter<(Response,)> {
    traced(
        http,
        "/metrics",
        warp::path!("metrics").map(move || {
            let registry = registry.clone();
            async move {
                let mut response = metrics::encode(&registry).into_response();
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
        }),
    )
}
