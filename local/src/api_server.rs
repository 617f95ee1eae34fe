//! The query API served on 127.0.0.1 by the same HTTP adapter the `api` Lambda runs
//! (`iotdp::api::http_adapter`), so a user can `curl` it while the simulated fleet runs. It
//! only listens locally: a request without a token is the local admin; a request with
//! `Authorization: Bearer <JWT>` is the caller its claims describe under the template's
//! `ApiAuth`, **not verified** (there is no identity provider here), so scoped access can be
//! tried and tested locally.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use tokio::net::TcpListener;
use tokio::sync::watch;

use iotdp::api::console::ConsoleSignIn;
use iotdp::api::http_adapter::Authority;
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
            let request = hyper::Request::from_parts(parts, bytes);
            let now_ms = chrono::Utc::now().timestamp_millis();
            let response = api
                .answer(
                    &request,
                    Authority::LocalUnverified,
                    sign_in.as_deref(),
                    now_ms,
                )
                .await;
            let mut answer = response.map(|b| Full::new(Bytes::from(b)));
            if let Ok(value) = hyper::header::HeaderValue::from_str(&source) {
                answer.headers_mut().insert(SOURCE_HEADER, value);
            }
            answer
        }
    })
    .await;
}
