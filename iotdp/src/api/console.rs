//! The web console's files, built into the binary: the `api` function and the local server
//! answer them on `/` and `/console/…`, the same origin as the API, so the page needs no CORS,
//! no second host and nothing fetched from elsewhere. Own files come from `console/`; uPlot
//! from the npm registry through `make console` (see `build.rs`).

/// Where the console signs users in: the user pool's hosted UI (`CONSOLE_SIGN_IN_URL`, its
/// domain) and the app client the page is (`CONSOLE_CLIENT_ID`, no secret: PKCE instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSignIn {
    pub base_url: String,
    pub client_id: String,
}

impl ConsoleSignIn {
    /// What the page reads from `/console/config.json`: the hosted UI's endpoints.
    pub fn endpoints(&self) -> serde_json::Value {
        let base = self.base_url.trim_end_matches('/');
        serde_json::json!({
            "authorize": format!("{base}/oauth2/authorize"),
            "token": format!("{base}/oauth2/token"),
            "logout": format!("{base}/logout"),
            "client_id": self.client_id,
            "scope": "openid email",
        })
    }

    /// The origin the page may POST the code to (its content security policy names it).
    pub fn origin(&self) -> &str {
        let base = self.base_url.trim_end_matches('/');
        match base.find("://") {
            Some(scheme) => base[scheme + 3..]
                .find('/')
                .map_or(base, |path| &base[..scheme + 3 + path]),
            None => base,
        }
    }
}

/// `/console/config.json`: how the page signs in, or `null` where it does not (IAM, or the
/// local platform's admin).
pub fn config_json(sign_in: Option<&ConsoleSignIn>) -> String {
    serde_json::json!({ "sign_in": sign_in.map(ConsoleSignIn::endpoints) }).to_string()
}

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

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// A console file by its path under `console/`, served at `/console/<path>`.
macro_rules! console_file {
    ($path:literal) => {
        (
            concat!("/console/", $path),
            include_str!(concat!("../../../console/", $path)),
        )
    };
}

/// The console's own ES modules (no build step: the browser loads them as they are):
/// `app.js`, the entry and router, and `js/`: `auth` (sign-in), `api` (the API client),
/// `dom` (DOM helpers) and one module per page.
const MODULES: &[(&str, &str)] = &[
    console_file!("app.js"),
    console_file!("js/auth.js"),
    console_file!("js/api.js"),
    console_file!("js/dom.js"),
    console_file!("js/fleet.js"),
    console_file!("js/places.js"),
    console_file!("js/device.js"),
    console_file!("js/alerts.js"),
    console_file!("js/rules.js"),
];

/// The console file at `path`, if it is one. Only GETs reach here; every other path is the
/// API's.
pub fn asset(path: &str) -> Option<Asset> {
    if let Some((_, body)) = MODULES.iter().find(|(served, _)| *served == path) {
        return Some(Asset {
            content_type: JAVASCRIPT,
            body,
        });
    }
    let (content_type, body) = match path {
        "/" | "/console" | "/console/" | "/console/index.html" => return Some(INDEX),
        "/console/style.css" => (
            "text/css; charset=utf-8",
            include_str!("../../../console/style.css"),
        ),
        "/console/vendor/uPlot.iife.min.js" => (
            JAVASCRIPT,
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
            "/console/js/dom.js",
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

    /// The paths a module imports (`import … from "./x.js"`), resolved against its own.
    fn imports_of(path: &str, body: &str) -> Vec<String> {
        let dir = &path[..=path.rfind('/').unwrap()];
        body.split(" from \"")
            .skip(1)
            .map(|rest| {
                let specifier = &rest[..rest.find('"').unwrap()];
                let relative = specifier.strip_prefix("./").unwrap_or_else(|| {
                    panic!("{path} imports {specifier}: only ./ paths are served")
                });
                format!("{dir}{relative}")
            })
            .collect()
    }

    #[test]
    fn every_module_is_served_as_javascript_with_what_it_imports_and_preloaded() {
        let index = asset("/").unwrap().body;
        assert!(index.contains(r#"<script type="module" src="/console/app.js">"#));
        // The page asks for no icon (the browser would ask for /favicon.ico, not served).
        assert!(index.contains(r#"<link rel="icon" href="data:,">"#));
        for (path, body) in MODULES {
            let served = asset(path).unwrap();
            assert_eq!(
                served.content_type, "text/javascript; charset=utf-8",
                "{path}"
            );
            assert_eq!(served.body, *body);
            for import in imports_of(path, body) {
                assert!(
                    MODULES.iter().any(|(p, _)| *p == import),
                    "{path} imports {import}, which is not served"
                );
            }
            if *path != "/console/app.js" {
                let preload = format!(r#"<link rel="modulepreload" href="{path}">"#);
                assert!(index.contains(&preload), "{path} is not preloaded");
                assert!(
                    MODULES
                        .iter()
                        .any(|(p, b)| imports_of(p, b).contains(&path.to_string())),
                    "{path} is imported by no module"
                );
            }
        }
    }

    #[test]
    fn the_page_learns_the_hosted_ui_endpoints_and_their_origin() {
        let sign_in = ConsoleSignIn {
            base_url: "https://iotdp-1f2e.auth.eu-west-1.amazoncognito.com/".into(),
            client_id: "abc123".into(),
        };
        let config: serde_json::Value = serde_json::from_str(&config_json(Some(&sign_in))).unwrap();
        assert_eq!(
            config["sign_in"]["token"],
            "https://iotdp-1f2e.auth.eu-west-1.amazoncognito.com/oauth2/token"
        );
        assert_eq!(config["sign_in"]["client_id"], "abc123");
        assert_eq!(
            sign_in.origin(),
            "https://iotdp-1f2e.auth.eu-west-1.amazoncognito.com"
        );
        let local = ConsoleSignIn {
            base_url: "http://127.0.0.1:9000/auth".into(),
            client_id: "x".into(),
        };
        assert_eq!(local.origin(), "http://127.0.0.1:9000");
        assert_eq!(config_json(None), r#"{"sign_in":null}"#);
    }
}
