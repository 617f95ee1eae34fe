//! The web console's files, built into the binary: the `api` function and the local server
//! answer them on `/` and `/console/…`, the same origin as the API, so the page needs no CORS,
//! no second host and nothing fetched from elsewhere. Own files come from `console/`; uPlot
//! from the npm registry through `make console` (see `build.rs`).

/// One file of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("../../../console/index.html"),
};

/// The console file at `path`, if it is one. Only GETs reach here; every other path is the
/// API's.
pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, body) = match path {
        "/" | "/console" | "/console/" | "/console/index.html" => return Some(INDEX),
        "/console/app.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../../console/app.js"),
        ),
        "/console/style.css" => (
            "text/css; charset=utf-8",
            include_str!("../../../console/style.css"),
        ),
        "/console/vendor/uPlot.iife.min.js" => (
            "text/javascript; charset=utf-8",
            include_str!(concat!(env!("OUT_DIR"), "/uPlot.iife.min.js")),
        ),
        "/console/vendor/uPlot.min.css" => (
            "text/css; charset=utf-8",
            include_str!(concat!(env!("OUT_DIR"), "/uPlot.min.css")),
        ),
        _ => return None,
    };
    Some(Asset { content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_served_and_nothing_else() {
        let index = asset("/").unwrap();
        assert!(index.content_type.starts_with("text/html"));
        // Everything the page loads is one of ours, on this origin.
        for reference in [
            "/console/app.js",
            "/console/style.css",
            "/console/vendor/uPlot.iife.min.js",
            "/console/vendor/uPlot.min.css",
        ] {
            assert!(index.body.contains(reference), "{reference}");
            assert!(asset(reference).is_some(), "{reference}");
        }
        assert!(!index.body.contains("http://") && !index.body.contains("https://"));
        assert_eq!(asset("/console/"), Some(index));
        assert_eq!(asset("/devices"), None);
        assert_eq!(asset("/console/../Cargo.toml"), None);
    }
}
