//! The baseline: what a team would build without iotdp, IoT Core's built-in Timestream rule
//! action (one single-measure record per attribute) and AWS IoT Events alarms at the same rule
//! count.

use crate::bill::{Bill, IOT_INCREMENT, add_iot_core, increments, timestream_storage};
use crate::load::Load;
use crate::measure::PerMessage;
use crate::prices::{PriceError, PriceTable};

/// The baseline's monthly bill: the built-in Timestream action and IoT Events alarms.
pub fn baseline_bill(
    load: &Load,
    per: &PerMessage,
    prices: &PriceTable,
) -> Result<Bill, PriceError> {
    let messages = load.messages_per_month();
    let iot_units = increments(per.iot_bytes, IOT_INCREMENT);
    let mut bill = Bill::default();
    add_iot_core(&mut bill, prices, load, per, false)?;
    // One rule to Timestream, one to IoT Events: each triggered, each with its action.
    bill.add(
        prices,
        "iot_core_rules_triggered",
        2.0 * messages * iot_units,
    )?;
    bill.add(prices, "iot_core_actions", 2.0 * messages * iot_units)?;
    bill.add(
        prices,
        "timestream_writes",
        messages * per.baseline_timestream_kb,
    )?;
    timestream_storage(
        &mut bill,
        prices,
        messages * per.baseline_timestream_kb,
        per.deployment.memory_store_hours,
    )?;
    // The same dashboards, on the raw table.
    bill.add(
        prices,
        "timestream_query_tcu_hours",
        per.reads.baseline_tcu_hours,
    )?;
    let evaluation_units = increments(per.iot_bytes, 1024);
    bill.add(
        prices,
        "iot_events_message_evaluations",
        messages * evaluation_units * f64::from(load.rules),
    )?;
    Ok(bill)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bill::tests::{by_item, flat_prices, hand_load, hand_per};

    /// The hand-computed case of the iotdp bill's test, for the baseline: 43.2 M messages of
    /// 1 KB, one rule.
    #[test]
    fn the_baseline_is_two_rules_a_record_per_attribute_and_an_evaluation_per_rule() {
        let (load, per) = (hand_load(), hand_per());
        // The flat table prices iotdp's items only: the baseline names what it lacks.
        let missing = baseline_bill(&load, &per, &flat_prices()).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "the price table has no [iot_events_message_evaluations]: add it (see infra/prices.toml)"
        );
        let mut prices = flat_prices();
        let events = prices.0["iot_core_actions"].clone();
        prices
            .0
            .insert("iot_events_message_evaluations".into(), events);
        let bill = baseline_bill(&load, &per, &prices).unwrap();
        let usd = by_item(&bill, |l| l.usd);
        for (item, expected) in [
            ("iot_core_connectivity_minutes", 43.2),
            ("iot_core_messaging", 43.2),
            // One rule to Timestream, one to IoT Events.
            ("iot_core_rules_triggered", 86.4),
            ("iot_core_actions", 86.4),
            // 1 KB of single-measure records a message.
            ("timestream_writes", 43.2),
            // The dashboards' 40 TCU-hours, on the raw table.
            ("timestream_query_tcu_hours", 0.000_04),
            // A 1 KB message is one evaluation, for the one rule.
            ("iot_events_message_evaluations", 43.2),
        ] {
            assert!((usd[item] - expected).abs() < 1e-9, "{item}: {}", usd[item]);
        }
        let quantity = by_item(&bill, |l| l.quantity);
        let monthly_gb = 43_200_000.0 / (1024.0 * 1024.0);
        assert!((quantity["timestream_memory_gb_hours"] - monthly_gb * 24.0).abs() < 1e-9);
        assert!((quantity["timestream_magnetic_gb_months"] - monthly_gb * 12.0).abs() < 1e-9);
        // No queue, no function, no registry: the rule actions write directly.
        for item in [
            "sqs_requests",
            "lambda_requests",
            "dynamodb_write_request_units",
        ] {
            assert!(!usd.contains_key(item), "{item}");
        }
    }
}
