//! The query API served on 127.0.0.1 by the same HTTP adapter the `api` Lambda runs
//! (`iotdp::api::http_adapter`), so a user can `curl` it while the simulated fleet runs. It
//! only listens locally: a request without a token is the local admin; a request with
//! `Authorization: Bearer <JWT>` is the caller its claims describe under the template's
//! `ApiAuth`, **not verified** (there is no identity provider here), so scoped access can be
//! tried and tested locally.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use iotdp::api::console::ConsoleSignIn;
use iotdp::api::http_adapter::Authority;
use iotdp::wiring::AwsQueryApi;

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

/// Accept HTTP/1.1 connections on `listener` until `shutdown` turns true, answering each
/// request (its head and whole body) with `answer`: the local servers' one accept loop.
pub async fn serve_http<F, Fut>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    answer: F,
) where
    F: Fn(hyper::http::request::Parts, Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let answer = answer.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let bytes = body
                        .collect()
                        .await
                        .map(http_body_util::Collected::to_bytes)
                        .unwrap_or_default();
                    Ok::<_, Infallible>(answer(parts, bytes).await)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
