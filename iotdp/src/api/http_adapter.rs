//! HTTP front ends (API Gateway through `lambda_http`, the local server through hyper) hand
//! their requests over as `http` types; this turns them into [`ApiRequest`]s and back.

use aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;

use crate::api::access::{Access, Caller};
use crate::api::console::{ConsoleSignIn, config_json};
use crate::api::{ApiRequest, ApiResponse};

pub fn api_request(method: &http::Method, uri: &http::Uri, body: &[u8]) -> ApiRequest {
    ApiRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        body: body.to_vec(),
    }
}

/// The console's page or file for a GET of `path`, if it is one (answered before any
/// authorization: the page holds no data; every call it makes is the API's, authorized as
/// usual).
pub fn console_response(
    method: &http::Method,
    path: &str,
    sign_in: Option<&ConsoleSignIn>,
) -> Option<http::Response<String>> {
    if method != http::Method::GET {
        return None;
    }
    let (content_type, body) = if path == "/console/config.json" {
        ("application/json", config_json(sign_in))
    } else {
        let asset = crate::api::console::asset(path)?;
        (asset.content_type, asset.body.to_owned())
    };
    // The page talks to this origin, and to the hosted UI's token endpoint when it signs in.
    let connect = sign_in.map_or(String::new(), |s| format!(" {}", s.origin()));
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        // Not content-hashed names: revalidate, so a new deployment is seen at once.
        .header(http::header::CACHE_CONTROL, "no-cache")
        .header("x-content-type-options", "nosniff")
        .header(
            "content-security-policy",
            format!(
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'{connect}; frame-ancestors 'none'"
            ),
        )
        .body(body)
        .ok()
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

/// The caller API Gateway (HTTP API, payload 2.0) authenticated: an IAM-signed caller has
/// the whole fleet as admin (IAM policy decides who may call at all); a JWT caller has the
/// role and scope its verified claims give; a request with neither (no authorizer in front
/// of the route) gets no role, so every route refuses it.
pub fn caller_of(context: &ApiGatewayV2httpRequestContext) -> Caller {
    let authorizer = context.authorizer.as_ref();
    if let Some(iam) = authorizer.and_then(|a| a.iam.as_ref()) {
        let identity = iam
            .user_arn
            .clone()
            .or_else(|| iam.caller_id.clone())
            .unwrap_or_else(|| "iam".into());
        return Caller::admin(identity);
    }
    if let Some(jwt) = authorizer.and_then(|a| a.jwt.as_ref()) {
        return Caller::from_claims(&jwt.claims);
    }
    Caller {
        identity: "anonymous".into(),
        role: None,
        access: Access::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::access::Role;
    use aws_lambda_events::apigw::ApiGatewayV2httpRequest;

    /// The request API Gateway sends, as its documentation shows it, with `authorizer` set.
    fn request_with(authorizer: serde_json::Value) -> ApiGatewayV2httpRequest {
        serde_json::from_value(serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/devices",
            "rawQueryString": "",
            "headers": {"accept": "application/json"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api-id",
                "authorizer": authorizer,
                "domainName": "id.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "id",
                "http": {"method": "GET", "path": "/devices", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "agent"},
                "requestId": "id",
                "routeKey": "$default",
                "stage": "$default",
                "time": "12/Mar/2020:19:03:58 +0000",
                "timeEpoch": 1583348638390i64
            },
            "isBase64Encoded": false
        }))
        .expect("the documented payload 2.0 shape")
    }

    #[test]
    fn a_cognito_jwt_gives_its_groups_role_and_places() {
        let request = request_with(serde_json::json!({
            "jwt": {
                "claims": {
                    "sub": "7d1c-…",
                    "cognito:username": "ana",
                    "cognito:groups": "[iotdp-operator place:site-1]",
                    "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x",
                    "token_use": "access"
                },
                "scopes": null
            }
        }));
        let caller = caller_of(&request.request_context);
        assert_eq!(caller.identity, "ana");
        assert_eq!(caller.role, Some(Role::Operator));
        assert_eq!(caller.access.describe(), "place:site-1");
    }

    #[test]
    fn an_iam_signed_caller_is_admin_of_the_fleet() {
        let request = request_with(serde_json::json!({
            "iam": {
                "accessKey": "AKIAEXAMPLE",
                "accountId": "123456789012",
                "callerId": "AIDAEXAMPLE",
                "principalOrgId": null,
                "userArn": "arn:aws:iam::123456789012:user/ops",
                "userId": "AIDAEXAMPLE"
            }
        }));
        let caller = caller_of(&request.request_context);
        assert_eq!(caller, Caller::admin("arn:aws:iam::123456789012:user/ops"));
    }

    #[test]
    fn no_authorizer_means_no_role() {
        let request = request_with(serde_json::Value::Null);
        assert_eq!(caller_of(&request.request_context).role, None);
    }
}
