//! HTTP front ends (API Gateway through `lambda_http`, the local server through hyper) hand
//! their requests over as `http` types; this turns them into [`ApiRequest`]s and back.

use crate::api::{ApiRequest, ApiResponse};

pub fn api_request(method: &http::Method, uri: &http::Uri, body: &[u8]) -> ApiRequest {
    ApiRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        body: body.to_vec(),
    }
}

pub fn http_response(response: &ApiResponse) -> http::Response<String> {
    let mut builder = http::Response::builder();
    if let Some(allow) = &response.allow {
        builder = builder.header(http::header::ALLOW, allow);
    }
    builder
        .status(response.status)
        .header(http::header::CONTENT_TYPE, response.content_type())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(response.body.to_string())
        .unwrap_or_else(|_| {
            let mut fallback = http::Response::new(String::from("{}"));
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}
