//! Asking the lab over HTTP, as its users do: one set of request helpers for every suite, as
//! zero2prod's `tests/api/helpers.rs` gives its test app.
//!
//! [`Target`] is anything with a base URL: a service in this process ([`crate::in_process`]) or
//! a service process ([`crate::process`]). Its helpers send a request to a path and hand back the
//! status and the JSON body, checking that the body is JSON as the contract says.

use reqwest::Method;
use serde_json::Value;

use crate::prom;

/// An answer as a test looks at it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends `method` to `url` with an optional body and reads the whole answer.
pub async fn send(method: Method, url: &str, body: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new().request(method.clone(), url);
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    Answer {
        status,
        content_type,
        body,
    }
}

/// `GET url`, for a test outside tokio: the JSON body, or `Null` when nothing answers.
pub fn get_json_blocking(url: &str) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        match reqwest::get(url).await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        }
    })
}

/// Something that answers HTTP at a base URL.
#[allow(async_fn_in_trait)]
pub trait Target {
    /// `http://host:port`, without a trailing slash.
    fn url(&self) -> String;

    /// `method path` with an optional body: the status and the JSON body the contract promises.
    async fn call(&self, method: Method, path: &str, body: Option<&str>) -> (u16, Value) {
        let answer = send(method, &format!("{}{path}", self.url()), body).await;
        assert_eq!(
            answer.content_type, "application/json",
            "{path} answers JSON: {answer:?}"
        );
        (answer.status, answer.json())
    }

    /// `GET path`: the status and the JSON body.
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    /// `GET path`: the body as text, whatever it is.
    async fn get_text(&self, path: &str) -> String {
        send(Method::GET, &format!("{}{path}", self.url()), None)
            .await
            .body
    }

    /// The samples of its `/metrics` page.
    async fn metrics(&self) -> Vec<prom::Sample> {
        prom::parse(&self.get_text("/metrics").await)
    }
}
