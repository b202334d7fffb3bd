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
//! A quiet route ([`App::quiet_route`], [`App::quiet_post_route`]) is one that tools poll: it is
//! counted, but has no span and logs at debug, so polling a trace does not make traces. An app
//! made [`App::without_faults`] (the lab's store) has no fault switches and no `/admin/faults`.

use std::future::Future;

use http::{Method, StatusCode};
use prometheus::Registry;
use telemetry::metrics;
use warp::filters::BoxedFilter;
use warp::reply::{Reply as _, Response};
use warp::{Filter, Rejection};

use crate::faults::{FaultSettings, Faults, Switch};
use crate::observe::{self, HttpMetrics, Record, Request};
use crate::reply::{json, json_error, method_not_allowed, no_query, raw_query};
use crate::server::Routes;

/// A service's routes under construction.
pub struct App {
    registry: Registry,
    http: HttpMetrics,
    faults: Option<Faults>,
    routes: Option<BoxedFilter<(Response,)>>,
}

/// The methods a route answers.
#[derive(Clone, Copy)]
enum Methods {
    GetHead,
    Post,
}

impl Methods {
    fn allows(self, method: &Method) -> bool {
        match self {
            Self::GetHead => method == Method::GET || method == Method::HEAD,
            Self::Post => method == Method::POST,
        }
    }

    fn names(self) -> &'static str {
        match self {
            Self::GetHead => "GET, HEAD",
            Self::Post => "POST",
        }
    }
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
            faults: Some(faults),
            routes: None,
        }
    }

    /// An app with no fault switches: no `/admin/faults`, and API routes answer as they are.
    pub fn without_faults() -> Self {
        let registry = metrics::registry();
        let http = HttpMetrics::new(&registry);
        Self {
            registry,
            http,
            faults: None,
            routes: None,
        }
    }

    /// The registry the service adds its own metrics to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A route that is not part of the service's API (a page, its assets): no fault applies.
    /// `filter` must match the path only and yield the future that answers it.
    pub fn route<F, Fut>(self, template: &'static str, filter: F) -> Self
    where
        F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.add(template, filter, Methods::GetHead, Record::Traced)
    }

    /// A GET route that tools poll: counted, with no span, its access line at debug, no fault.
    /// `filter` reads its own query, if it takes one; [`without_query`] refuses any for one that
    /// takes none.
    pub fn quiet_route<F, Fut>(self, template: &'static str, filter: F) -> Self
    where
        F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.add(template, filter, Methods::GetHead, Record::Quiet)
    }

    /// A POST route that tools call (the store's OTLP receiver): recorded as a quiet route.
    pub fn quiet_post_route<F, Fut>(self, template: &'static str, filter: F) -> Self
    where
        F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.add(template, filter, Methods::Post, Record::Quiet)
    }

    fn add<F, Fut>(
        mut self,
        template: &'static str,
        filter: F,
        methods: Methods,
        record: Record,
    ) -> Self
    where
        F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let route = observed(&self.http, template, filter, methods, record);
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
        self.api_route_with_query(template, without_query(template, filter))
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
                    let injected = match &faults {
                        Some(faults) => faults.inject().await,
                        None => None,
                    };
                    match injected {
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
        let mut common = healthz(&http)
            .or(metrics_page(&http, registry.clone()))
            .unify()
            .boxed();
        if let Some(faults) = faults {
            common = common.or(faults.admin(&http)).unify().boxed();
        }
        let common = common.or(not_found(&http)).unify().boxed();
        let filter = match routes {
            Some(routes) => routes.or(common).unify().boxed(),
            None => common,
        };
        Routes { filter, registry }
    }
}

/// `filter`, which takes no query: a request with one gets the contract's 400 naming `template`
/// instead of the answer.
pub fn without_query<F, Fut>(
    template: &'static str,
    filter: F,
) -> impl Filter<Extract = (impl Future<Output = Response> + Send + 'static,), Error = Rejection>
+ Clone
+ Send
+ Sync
+ 'static
where
    F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    filter
        .and(raw_query())
        .map(move |answer: Fut, query: String| async move {
            match no_query(template, &query) {
                None => answer.await,
                Some(refusal) => refusal,
            }
        })
}

/// One route, observed; methods it does not answer get a 405.
fn observed<F, Fut>(
    http: &HttpMetrics,
    template: &'static str,
    filter: F,
    methods: Methods,
    record: Record,
) -> BoxedFilter<(Response,)>
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
                if methods.allows(&request.method) {
                    observe::observe(&http, Some(template), record, request, answer).await
                } else {
                    let method = request.method.clone();
                    let refuse = async move {
                        let answers = match methods {
                            Methods::GetHead => "GET",
                            Methods::Post => "POST",
                        };
                        method_not_allowed(
                            format!("{template} answers {answers}, not {method}"),
                            methods.names(),
                        )
                    };
                    observe::observe(&http, Some(template), record, request, refuse).await
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
            let path = request.path.clone();
            async move {
                let answer = async move {
                    json_error(StatusCode::NOT_FOUND, format!("no route for {path}"))
                };
                observe::observe(&http, None, Record::Traced, request, answer).await
            }
        })
        .boxed()
}

/// `/healthz`: 200 once the service is serving.
fn healthz(http: &HttpMetrics) -> BoxedFilter<(Response,)> {
    observed(
        http,
        "/healthz",
        warp::path!("healthz")
            .map(|| async { json(StatusCode::OK, &serde_json::json!({"status": "ok"})) }),
        Methods::GetHead,
        Record::Traced,
    )
}

/// `/metrics`: the registry in the Prometheus text format.
fn metrics_page(http: &HttpMetrics, registry: Registry) -> BoxedFilter<(Response,)> {
    observed(
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
        Methods::GetHead,
        Record::Traced,
    )
}
