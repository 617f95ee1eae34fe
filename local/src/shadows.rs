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

use crate::broker::Broker;

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

/// Apply an update to `thing`'s shadow and publish what IoT Core would. The accepted document.
pub async fn update(
    broker: &Broker,
    thing: &str,
    request: &Value,
) -> Result<Value, ShadowRejection> {
    let prefix = format!("$aws/things/{thing}/shadow/update");
    let outcome = {
        let mut shadows = broker.shadows.shadows.lock().map_err(|_| ShadowRejection {
            code: 500,
            message: "the shadow book's lock is poisoned".into(),
        })?;
        let shadow = shadows.entry(thing.to_owned()).or_default();
        // The request's `clientToken` is echoed, never stored.
        let mut state_request = request.clone();
        if let Some(map) = state_request.as_object_mut() {
            map.remove("clientToken");
        }
        shadow.apply(&state_request, now_s())
    };
    match outcome {
        Ok(outcome) => {
            broker
                .shadows
                .updates
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let accepted = with_token(outcome.accepted, request);
            broker
                .publish_from_service(
                    format!("{prefix}/accepted"),
                    Bytes::from(accepted.to_string()),
                )
                .await;
            broker
                .publish_from_service(
                    format!("{prefix}/documents"),
                    Bytes::from(outcome.documents.to_string()),
                )
                .await;
            if let Some(delta) = outcome.delta {
                broker
                    .publish_from_service(format!("{prefix}/delta"), Bytes::from(delta.to_string()))
                    .await;
            }
            Ok(accepted)
        }
        Err(rejection) => {
            broker
                .publish_from_service(
                    format!("{prefix}/rejected"),
                    Bytes::from(rejection_body(&rejection, request).to_string()),
                )
                .await;
            Err(rejection)
        }
    }
}

/// Answer a device's publish if it is a shadow request (anything else is left alone).
pub async fn answer(broker: &Broker, topic: &str, payload: &[u8]) {
    let Some((thing, operation)) = shadow_operation(topic) else {
        return;
    };
    let request: Value = if payload.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(payload).unwrap_or(Value::Null)
    };
    let prefix = format!("$aws/things/{thing}/shadow/{operation}");
    if operation == "update" {
        let _ = update(broker, thing, &request).await;
        return;
    }
    let (topic, body) = match broker.shadows.get(thing) {
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
    broker
        .publish_from_service(topic, Bytes::from(body.to_string()))
        .await;
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

/// One IoT Data Plane request.
async fn data_plane(
    broker: &Broker,
    method: &hyper::Method,
    uri: &hyper::Uri,
    body: &[u8],
) -> hyper::Response<Full<Bytes>> {
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let named = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("name=")));
    let ["things", thing, "shadow"] = segments.as_slice() else {
        return error_response(
            404,
            "ResourceNotFoundException",
            &format!(
                "the local IoT Data Plane serves /things/<name>/shadow only, not {}",
                uri.path()
            ),
        );
    };
    if named {
        return error_response(
            404,
            "ResourceNotFoundException",
            "named shadows are not implemented locally; use the classic shadow",
        );
    }
    match *method {
        hyper::Method::GET => match broker.shadows.get(thing) {
            Some(shadow) => ok_response(&shadow.to_json()),
            None => error_response(
                404,
                "ResourceNotFoundException",
                &format!("No shadow exists with name: '{thing}'"),
            ),
        },
        hyper::Method::POST => {
            let Ok(request) = serde_json::from_slice::<Value>(body) else {
                return error_response(
                    400,
                    "InvalidRequestException",
                    "Payload contains invalid json",
                );
            };
            match update(broker, thing, &request).await {
                Ok(accepted) => ok_response(&accepted),
                Err(r) if r.code == 409 => error_response(409, "ConflictException", &r.message),
                Err(r) => error_response(400, "InvalidRequestException", &r.message),
            }
        }
        _ => error_response(
            405,
            "MethodNotAllowedException",
            &format!("{method} is not allowed on {}", uri.path()),
        ),
    }
}

/// Serve the IoT Data Plane's shadow API on `listener` until `shutdown` turns true.
pub async fn serve_data_plane(
    listener: TcpListener,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) {
    crate::api_server::serve_http(listener, shutdown, move |parts, bytes| {
        let broker = broker.clone();
        async move { data_plane(&broker, &parts.method, &parts.uri, &bytes).await }
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
