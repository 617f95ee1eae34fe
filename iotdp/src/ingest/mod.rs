//! Ingest: an SQS batch of IoT rule envelopes in; every reading stored, quarantined with a
//! reason, or returned for retry.
//!
//! Model → ports → use case: [`envelope`] (the rule's envelope), [`validation`] (payload →
//! readings or rejections), [`batch`] (a whole SQS batch decoded and validated), [`quarantine`]
//! (the JSON Lines format), [`metrics`] (Embedded Metric Format lines); [`ports`] (the store
//! and the quarantine sink); [`store_writer`] (chunking, concurrency, retry, bisection) and
//! [`service`] (the use case that ties them together and answers SQS).

pub mod batch;
pub mod envelope;
pub mod metrics;
pub mod ports;
pub mod quarantine;
pub mod service;
pub mod store_writer;
pub mod validation;
