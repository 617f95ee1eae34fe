//! The query API served on 127.0.0.1 by the same handler code the `api` Lambda runs, so a user
//! can `curl` it while the simulated fleet runs. It only listens locally: a request without a
//! token is the local admin; a request with `Authorization: Bearer <JWT>` is the caller its
//! claims describe, read as API Gateway's JWT authorizer hands them over but **not verified**
//! (there is no identity provider here), so scoped access can be tried and tested locally.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use tokio::net::TcpListener;
use tokio::sync::watch;

use base64::Engine as _;
use iotdp::api::access::Caller;
use iotdp::api::console::ConsoleSignIn;
use iotdp::api::http_adapter::{api_request, console_response, http_response};
use iotdp::wiring::AwsQueryApi;

use crate::http_server::serve_http;

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// The response header that says where readings come from (the store, or moto's canned
/// Timestream results), so no one mistakes the local answers for something they are not.
pub const SOURCE_HEADER: &str = "x-iotdp-readings-source";

/// Serve `api` on `listener` until `shutdown` turns true; every response carries `source` in
/// [`SOURCE_HEADER`].
pub async fn serve(
    listener: TcpListener,
    api: Arc<AwsQueryApi>,
    source: Arc<str>,
    sign_in: Option<Arc<ConsoleSignIn>>,
    shutdown: watch::Receiver<bool>,
) {
    serve_http(listener, shutdown, move |parts, bytes| {
        let (api, source, sign_in) = (api.clone(), source.clone(), sign_in.clone());
        async move {
            if let Some(page) =
                console_response(&parts.method, parts.uri.path(), sign_in.as_deref())
            {
                return page.map(|b| Full::new(Bytes::from(b)));
            }
            let call = api_request(&parts.method, &parts.uri, &bytes);
            let caller = local_caller(&parts.headers);
            let response = api
                .handle(&call, &caller, chrono::Utc::now().timestamp_millis())
                .await;
            let mut answer = http_response(&response).map(|b| Full::new(Bytes::from(b)));
            if let Ok(value) = hyper::header::HeaderValue::from_str(&source) {
                answer.headers_mut().insert(SOURCE_HEADER, value);
            }
            answer
        }
    })
    .await;
}

/// The caller of a local request: the bearer token's claims, or the local admin without one.
/// A token that cannot be read gives a caller with no role, so it is refused, not trusted.
pub fn local_caller(headers: &hyper::HeaderMap) -> Caller {
    let Some(token) = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Caller::admin("local");
    };
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.trim_end_matches('='))
                .ok()
        })
        .and_then(|json| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json).ok()
        })
        .map(|map| flattened_claims(&map))
        .unwrap_or_default();
    Caller::from_claims(&claims)
}

/// Claims as API Gateway's HTTP API passes them to the function: strings as they are, arrays
/// flattened to `[a b]`, anything else as its JSON text.
pub fn flattened_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
) -> std::collections::HashMap<String, String> {
    claims
        .iter()
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect()
}

/// An unsigned JWT carrying `claims`, as the local server reads it (tests and the console's
/// local sign-in use it; nothing deployed accepts it).
pub fn unsigned_token(claims: &serde_json::Value) -> String {
    let part = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.",
        part(&serde_json::json!({"alg": "none", "typ": "JWT"})),
        part(claims)
    )
}
