//! The one paginated Scan and the one paginated Query the DynamoDB adapters use: each follows
//! the pages to the end and hands back the items.

use std::collections::HashMap;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::ScanError;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

pub type Item = HashMap<String, AttributeValue>;

/// Every item the Scan returns, following pages to the end.
pub async fn scan_all(
    request: ScanFluentBuilder,
) -> Result<Vec<Item>, SdkError<ScanError, HttpResponse>> {
    let mut items = Vec::new();
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        items.extend(page?.items.unwrap_or_default());
    }
    Ok(items)
}

/// Every item the Query returns, following pages to the end.
pub async fn query_all(
    request: QueryFluentBuilder,
) -> Result<Vec<Item>, SdkError<QueryError, HttpResponse>> {
    let mut items = Vec::new();
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        items.extend(page?.items.unwrap_or_default());
    }
    Ok(items)
}
