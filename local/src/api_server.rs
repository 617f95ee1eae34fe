//! The query API served on 127.0.0.1 by the same handler code the `api` Lambda runs, so a user
//! can `curl` it while the simulated fleet runs. No authentication: it only listens locally.

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

use iotdp::api::http_adapter::{api_request, http_response};
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
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let api = api.clone();
        let source = source.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let api = api.clone();
                let source = source.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let bytes = body
                        .collect()
                        .await
                        .map(http_body_util::Collected::to_bytes)
                        .unwrap_or_default();
                    let call = api_request(&parts.method, &parts.uri, &bytes);
                    let response = api
                        .handle(&call, chrono::Utc::now().timestamp_millis())
                        .await;
                    let mut answer = http_response(&response).map(|b| Full::new(Bytes::from(b)));
                    if let Ok(value) = hyper::header::HeaderValue::from_str(&source) {
                        answer.headers_mut().insert(SOURCE_HEADER, value);
                    }
                    Ok::<_, Infallible>(answer)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
