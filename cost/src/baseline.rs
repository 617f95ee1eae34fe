//! The baselines: what a competent team would deploy without iotdp, metered as AWS documents
//! it, each with Basic Ingest (it works with any rule, so such a team takes it).
//!
//! - **The rule's Timestream action** (existing Timestream for LiveAnalytics customers): one
//!   rule, one request a message of a single-measure record per attribute, the device id its
//!   dimension. The rule action's page limits it to 100 values a message and stores arrays as
//!   JSON strings, so a gateway's batch cannot be stored this way
//!   ([`crate::measure::timestream_action_unfit`]); such a team writes its own Lambda
//!   ([`own_lambda_bill`]).
//! - **With IoT Events** (for reference only): the same, plus a second rule into IoT Events
//!   and one detector evaluation per rule. AWS IoT Events reached its end of support on
//!   2026-05-20 (<https://docs.aws.amazon.com/iotevents/latest/developerguide/doc-history.html>,
//!   read 2026-12-07), so no team can build this any more.
//! - **New customers** ([`crate::new_customer`]): Timestream for LiveAnalytics is closed to
//!   them, so Firehose into Parquet on S3 with Athena, or Timestream for InfluxDB.

use crate::bill::{Bill, IOT_INCREMENT, add_iot_core, increments, timestream_storage};
use crate::load::Load;
use crate::measure::PerMessage;
use crate::prices::{PriceError, PriceTable};

/// A team's own Lambda behind the rule, invoked once a message: its memory, and the billed
/// time of one WriteRecords round trip. Timestream documents no latency; 10 ms is an
/// assumption (the ingest function's measured decoding time per reading comes on top).
const OWN_LAMBDA_MEMORY_GB: f64 = 0.125;
const OWN_LAMBDA_WRITE_SECONDS: f64 = 0.010;

/// The rule's Timestream action, with Basic Ingest; `with_iot_events` adds the alarms a team
/// built before IoT Events' end of support.
pub fn baseline_bill(
    load: &Load,
    per: &PerMessage,
    prices: &PriceTable,
    with_iot_events: bool,
) -> Result<Bill, PriceError> {
    let messages = load.messages_per_month();
    let rules = if with_iot_events { 2.0 } else { 1.0 };
    let mut bill = Bill::default();
    add_rules(&mut bill, prices, load, per, rules)?;
    bill.add(
        prices,
        "timestream_writes",
        messages * per.baseline_timestream_kb,
    )?;
    timestream_storage(
        &mut bill,
        prices,
        messages * per.baseline_stored_bytes,
        per.deployment.memory_store_hours,
    )?;
    // The same dashboards, on the raw table.
    bill.add(
        prices,
        "timestream_query_tcu_hours",
        per.reads.baseline_tcu_hours,
    )?;
    if with_iot_events {
        let evaluation_units = increments(per.iot_bytes, 1024);
        bill.add(
            prices,
            "iot_events_message_evaluations",
            messages * evaluation_units * f64::from(load.rules),
        )?;
    }
    Ok(bill)
}

/// Where the rule's action cannot store the load: the team's own Lambda behind the rule,
/// invoked once a message, writing the readings as iotdp's store writer does (the same
/// requests, so the same write units and bytes held).
pub fn own_lambda_bill(
    load: &Load,
    per: &PerMessage,
    prices: &PriceTable,
) -> Result<Bill, PriceError> {
    let messages = load.messages_per_month();
    let mut bill = Bill::default();
    add_rules(&mut bill, prices, load, per, 1.0)?;
    add_own_lambda(&mut bill, prices, load, per)?;
    bill.add(prices, "timestream_writes", messages * per.timestream_kb)?;
    timestream_storage(
        &mut bill,
        prices,
        messages * per.stored_bytes,
        per.deployment.memory_store_hours,
    )?;
    bill.add(
        prices,
        "timestream_query_tcu_hours",
        per.reads.baseline_tcu_hours,
    )?;
    Ok(bill)
}

/// IoT Core's lines of a baseline: connection minutes, Basic Ingest (no messaging), and
/// `rules` rules triggered, each with its action.
pub(crate) fn add_rules(
    bill: &mut Bill,
    prices: &PriceTable,
    load: &Load,
    per: &PerMessage,
    rules: f64,
) -> Result<(), PriceError> {
    let units = load.messages_per_month() * increments(per.iot_bytes, IOT_INCREMENT);
    add_iot_core(bill, prices, load, per, true)?;
    bill.add(prices, "iot_core_rules_triggered", rules * units)?;
    bill.add(prices, "iot_core_actions", rules * units)
}

/// A team's own Lambda, invoked by the rule once a message.
pub(crate) fn add_own_lambda(
    bill: &mut Bill,
    prices: &PriceTable,
    load: &Load,
    per: &PerMessage,
) -> Result<(), PriceError> {
    let messages = load.messages_per_month();
    bill.add(prices, "lambda_requests", messages)?;
    let seconds = OWN_LAMBDA_WRITE_SECONDS
        + per.readings as f64 * crate::bill::INGEST_MS_PER_READING / 1_000.0;
    bill.add(
        prices,
        "lambda_arm_gb_seconds",
        messages * seconds * OWN_LAMBDA_MEMORY_GB,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bill::tests::{by_item, flat_prices, hand_load, hand_per};

    fn with_iot_events_priced() -> PriceTable {
        let mut prices = flat_prices();
        let events = prices.0["iot_core_actions"].clone();
        prices
            .0
            .insert("iot_events_message_evaluations".into(), events);
        prices
    }

    /// The hand-computed case of the iotdp bill's test: 43.2 M messages of 1 KB, one rule.
    /// With Basic Ingest and without IoT Events there is no messaging and no IoT Events line,
    /// and one rule: the Timestream action.
    #[test]
    fn the_baseline_is_one_rule_one_write_a_message_and_no_messaging() {
        let (load, per) = (hand_load(), hand_per());
        let bill = baseline_bill(&load, &per, &flat_prices(), false).unwrap();
        let usd = by_item(&bill, |l| l.usd);
        for (item, expected) in [
            ("iot_core_connectivity_minutes", 43.2),
            ("iot_core_rules_triggered", 43.2),
            ("iot_core_actions", 43.2),
            // One 1 KB request a message.
            ("timestream_writes", 43.2),
            // The dashboards' 40 TCU-hours, on the raw table.
            ("timestream_query_tcu_hours", 0.000_04),
        ] {
            assert!((usd[item] - expected).abs() < 1e-9, "{item}: {}", usd[item]);
        }
        for item in [
            "iot_core_messaging",
            "iot_events_message_evaluations",
            "sqs_requests",
            "lambda_requests",
            "dynamodb_write_request_units",
        ] {
            assert!(!usd.contains_key(item), "{item} in {usd:?}");
        }
        assert!(!bill.by_service().contains_key("IoT Events"));
        // Storage by the 512 bytes held a message, not the KB written.
        let quantity = by_item(&bill, |l| l.quantity);
        let monthly_gb = 43_200_000.0 * 512.0 / (1024.0 * 1024.0 * 1024.0);
        assert!((quantity["timestream_memory_gb_hours"] - monthly_gb * 24.0).abs() < 1e-9);
        assert!((quantity["timestream_magnetic_gb_months"] - monthly_gb * 12.0).abs() < 1e-9);
    }

    /// With IoT Events (before its end of support): a second rule and action, and an
    /// evaluation per 1 KB per rule; the table must price it.
    #[test]
    fn iot_events_adds_its_rule_its_action_and_its_evaluations() {
        let (load, per) = (hand_load(), hand_per());
        let missing = baseline_bill(&load, &per, &flat_prices(), true).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "the price table has no [iot_events_message_evaluations]: add it (see infra/prices.toml)"
        );
        let prices = with_iot_events_priced();
        let with = baseline_bill(&load, &per, &prices, true).unwrap();
        let without = baseline_bill(&load, &per, &prices, false).unwrap();
        let usd = by_item(&with, |l| l.usd);
        assert!((usd["iot_core_rules_triggered"] - 86.4).abs() < 1e-9);
        assert!((usd["iot_core_actions"] - 86.4).abs() < 1e-9);
        assert!((usd["iot_events_message_evaluations"] - 43.2).abs() < 1e-9);
        assert!((with.total() - without.total() - 3.0 * 43.2).abs() < 1e-9);
    }

    /// The team's own Lambda: an invocation a message, 10 ms and the readings' decoding at
    /// 128 MB, and iotdp's own write units and bytes held.
    #[test]
    fn the_own_lambda_is_invoked_once_a_message() {
        let (load, per) = (hand_load(), hand_per());
        let bill = own_lambda_bill(&load, &per, &flat_prices()).unwrap();
        let quantity = by_item(&bill, |l| l.quantity);
        assert!((quantity["lambda_requests"] - 43_200_000.0).abs() < 1e-6);
        let seconds = 0.010 + 306.2 / 8_943.0 / 1_000.0;
        assert!((quantity["lambda_arm_gb_seconds"] - 43_200_000.0 * seconds * 0.125).abs() < 1e-3);
        assert!((quantity["timestream_writes"] - 43_200_000.0 * 2.0).abs() < 1e-6);
        assert!(!quantity.contains_key("iot_core_messaging"));
    }
}
