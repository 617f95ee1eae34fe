//! Timestream's metered write size of records and requests, as its pricing counts bytes:
//! what the ingest path's requests and the rollup job's rows are billed as.

/// Timestream's write size of a request: per record its timestamp (8 bytes), dimension names
/// and values, measure names and values; the common attributes once.
pub(crate) fn request_bytes(
    request: &iotdp::adapters::timestream::TimestreamWriteRequest,
) -> usize {
    8 * request.records.len()
        + record_bytes(&request.common)
        + request.records.iter().map(record_bytes).sum::<usize>()
}

/// One record's metered bytes beyond its timestamp: dimension names and values, measure
/// names and values (8 bytes for a number), the measure name.
pub(crate) fn record_bytes(r: &aws_sdk_timestreamwrite::types::Record) -> usize {
    let dimensions: usize = r
        .dimensions()
        .iter()
        .map(|d| d.name().len() + d.value().len())
        .sum();
    let measures: usize = r
        .measure_values()
        .iter()
        .map(|m| m.name().len() + measure_bytes(m.r#type().as_str(), m.value()))
        .sum();
    dimensions + measures + r.measure_name().map_or(0, str::len)
}

fn measure_bytes(kind: &str, value: &str) -> usize {
    match kind {
        "BOOLEAN" => 1,
        "DOUBLE" | "BIGINT" => 8,
        _ => value.len(),
    }
}
