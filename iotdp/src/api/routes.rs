//! The query API's one route table: each route's method, path pattern, least role and
//! handler. Matching, the role check, a 405's `Allow` and the tests' lists of routes all read
//! [`ROUTES`], so a route is added, or its role changed, in one place (`openapi.yaml`
//! documents the same table; `tests/tests/integration/openapi.rs` keeps the two equal).
//!
//! Pure: a request's path in, the route (and its path parameters) out.

use super::access::Role;
use super::problem::Problem;
use crate::devices::record::DeviceStatus;

/// One route: `method` on `path` (`{name}` matches any one path segment) needs at least
/// `role`, and is answered by `handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub role: Role,
    pub handler: Handler,
}

/// Which use case answers a route; [`super::QueryApi`] calls it with the route's path
/// parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    ListDevices,
    CreateDevice,
    GetDevice,
    UpdateDevice,
    /// Suspend or resume: the status the device is set to.
    SetStatus(DeviceStatus),
    IssueCommand,
    ListCommands,
    GetCommand,
    GetShadow,
    DeviceReadings,
    LatestByDevice,
    DrillDown,
    ListTypes,
    GetType,
    PutType,
    ListRules,
    PutRule,
    DeleteRule,
    ListAlerts,
    /// An operator action on one alert, as its path names it (`ack`, `snooze`, …).
    ActOnAlert(&'static str),
}

const fn route(method: &'static str, path: &'static str, role: Role, handler: Handler) -> Route {
    Route {
        method,
        path,
        role,
        handler,
    }
}

use Handler::*;
use Role::{Admin, Operator, Viewer};

/// Every route the router answers, as `openapi.yaml` documents it (a test keeps the two
/// equal). Reads need a viewer; alert actions and commands an operator; device and rule
/// changes an admin. A 405's `Allow` lists a path's methods in this order.
pub const ROUTES: &[Route] = &[
    route("GET", "/devices", Viewer, ListDevices),
    route("POST", "/devices", Admin, CreateDevice),
    route("GET", "/devices/{device_id}", Viewer, GetDevice),
    route("PUT", "/devices/{device_id}", Admin, UpdateDevice),
    route(
        "POST",
        "/devices/{device_id}/suspend",
        Admin,
        SetStatus(DeviceStatus::Suspended),
    ),
    route(
        "POST",
        "/devices/{device_id}/resume",
        Admin,
        SetStatus(DeviceStatus::Active),
    ),
    route(
        "POST",
        "/devices/{device_id}/commands",
        Operator,
        IssueCommand,
    ),
    route("GET", "/devices/{device_id}/commands", Viewer, ListCommands),
    route(
        "GET",
        "/devices/{device_id}/commands/{command_id}",
        Viewer,
        GetCommand,
    ),
    route("GET", "/devices/{device_id}/shadow", Viewer, GetShadow),
    route(
        "GET",
        "/devices/{device_id}/readings/{metric}",
        Viewer,
        DeviceReadings,
    ),
    route("GET", "/readings/{metric}/latest", Viewer, LatestByDevice),
    route("GET", "/readings/{metric}/drill-down", Viewer, DrillDown),
    route("GET", "/types", Viewer, ListTypes),
    route("GET", "/types/{device_type}", Viewer, GetType),
    route("PUT", "/types/{device_type}", Admin, PutType),
    route("GET", "/rules", Viewer, ListRules),
    route("PUT", "/rules/{rule_id}", Admin, PutRule),
    route("DELETE", "/rules/{rule_id}", Admin, DeleteRule),
    route("GET", "/alerts", Viewer, ListAlerts),
    route(
        "POST",
        "/alerts/{device_id}/{rule_id}/ack",
        Operator,
        ActOnAlert("ack"),
    ),
    route(
        "POST",
        "/alerts/{device_id}/{rule_id}/snooze",
        Operator,
        ActOnAlert("snooze"),
    ),
    route(
        "POST",
        "/alerts/{device_id}/{rule_id}/disable",
        Operator,
        ActOnAlert("disable"),
    ),
    route(
        "POST",
        "/alerts/{device_id}/{rule_id}/enable",
        Operator,
        ActOnAlert("enable"),
    ),
    route(
        "POST",
        "/alerts/{device_id}/{rule_id}/reset",
        Operator,
        ActOnAlert("reset"),
    ),
];

/// The route `method` on the pattern `path` names, exactly as [`ROUTES`] (and
/// `openapi.yaml`) spell it: `("GET", "/devices/{device_id}")`.
pub fn route_for(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// A request's path, split into segments (empty ones dropped, so `/devices/` is `/devices`)
/// and each `%XX`-decoded, as routes are matched and handlers read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    segments: Vec<Result<String, Problem>>,
}

/// Where a request goes in [`ROUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Route(&'static Route),
    /// The path is a route's, but not for this method (405; see
    /// [`RequestPath::allowed_methods`]).
    WrongMethod,
    NoRoute,
}

impl RequestPath {
    pub fn parse(path: &str) -> Self {
        Self {
            segments: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(percent_decode)
                .collect(),
        }
    }

    /// The route `method` on this path is answered by. A segment whose `%`-escape is broken
    /// matches only a `{name}`, never a literal, so it can reach no route it does not spell.
    pub fn destination(&self, method: &str) -> Destination {
        let mut matching = ROUTES.iter().filter(|r| self.matches(r.path)).peekable();
        if matching.peek().is_none() {
            return Destination::NoRoute;
        }
        matching
            .find(|r| r.method == method)
            .map_or(Destination::WrongMethod, Destination::Route)
    }

    /// The methods [`ROUTES`] answers on this path, in table order (a 405's `Allow`).
    pub fn allowed_methods(&self) -> Vec<&'static str> {
        ROUTES
            .iter()
            .filter(|r| self.matches(r.path))
            .map(|r| r.method)
            .collect()
    }

    /// The decoded segments, or the problem with the first that could not be decoded.
    pub fn decoded(&self) -> Result<Vec<&str>, Problem> {
        self.segments
            .iter()
            .map(|s| s.as_deref().map_err(Clone::clone))
            .collect()
    }

    fn matches(&self, pattern: &str) -> bool {
        let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
        parts.len() == self.segments.len()
            && parts
                .iter()
                .zip(&self.segments)
                .all(|(part, segment)| is_parameter(part) || segment.as_deref() == Ok(*part))
    }
}

/// The values of a route's `{name}` segments in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathParameters<'a> {
    values: Vec<(&'static str, &'a str)>,
}

impl<'a> PathParameters<'a> {
    /// `route`'s parameters in `segments` (the decoded segments of a path it matches).
    pub fn of(route: &Route, segments: &[&'a str]) -> Self {
        Self {
            values: route
                .path
                .split('/')
                .filter(|p| !p.is_empty())
                .zip(segments)
                .filter(|(part, _)| is_parameter(part))
                .map(|(part, value)| (part.trim_matches(|c| c == '{' || c == '}'), *value))
                .collect(),
        }
    }

    /// The value of `{name}` (empty if the pattern has no such name: every handler reads only
    /// its own route's names, and `iotdp/tests/product/access.rs` calls each route with real ids, so a
    /// misspelt name fails there).
    pub fn get(&self, name: &str) -> &'a str {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v)
    }
}

fn is_parameter(part: &str) -> bool {
    part.starts_with('{') && part.ends_with('}')
}

/// A path segment with its `%XX` escapes decoded (`+` stays itself, unlike in query strings).
fn percent_decode(segment: &str) -> Result<String, Problem> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Problem::invalid(format!("path segment '{segment}' has a broken %-escape"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Problem::invalid(format!("path segment '{segment}' is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `route`'s pattern with `value` in each `{name}`.
    fn concrete(route: &Route, value: &str) -> String {
        route
            .path
            .split('/')
            .map(|p| if is_parameter(p) { value } else { p })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn every_route_is_reached_by_its_own_method_and_path_alone() {
        for route in ROUTES {
            for value in ["x", "commands", "a%2Fb"] {
                let path = RequestPath::parse(&concrete(route, value));
                assert_eq!(
                    path.destination(route.method),
                    Destination::Route(route),
                    "{} {}",
                    route.method,
                    route.path
                );
            }
        }
    }

    #[test]
    fn reads_need_a_viewer_alert_actions_an_operator_changes_an_admin() {
        let role = |method, path| route_for(method, path).map(|r| r.role);
        assert_eq!(role("GET", "/alerts"), Some(Role::Viewer));
        assert_eq!(
            role("POST", "/alerts/{device_id}/{rule_id}/ack"),
            Some(Role::Operator)
        );
        assert_eq!(role("PUT", "/rules/{rule_id}"), Some(Role::Admin));
        assert_eq!(
            role("POST", "/devices/{device_id}/suspend"),
            Some(Role::Admin)
        );
        assert_eq!(
            role("POST", "/devices/{device_id}/commands"),
            Some(Role::Operator)
        );
        for route in ROUTES.iter().filter(|r| r.method == "GET") {
            assert_eq!(route.role, Role::Viewer, "{}", route.path);
        }
    }

    #[test]
    fn a_path_is_matched_decoded_and_without_empty_segments() {
        let suspend = route_for("POST", "/devices/{device_id}/suspend").unwrap();
        for path in [
            "/devices/ac-1/suspend",
            "//devices//ac-1/suspend/",
            "/devices/ac-1/%73uspend",
        ] {
            assert_eq!(
                RequestPath::parse(path).destination("POST"),
                Destination::Route(suspend),
                "{path}"
            );
        }
        let path = RequestPath::parse("/devices/a%2Fb/suspend");
        let segments = path.decoded().unwrap();
        assert_eq!(
            PathParameters::of(suspend, &segments).get("device_id"),
            "a/b"
        );
    }

    #[test]
    fn a_broken_escape_matches_a_parameter_but_never_a_literal() {
        let device = RequestPath::parse("/devices/%zz");
        assert_eq!(
            device.destination("GET"),
            Destination::Route(route_for("GET", "/devices/{device_id}").unwrap())
        );
        assert!(
            device.decoded().unwrap_err().detail.contains("%zz"),
            "the problem names the segment"
        );
        assert_eq!(
            RequestPath::parse("/%64evices%zz").destination("GET"),
            Destination::NoRoute
        );
    }

    #[test]
    fn a_known_path_with_another_method_is_a_wrong_method_with_its_methods() {
        let path = RequestPath::parse("/rules/too-hot");
        assert_eq!(path.destination("GET"), Destination::WrongMethod);
        assert_eq!(path.allowed_methods(), ["PUT", "DELETE"]);
        assert_eq!(
            RequestPath::parse("/nowhere").destination("GET"),
            Destination::NoRoute
        );
        assert!(RequestPath::parse("/nowhere").allowed_methods().is_empty());
    }

    #[test]
    fn parameters_are_named_as_the_pattern_names_them() {
        let route = route_for("GET", "/devices/{device_id}/commands/{command_id}").unwrap();
        let path = RequestPath::parse("/devices/ac-1/commands/c-9");
        let segments = path.decoded().unwrap();
        let parameters = PathParameters::of(route, &segments);
        assert_eq!(
            (parameters.get("device_id"), parameters.get("command_id")),
            ("ac-1", "c-9")
        );
    }
}
