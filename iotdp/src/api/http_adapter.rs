//! The query API over HTTP, written once for both front ends (API Gateway through
//! `lambda_http`, the local server through hyper): [`HttpApi::answer`] takes an `http`
//! request and who vouches for its caller, and gives the response: the console's files, or
//! the router's answer for the caller the configured sign-in mode ([`ApiAuth`]) reads.

use std::collections::HashMap;

use aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use base64::Engine as _;
use serde_json::Value;

use crate::alerting::ports::{AlertStateListing, AlertStateStore, RuleStore};
use crate::api::access::{ApiAuth, Caller, Claims};
use crate::api::console::{ConsoleSignIn, config_json};
use crate::api::{ApiRequest, ApiResponse, QueryApi};
use crate::commands::ports::{CommandStore, ShadowService};
use crate::devices::ports::DeviceRegistry;
use crate::query::ports::TimeSeriesReader;

/// The query API as its HTTP front ends serve it: the use cases, and how callers sign in,
/// which says the claims that give their role and scope.
pub struct HttpApi<Api> {
    pub api: Api,
    pub auth: ApiAuth,
}

/// Who vouches for a request's caller.
#[derive(Debug, Clone, Copy)]
pub enum Authority<'a> {
    /// API Gateway (HTTP API, payload 2.0): its authorizer checked the IAM signature or
    /// verified the JWT in `Authorization`; its request context says whom (`None`: no
    /// context, so no caller).
    ApiGateway(Option<&'a ApiGatewayV2httpRequestContext>),
    /// The local platform, where nobody checks anything: no token is the local admin, and a
    /// bearer token's claims are read unverified (there is no identity provider to verify
    /// them), so scoped access can be tried locally.
    LocalUnverified,
}

impl<R, T, A, U, S, K> HttpApi<QueryApi<R, T, A, U, S, K>>
where
    R: DeviceRegistry + crate::devices::ports::DeviceTypes,
    T: TimeSeriesReader,
    A: AlertStateStore + AlertStateListing,
    U: RuleStore,
    S: ShadowService,
    K: CommandStore,
{
    /// Answer `request` at wall-clock time `now_ms`: the console's page or file for a GET of
    /// one (before any authorization: they hold no data, and every call the page makes comes
    /// back here), else the API's answer to the caller `authority` vouches for.
    pub async fn answer<B: AsRef<[u8]>>(
        &self,
        request: &http::Request<B>,
        authority: Authority<'_>,
        sign_in: Option<&ConsoleSignIn>,
        now_ms: i64,
    ) -> http::Response<String> {
        if let Some(page) = console_response(request.method(), request.uri().path(), sign_in) {
            return page;
        }
        let call = api_request(request.method(), request.uri(), request.body().as_ref());
        let caller = caller(self.auth, request.headers(), authority);
        http_response(&self.api.handle(&call, &caller, now_ms).await)
    }
}

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

/// The caller of a request under the sign-in mode `auth`, as `authority` vouches for them.
pub fn caller(auth: ApiAuth, headers: &http::HeaderMap, authority: Authority<'_>) -> Caller {
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match authority {
        Authority::ApiGateway(context) => context.map_or_else(
            || Caller::nobody("anonymous"),
            |context| caller_of(auth, context, authorization),
        ),
        Authority::LocalUnverified => {
            let Some(token) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
                return Caller::admin("local");
            };
            // Locally the default, `iam`, has no signed-in users to stand in for: a token is
            // read as the stack's user pool's would be (docs/access.md).
            let mode = match auth {
                ApiAuth::Iam => ApiAuth::Cognito,
                other => other,
            };
            // A token that cannot be read gives a caller with no role: refused, not trusted.
            token_payload(token).map_or_else(
                || Caller::nobody("unknown"),
                |claims| Caller::from_claims(mode, &claims),
            )
        }
    }
}

/// The caller API Gateway (HTTP API, payload 2.0) authenticated: an IAM-signed caller has
/// the whole fleet as admin (IAM policy decides who may call at all); a JWT caller has the
/// role and scope its verified claims give under `auth`; a request with neither (no
/// authorizer in front of the route) gets no role, so every route refuses it.
/// `authorization` is the request's `Authorization` header, the token API Gateway verified.
pub fn caller_of(
    auth: ApiAuth,
    context: &ApiGatewayV2httpRequestContext,
    authorization: Option<&str>,
) -> Caller {
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
        return Caller::from_claims(auth, &verified_claims(&jwt.claims, authorization));
    }
    Caller::nobody("anonymous")
}

/// The claims API Gateway verified, typed. Its request context flattens an array claim to
/// `[a b]` text, which cannot be split back safely (a group name may hold a space), so each
/// such claim is read from the verified token's own payload instead: the JWT in
/// `authorization`, once its payload is shown to be that token's (every claim the context
/// holds as text or a flattened array of text, it holds the same). A flattened claim that
/// cannot be read so is left out, and logged: it narrows access, never widens it.
pub fn verified_claims(context: &HashMap<String, String>, authorization: Option<&str>) -> Claims {
    let payload = authorization
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v))
        .and_then(token_payload)
        .filter(|payload| {
            context.iter().all(|(name, text)| {
                payload
                    .get(name)
                    .is_some_and(|value| flattened(value).is_none_or(|f| f == *text))
            })
        });
    let mut claims = Claims::new();
    for (name, text) in context {
        let value = match payload.as_ref().and_then(|p| p.get(name)) {
            Some(value) => value.clone(),
            None if text.starts_with('[') && text.ends_with(']') => {
                tracing::warn!(
                    claims = "ignored",
                    "claim {name} is an array API Gateway flattened, and the token in Authorization does not carry the same claims, so {name} gives nothing"
                );
                continue;
            }
            None => Value::String(text.clone()),
        };
        claims.insert(name.clone(), value);
    }
    claims
}

/// A claim as API Gateway's context holds it, where that is known: text as itself, an
/// array of text as `[a b]`.
fn flattened(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Array(items) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .map(|items| format!("[{}]", items.join(" "))),
        _ => None,
    }
}

/// The claims in a JWT's payload (its signature is not checked here: API Gateway checked it,
/// or, locally, nobody does).
pub fn token_payload(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&json).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// An unsigned JWT carrying `claims`, as [`Authority::LocalUnverified`] reads it (tests and
/// the console's local sign-in use it; nothing deployed accepts it).
pub fn unsigned_token(claims: &Value) -> String {
    let part = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        part(&serde_json::json!({"alg": "none", "typ": "JWT"})),
        part(claims)
    )
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
        let token = unsigned_token(&serde_json::json!({
            "sub": "7d1c-…",
            "cognito:username": "ana",
            "cognito:groups": ["iotdp-operator", "place:site-1"],
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x",
            "token_use": "access"
        }));
        let bearer = format!("Bearer {token}");
        for authorization in [bearer.as_str(), token.as_str()] {
            let caller = caller_of(
                ApiAuth::Cognito,
                &request.request_context,
                Some(authorization),
            );
            assert_eq!(caller.identity, "ana");
            assert_eq!(caller.role, Some(Role::Operator));
            assert_eq!(caller.access.describe(), "place:site-1");
        }
        // Without the token, the flattened groups are not guessed at.
        let caller = caller_of(ApiAuth::Cognito, &request.request_context, None);
        assert_eq!((caller.identity.as_str(), caller.role), ("ana", None));
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
        for auth in ApiAuth::ALL {
            let caller = caller_of(auth, &request.request_context, None);
            assert_eq!(caller, Caller::admin("arn:aws:iam::123456789012:user/ops"));
        }
    }

    #[test]
    fn no_authorizer_means_no_role() {
        let request = request_with(serde_json::Value::Null);
        for auth in ApiAuth::ALL {
            assert_eq!(caller_of(auth, &request.request_context, None).role, None);
        }
    }
}
