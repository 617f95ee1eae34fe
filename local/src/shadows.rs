//! The local IoT Core stand-in's Device Shadow service: the classic (unnamed) shadow of every
//! thing, kept in memory by the documented merge, version and delta rules
//! ([`iotdp::commands::shadow`]), reached two ways that see the same documents:
//!
//! - over MQTT: a publish on `$aws/things/<name>/shadow/update` or `/get` is answered on
//!   `/update/accepted` or `/update/rejected` (with `/update/delta` and `/update/documents`
//!   after an accepted update), or `/get/accepted` or `/get/rejected`, echoing `clientToken`;
//! - over HTTP, as the IoT Data Plane API (`GET`/`POST /things/<name>/shadow`), which the
//!   platform's functions call through `IOT_DATA_ENDPOINT` with the same SDK adapter a
//!   deployment uses. An update there publishes the same topics, so a command issued through
//!   the query API reaches the device as a delta.
//!
//! This replaces moto's shadow storage for the local platform: moto's IoT Data Plane keeps
//! shadows but publishes nothing, so devices could never see what the API wrote. Named
//! shadows are not implemented (answered 404 / rejected).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use iotdp::commands::shadow::{ShadowDocument, ShadowRejection};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Every thing's shadow.
#[derive(Debug, Default)]
pub struct ShadowBook {
    shadows: Mutex<HashMap<String, ShadowDocument>>,
    updates: std::sync::atomic::AtomicU64,
}

impl ShadowBook {
    pub fn get(&self, thing: &str) -> Option<ShadowDocument> {
        self.shadows
            .lock()
            .ok()?
            .get(thing)
            .filter(|s| s.exists())
            .cloned()
    }

    /// Accepted updates so far (the live view shows them).
    pub fn updates(&self) -> u64 {
        self.updates.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Which shadow operation a topic names: (`thing`, `"update"` or `"get"`).
fn shadow_operation(topic: &str) -> Option<(&str, &str)> {
    let rest = topic.strip_prefix("$aws/things/")?;
    let (thing, operation) = rest.split_once("/shadow/")?;
    (!thing.is_empty() && matches!(operation, "update" | "get")).then_some((thing, operation))
}

fn with_token(mut body: Value, request: &Value) -> Value {
    if let Some(token) = request.get("clientToken") {
        body["clientToken"] = token.clone();
    }
    body
}

fn rejection_body(rejection: &ShadowRejection, request: &Value) -> Value {
    with_token(
        json!({ "code": rejection.code, "message": rejection.message, "timestamp": now_s() }),
        request,
    )
}

/// A message the shadow service publishes, as IoT Core would; the broker delivers it to
/// subscribers and the rules engine. The service only says what to publish, so it never needs
/// the broker, and the broker can hold the shadows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePublish {
    pub topic: String,
    pub payload: Bytes,
}

impl ServicePublish {
    fn new(topic: String, body: &Value) -> Self {
        Self {
            topic,
            payload: Bytes::from(body.to_string()),
        }
    }
}

/// Apply an update to `thing`'s shadow: the accepted document or the rejection, and what IoT
/// Core publishes for it, in order.
pub fn update(
    book: &ShadowBook,
    thing: &str,
    request: &Value,
) -> (Result<Value, ShadowRejection>, Vec<ServicePublish>) {
    let prefix = format!("$aws/things/{thing}/shadow/update");
    let Ok(mut shadows) = book.shadows.lock() else {
        let poisoned = ShadowRejection {
            code: 500,
            message: "the shadow book's lock is poisoned".into(),
        };
        return (Err(poisoned), Vec::new());
    };
    let shadow = shadows.entry(thing.to_owned()).or_default();
    // The request's `clientToken` is echoed, never stored.
    let mut state_request = request.clone();
    if let Some(map) = state_request.as_object_mut() {
        map.remove("clientToken");
    }
    let outcome = shadow.apply(&state_request, now_s());
    drop(shadows);
    match outcome {
        Ok(outcome) => {
            book.updates
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let accepted = with_token(outcome.accepted, request);
            let mut publishes = vec![
                ServicePublish::new(format!("{prefix}/accepted"), &accepted),
                ServicePublish::new(format!("{prefix}/documents"), &outcome.documents),
            ];
            if let Some(delta) = outcome.delta {
                publishes.push(ServicePublish::new(format!("{prefix}/delta"), &delta));
            }
            (Ok(accepted), publishes)
        }
        Err(rejection) => {
            let rejected = ServicePublish::new(
                format!("{prefix}/rejected"),
                &rejection_body(&rejection, request),
            );
            (Err(rejection), vec![rejected])
        }
    }
}

/// What IoT Core publishes in answer to a device's publish on `topic`: nothing unless it is a
/// shadow request.
pub fn answer(book: &ShadowBook, topic: &str, payload: &[u8]) -> Vec<ServicePublish> {
    let Some((thing, operation)) = shadow_operation(topic) else {
        return Vec::new();
    };
    let request: Value = if payload.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(payload).unwrap_or(Value::Null)
    };
    if operation == "update" {
        return update(book, thing, &request).1;
    }
    let prefix = format!("$aws/things/{thing}/shadow/{operation}");
    let (topic, body) = match book.get(thing) {
        Some(shadow) => (
            format!("{prefix}/accepted"),
            with_token(shadow.to_json(), &request),
        ),
        None => (
            format!("{prefix}/rejected"),
            rejection_body(
                &ShadowRejection {
                    code: 404,
                    message: format!("No shadow exists with name: '{thing}'"),
                },
                &request,
            ),
        ),
    };
    vec![ServicePublish::new(topic, &body)]
}

/// The error shape the AWS SDK reads (`x-amzn-ErrorType` and a JSON `message`).
fn error_response(status: u16, kind: &str, message: &str) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-ErrorType", kind)
        .body(Full::new(Bytes::from(
            json!({ "message": message }).to_string(),
        )))
        .unwrap_or_default()
}

fn ok_response(body: &Value) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

/// One IoT Data Plane request: the response, and what an update publishes.
pub fn data_plane(
    book: &ShadowBook,
    method: &hyper::Method,
    uri: &hyper::Uri,
    body: &[u8],
) -> (hyper::Response<Full<Bytes>>, Vec<ServicePublish>) {
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let named = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("name=")));
    let ["things", thing, "shadow"] = segments.as_slice() else {
        return answered(error_response(
            404,
            "ResourceNotFoundException",
            &format!(
                "the local IoT Data Plane serves /things/<name>/shadow only, not {}",
                uri.path()
            ),
        ));
    };
    if named {
        return answered(error_response(
            404,
            "ResourceNotFoundException",
            "named shadows are not implemented locally; use the classic shadow",
        ));
    }
    match *method {
        hyper::Method::GET => answered(match book.get(thing) {
            Some(shadow) => ok_response(&shadow.to_json()),
            None => error_response(
                404,
                "ResourceNotFoundException",
                &format!("No shadow exists with name: '{thing}'"),
            ),
        }),
        hyper::Method::POST => {
            let Ok(request) = serde_json::from_slice::<Value>(body) else {
                return answered(error_response(
                    400,
                    "InvalidRequestException",
                    "Payload contains invalid json",
                ));
            };
            let (outcome, publishes) = update(book, thing, &request);
            let response = match outcome {
                Ok(accepted) => ok_response(&accepted),
                Err(r) if r.code == 409 => error_response(409, "ConflictException", &r.message),
                Err(r) => error_response(400, "InvalidRequestException", &r.message),
            };
            (response, publishes)
        }
        _ => answered(error_response(
            405,
            "MethodNotAllowedException",
            &format!("{method} is not allowed on {}", uri.path()),
        )),
    }
}

/// A response that publishes nothing.
fn answered(
    response: hyper::Response<Full<Bytes>>,
) -> (hyper::Response<Full<Bytes>>, Vec<ServicePublish>) {
    (response, Vec::new())
}

/// Serve the IoT Data Plane's shadow API over `book` on `listener` until `shutdown` turns
/// true, handing what each request publishes to `publish` before it is answered (so a device
/// sees its delta no later than the caller sees its 200).
pub async fn serve_data_plane<P, Fut>(
    listener: TcpListener,
    book: Arc<ShadowBook>,
    publish: P,
    shutdown: watch::Receiver<bool>,
) where
    P: Fn(Vec<ServicePublish>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    crate::http_server::serve_http(listener, shutdown, move |parts, bytes| {
        let (book, publish) = (book.clone(), publish.clone());
        async move {
            let (response, publishes) = data_plane(&book, &parts.method, &parts.uri, &bytes);
            publish(publishes).await;
            response
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_topics_name_the_thing_and_the_operation() {
        assert_eq!(
            shadow_operation("$aws/things/ac-1/shadow/update"),
            Some(("ac-1", "update"))
        );
        assert_eq!(
            shadow_operation("$aws/things/ac-1/shadow/get"),
            Some(("ac-1", "get"))
        );
        assert_eq!(
            shadow_operation("$aws/things/ac-1/shadow/update/delta"),
            None
        );
        assert_eq!(
            shadow_operation("$aws/things/ac-1/shadow/name/x/update"),
            None
        );
        assert_eq!(shadow_operation("dt/ac-1/telemetry"), None);
    }
}
