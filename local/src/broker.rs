//! An MQTT 3.1.1 broker on 127.0.0.1 standing in for IoT Core: QoS 0 and 1 (IoT Core has no
//! QoS 2), subscriptions with `+`/`#`, and every inbound publish handed to the rules engine with
//! its publisher's client id. Connects and disconnects are published on IoT Core's lifecycle
//! topics (`$aws/events/presence/connected/<client id>`, `…/disconnected/…`). Publishes to a
//! thing's classic shadow topics (`$aws/things/<name>/shadow/update`, `/get`) are answered by
//! the shadow service ([`crate::shadows`]), which publishes `accepted`/`rejected`, `delta` and
//! `documents` back through the broker, to subscribers and to the rules engine alike.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, QoS, SubAck, SubscribeReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

use crate::rule_sql::topic_matches;
use crate::shadows::{self, ServicePublish, ShadowBook, answer};

/// IoT Core's message size limit.
pub const MAX_PACKET_BYTES: usize = 128 * 1024 + 1024;

/// A publish as the rules engine receives it.
#[derive(Debug, Clone)]
pub struct InboundPublish {
    pub topic: String,
    pub payload: Bytes,
    pub client_id: String,
    pub received_at_ms: i64,
}

#[derive(Debug, Default)]
pub struct BrokerStats {
    pub connected: AtomicU64,
    pub connections_total: AtomicU64,
    pub publishes: AtomicU64,
}

struct Subscriber {
    filters: Vec<String>,
    outbox: mpsc::Sender<Publish>,
}

type Subscribers = Arc<Mutex<HashMap<u64, Subscriber>>>;

/// What every connection shares: the subscriptions, the rules engine's inbox, the figures and
/// the shadows. The shadow service's HTTP side (the IoT Data Plane stand-in) holds it too, so
/// an update through the API reaches devices exactly as one over MQTT does.
pub struct Broker {
    subscribers: Subscribers,
    inbound: mpsc::Sender<InboundPublish>,
    pub stats: Arc<BrokerStats>,
    pub shadows: Arc<ShadowBook>,
}

impl Broker {
    pub fn new(inbound: mpsc::Sender<InboundPublish>, stats: Arc<BrokerStats>) -> Arc<Self> {
        Arc::new(Self {
            subscribers: Arc::default(),
            inbound,
            stats,
            shadows: Arc::default(),
        })
    }

    /// What the shadow service answers, published in order.
    pub async fn publish_all_from_service(&self, publishes: Vec<ServicePublish>) {
        for ServicePublish { topic, payload } in publishes {
            self.publish_from_service(topic, payload).await;
        }
    }

    /// A message IoT Core itself publishes (shadow responses): delivered to subscribers and
    /// seen by the rules engine, with the service as its client.
    pub async fn publish_from_service(&self, topic: String, payload: Bytes) {
        let publish = Publish::new(topic.clone(), QoS::AtMostOnce, payload.clone());
        forward(&self.subscribers, &publish).await;
        let _ = self
            .inbound
            .send(InboundPublish {
                topic,
                payload,
                client_id: "iotdp-local-shadow-service".into(),
                received_at_ms: now_ms(),
            })
            .await;
    }
}

/// Serve the IoT Data Plane's shadow API over the broker's shadows on `listener` until
/// `shutdown` turns true; what an update publishes goes out through the broker, as an MQTT
/// update's does.
pub async fn serve_data_plane(
    listener: TcpListener,
    broker: Arc<Broker>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let book = broker.shadows.clone();
    shadows::serve_data_plane(
        listener,
        book,
        move |publishes| {
            let broker = broker.clone();
            async move { broker.publish_all_from_service(publishes).await }
        },
        shutdown,
    )
    .await;
}

/// Accept MQTT connections on `addr` until the task is aborted.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub async fn serve(listener: TcpListener, broker: Arc<Broker>) {
    let mut next_id = 0u64;
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        next_id += 1;
        let broker = broker.clone();
        let id = next_id;
        tokio::spawn(async move {
            let client = connection(id, socket, &broker).await;
            broker.subscribers.lock().await.remove(&id);
            if let Some(client_id) = client {
                broker.stats.connected.fetch_sub(1, Ordering::Relaxed);
                let _ = broker
                    .inbound
                    .send(lifecycle("disconnected", &client_id))
                    .await;
            }
        });
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// IoT Core's lifecycle event for `client_id`.
fn lifecycle(event: &str, client_id: &str) -> InboundPublish {
    let now = now_ms();
    let mut body = serde_json::json!({
        "clientId": client_id,
        "timestamp": now,
        "eventType": event,
        "sessionIdentifier": format!("local-{client_id}"),
        "principalIdentifier": "local",
        "versionNumber": 0,
    });
    if event == "disconnected" {
        body["clientInitiatedDisconnect"] = serde_json::Value::Bool(true);
        body["disconnectReason"] = "CLIENT_INITIATED_DISCONNECT".into();
    }
    InboundPublish {
        topic: format!("$aws/events/presence/{event}/{client_id}"),
        payload: Bytes::from(body.to_string()),
        client_id: client_id.to_owned(),
        received_at_ms: now,
    }
}

/// One client connection; returns its client id if it got as far as connecting.
async fn connection(id: u64, mut socket: TcpStream, broker: &Broker) -> Option<String> {
    let (inbound, stats, subscribers) = (&broker.inbound, &*broker.stats, &broker.subscribers);
    let _ = socket.set_nodelay(true);
    let mut input = BytesMut::with_capacity(4096);
    let mut output = BytesMut::with_capacity(4096);
    let (outbox, mut forwarded) = mpsc::channel::<Publish>(1024);
    let mut client_id: Option<String> = None;
    loop {
        // Drain every complete packet already buffered before reading more.
        loop {
            let packet = match Packet::read(&mut input, MAX_PACKET_BYTES) {
                Ok(packet) => packet,
                Err(rumqttc::Error::InsufficientBytes(_)) => break,
                Err(e) => {
                    tracing::warn!(error = ?e, "MQTT protocol error; closing the connection");
                    return client_id;
                }
            };
            let reply = match (packet, &client_id) {
                (Packet::Connect(connect), None) => {
                    if connect.client_id.is_empty() {
                        Some(Packet::ConnAck(ConnAck::new(
                            ConnectReturnCode::BadClientId,
                            false,
                        )))
                    } else {
                        stats.connected.fetch_add(1, Ordering::Relaxed);
                        stats.connections_total.fetch_add(1, Ordering::Relaxed);
                        let _ = inbound
                            .send(lifecycle("connected", &connect.client_id))
                            .await;
                        client_id = Some(connect.client_id);
                        Some(Packet::ConnAck(ConnAck::new(
                            ConnectReturnCode::Success,
                            false,
                        )))
                    }
                }
                (_, None) => return None, // anything before CONNECT is a protocol violation
                (Packet::Publish(publish), Some(client)) => {
                    if publish.qos == QoS::ExactlyOnce {
                        tracing::warn!(
                            client,
                            "QoS 2 publish: IoT Core does not support QoS 2; closing"
                        );
                        return client_id;
                    }
                    stats.publishes.fetch_add(1, Ordering::Relaxed);
                    let pkid = publish.pkid;
                    let qos = publish.qos;
                    let message = InboundPublish {
                        topic: publish.topic.clone(),
                        payload: publish.payload.clone(),
                        client_id: client.clone(),
                        received_at_ms: now_ms(),
                    };
                    // Basic Ingest skips the broker: no subscriber ever receives it.
                    if crate::rule_sql::basic_ingest(&publish.topic).is_none() {
                        forward(subscribers, &publish).await;
                    }
                    if inbound.send(message).await.is_err() {
                        return client_id;
                    }
                    let answers = answer(&broker.shadows, &publish.topic, &publish.payload);
                    broker.publish_all_from_service(answers).await;
                    (qos == QoS::AtLeastOnce).then(|| Packet::PubAck(PubAck::new(pkid)))
                }
                (Packet::Subscribe(subscribe), Some(_)) => {
                    let filters: Vec<String> =
                        subscribe.filters.iter().map(|f| f.path.clone()).collect();
                    let codes = subscribe
                        .filters
                        .iter()
                        .map(|f| {
                            SubscribeReasonCode::Success(if f.qos == QoS::AtMostOnce {
                                QoS::AtMostOnce
                            } else {
                                QoS::AtLeastOnce
                            })
                        })
                        .collect();
                    let mut subs = subscribers.lock().await;
                    let entry = subs.entry(id).or_insert_with(|| Subscriber {
                        filters: vec![],
                        outbox: outbox.clone(),
                    });
                    entry.filters.extend(filters);
                    Some(Packet::SubAck(SubAck::new(subscribe.pkid, codes)))
                }
                (Packet::PingReq, Some(_)) => Some(Packet::PingResp),
                (Packet::Disconnect, Some(_)) => return client_id,
                (_, Some(_)) => None, // PubAck for our QoS 1 forwards, Unsubscribe: nothing to answer
            };
            if let Some(reply) = reply {
                if reply.write(&mut output, MAX_PACKET_BYTES).is_err() {
                    return client_id;
                }
                if matches!(reply, Packet::ConnAck(ref ack) if ack.code != ConnectReturnCode::Success)
                {
                    let _ = socket.write_all(&output).await;
                    return None;
                }
            }
        }
        if !output.is_empty() {
            if socket.write_all(&output).await.is_err() {
                return client_id;
            }
            output.clear();
        }
        tokio::select! {
            read = socket.read_buf(&mut input) => match read {
                Ok(0) | Err(_) => return client_id,
                Ok(_) => {}
            },
            Some(publish) = forwarded.recv() => {
                if Packet::Publish(publish).write(&mut output, MAX_PACKET_BYTES).is_err() {
                    return client_id;
                }
            }
        }
    }
}

async fn forward(subscribers: &Subscribers, publish: &Publish) {
    let subs = subscribers.lock().await;
    for sub in subs.values() {
        if sub.filters.iter().any(|f| topic_matches(f, &publish.topic)) {
            let mut copy = Publish::new(
                publish.topic.clone(),
                QoS::AtMostOnce,
                publish.payload.clone(),
            );
            copy.retain = false;
            let _ = sub.outbox.try_send(copy);
        }
    }
}
