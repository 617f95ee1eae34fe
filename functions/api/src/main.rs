//! `api` Lambda: wiring only. API Gateway (HTTP API) requests → the query API's use cases.

use iotdp::api::http_adapter::{api_request, caller_of, console_response, http_response};
use iotdp::config::ApiConfig;
use iotdp::config::FromEnvironment;
use iotdp::wiring::{load_sdk_config, query_api};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = ApiConfig::from_env()?;
    let api = query_api(&load_sdk_config().await, &config).await?;
    lambda_http::run(service_fn(|request: Request| {
        let (api, config) = (&api, &config);
        async move {
            let sign_in = config.console_sign_in.as_ref();
            if let Some(page) = console_response(request.method(), request.uri().path(), sign_in) {
                let (parts, body) = page.into_parts();
                return Ok(Response::from_parts(parts, Body::Text(body)));
            }
            let call = api_request(request.method(), request.uri(), request.body().as_ref());
            let caller = match request.request_context_ref() {
                Some(RequestContext::ApiGatewayV2(context)) => caller_of(context),
                _ => iotdp::api::access::Caller::from_claims(&Default::default()),
            };
            let response = api
                .handle(&call, &caller, chrono::Utc::now().timestamp_millis())
                .await;
            let (parts, body) = http_response(&response).into_parts();
            Ok::<_, Error>(Response::from_parts(parts, Body::Text(body)))
        }
    }))
    .await
}
