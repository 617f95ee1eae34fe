//! `api` Lambda: wiring only. API Gateway (HTTP API) requests → the query API's HTTP adapter.

use iotdp::api::http_adapter::Authority;
use iotdp::config::{ApiConfig, FromEnvironment};
use iotdp::wiring::{load_sdk_config, query_api};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = ApiConfig::from_env()?;
    let api = query_api(&load_sdk_config().await, &config).await?;
    lambda_http::run(service_fn(|request: Request| {
        let (api, sign_in) = (&api, config.console_sign_in.as_ref());
        async move {
            let context = match request.request_context_ref() {
                Some(RequestContext::ApiGatewayV2(context)) => Some(context),
                _ => None,
            };
            let now_ms = chrono::Utc::now().timestamp_millis();
            let response = api
                .answer(&request, Authority::ApiGateway(context), sign_in, now_ms)
                .await;
            Ok::<_, Error>(response.map(Body::Text))
        }
    }))
    .await
}
