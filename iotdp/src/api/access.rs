//! Who may see and do what through the API: a caller's role and scope, read from the claims
//! API Gateway's JWT authorizer verified (or full access for IAM-signed callers), and the
//! role each route needs. Pure: the HTTP front ends turn their request contexts into a
//! [`Caller`]; the router checks the role before anything else and the scope before a store
//! answers, so an out-of-scope id is "not found", never "forbidden".
//!
//! Claims (see docs/access.md):
//! - Cognito groups (`cognito:groups`): `iotdp-viewer`, `iotdp-operator`, `iotdp-admin` give
//!   the role (the highest wins); `place:<site[/zone…]>`, `device:<id>` and `fleet` give the
//!   scope.
//! - Any other OpenID Connect provider: the claims `iotdp_role` (one role) and `iotdp_scope`
//!   (space-separated `place:…`, `device:…` or `fleet`), which Cognito may carry too.

use std::collections::HashMap;

use crate::alerting::rule::Scope as RuleScope;
use crate::domain::LocationPath;

/// What a caller may do, each role including the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read devices, readings, rules and alerts.
    Viewer,
    /// And act on alerts (acknowledge, snooze, disable, enable, reset) and command devices.
    Operator,
    /// And register, redefine, suspend and resume devices; put and delete rules.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Every role, least first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The Cognito group (or `iotdp_scope` entry) that gives this role.
    pub fn group(self) -> String {
        format!("{ROLE_GROUP_PREFIX}{}", self.as_str())
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The devices a caller may see: the whole fleet, or places (a device at or below one) and
/// device ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub fleet: bool,
    pub places: Vec<LocationPath>,
    pub devices: Vec<String>,
}

impl Access {
    pub fn fleet() -> Self {
        Self {
            fleet: true,
            ..Self::default()
        }
    }

    /// Whether the device `device_id` at `path` is in scope.
    pub fn sees_device(&self, device_id: &str, path: &LocationPath) -> bool {
        self.fleet
            || self.devices.iter().any(|d| d == device_id)
            || self.places.iter().any(|p| path.starts_with(p))
    }

    /// Whether the place `path`, and so everything below it, is in scope.
    pub fn sees_place(&self, path: &LocationPath) -> bool {
        self.fleet || self.places.iter().any(|p| path.starts_with(p))
    }

    /// Whether a rule watching `scope` is in scope: a rule on one device needs that device
    /// (`device_path` is where it is registered, if it is); a rule on a place needs the
    /// place; a fleet-wide or type-wide rule needs the fleet.
    pub fn sees_rule(&self, scope: &RuleScope, device_path: Option<&LocationPath>) -> bool {
        match scope {
            _ if self.fleet => true,
            RuleScope::DeviceId(id) => {
                self.devices.contains(id) || device_path.is_some_and(|p| self.sees_place(p))
            }
            RuleScope::Path(place) => self.sees_place(place),
            RuleScope::All | RuleScope::DeviceType(_) => false,
        }
    }

    /// `fleet`, or the places and devices, as the audit line and problem details name them.
    pub fn describe(&self) -> String {
        if self.fleet {
            return "fleet".into();
        }
        let entries: Vec<String> = self
            .places
            .iter()
            .map(|p| format!("place:{p}"))
            .chain(self.devices.iter().map(|d| format!("device:{d}")))
            .collect();
        if entries.is_empty() {
            "nothing".into()
        } else {
            entries.join(" ")
        }
    }
}

/// An authenticated caller: who (for the audit), their role (`None`: authenticated but given
/// no iotdp role, so refused everything) and their scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub identity: String,
    pub role: Option<Role>,
    pub access: Access,
}

/// The claim carrying Cognito's groups.
pub const GROUPS_CLAIM: &str = "cognito:groups";
/// What a group giving a role is named: `iotdp-` and the role.
pub const ROLE_GROUP_PREFIX: &str = "iotdp-";
/// The role claim for identity providers without groups.
pub const ROLE_CLAIM: &str = "iotdp_role";
/// The scope claim for identity providers without groups: space-separated entries.
pub const SCOPE_CLAIM: &str = "iotdp_scope";

impl Caller {
    /// A caller the platform trusts with everything: IAM-signed requests (IAM policy decides
    /// who may call at all, and can narrow routes through execute-api resource ARNs), and the
    /// local platform's own tools.
    pub fn admin(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            role: Some(Role::Admin),
            access: Access::fleet(),
        }
    }

    /// A caller from the verified claims of a JWT. Unknown groups and entries are ignored
    /// (a user pool has groups for other applications); an entry naming an invalid place is
    /// ignored too, so a typo narrows access rather than widening it.
    pub fn from_claims(claims: &HashMap<String, String>) -> Self {
        let identity = ["cognito:username", "username", "email", "sub"]
            .iter()
            .find_map(|name| claims.get(*name).filter(|v| !v.is_empty()))
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        let mut role = claims.get(ROLE_CLAIM).and_then(|r| Role::parse(r.trim()));
        let mut access = Access::default();
        let mut take = |entry: &str| {
            if let Some(group_role) = entry.strip_prefix(ROLE_GROUP_PREFIX).and_then(Role::parse) {
                role = role.max(Some(group_role));
            } else if entry == "fleet" {
                access.fleet = true;
            } else if let Some(place) = entry.strip_prefix("place:") {
                if let Ok(path) = LocationPath::parse_exact(place)
                    && !path.is_empty()
                {
                    access.places.push(path);
                }
            } else if let Some(device) = entry.strip_prefix("device:")
                && !device.is_empty()
            {
                access.devices.push(device.to_owned());
            }
        };
        for entry in claims
            .get(GROUPS_CLAIM)
            .map(|g| list_claim(g))
            .unwrap_or_default()
        {
            take(entry);
        }
        for entry in claims
            .get(SCOPE_CLAIM)
            .map(|s| s.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            take(entry);
        }
        Self {
            identity,
            role,
            access,
        }
    }
}

/// A list claim as API Gateway's HTTP API hands it over: JWT arrays arrive flattened to one
/// string, `[a b c]`; a JSON array text or a comma-separated list is read too.
fn list_claim(text: &str) -> Vec<&str> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|e| e.trim().trim_matches('"'))
        .filter(|e| !e.is_empty())
        .collect()
}

/// The role `method` on the route `template` (one of [`super::ROUTES`]) needs: reads need a
/// viewer, alert actions and commands an operator, device and rule changes an admin.
pub fn required_role(method: &str, template: &str) -> Role {
    match (method, template) {
        ("GET", _) => Role::Viewer,
        ("POST", t) if t.starts_with("/alerts/") => Role::Operator,
        ("POST", "/devices/{device_id}/commands") => Role::Operator,
        _ => Role::Admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn cognito_groups_give_the_highest_role_and_every_scope_entry() {
        let caller = Caller::from_claims(&claims(&[
            ("sub", "5f1c"),
            ("cognito:username", "ana"),
            (
                GROUPS_CLAIM,
                "[iotdp-viewer place:wall-3/zone-a iotdp-operator device:ac-7 other-app]",
            ),
        ]));
        assert_eq!(caller.identity, "ana");
        assert_eq!(caller.role, Some(Role::Operator));
        assert_eq!(
            caller.access,
            Access {
                fleet: false,
                places: vec![LocationPath::parse("wall-3/zone-a").unwrap()],
                devices: vec!["ac-7".into()],
            }
        );
        assert_eq!(caller.access.describe(), "place:wall-3/zone-a device:ac-7");
    }

    #[test]
    fn custom_claims_work_for_other_providers_and_typos_narrow_access() {
        let caller = Caller::from_claims(&claims(&[
            ("sub", "u-1"),
            (ROLE_CLAIM, "viewer"),
            (SCOPE_CLAIM, "place:site-1 place:/bad/ place: device:"),
        ]));
        assert_eq!(caller.identity, "u-1");
        assert_eq!(caller.role, Some(Role::Viewer));
        assert_eq!(
            caller.access.places,
            [LocationPath::parse("site-1").unwrap()]
        );
        assert!(caller.access.devices.is_empty() && !caller.access.fleet);
        // No role claim and no group: authenticated, allowed nothing.
        let nobody = Caller::from_claims(&claims(&[("sub", "u-2"), (SCOPE_CLAIM, "fleet")]));
        assert_eq!(nobody.role, None);
        assert!(nobody.access.fleet);
    }

    #[test]
    fn a_json_array_claim_is_read_too() {
        let caller = Caller::from_claims(&claims(&[(GROUPS_CLAIM, r#"["iotdp-admin","fleet"]"#)]));
        assert_eq!(caller.role, Some(Role::Admin));
        assert!(caller.access.fleet);
    }

    #[test]
    fn places_cover_what_lies_below_them_and_nothing_beside() {
        let access = Access {
            places: vec![LocationPath::parse("wall-3/zone-a").unwrap()],
            devices: vec!["ac-7".into()],
            ..Access::default()
        };
        let at = |p: &str| LocationPath::parse(p).unwrap();
        assert!(access.sees_device("spot-1", &at("wall-3/zone-a/s1/spot-1")));
        assert!(access.sees_device("ac-7", &at("home-9")));
        assert!(!access.sees_device("spot-9", &at("wall-3/zone-b")));
        assert!(!access.sees_device("spot-0", &at("wall-3")));
        assert!(!access.sees_place(&at("wall-3")));
        assert!(access.sees_rule(&RuleScope::Path(at("wall-3/zone-a/s2")), None));
        assert!(!access.sees_rule(&RuleScope::Path(at("wall-3")), None));
        assert!(access.sees_rule(&RuleScope::DeviceId("ac-7".into()), None));
        assert!(access.sees_rule(
            &RuleScope::DeviceId("spot-1".into()),
            Some(&at("wall-3/zone-a/s1"))
        ));
        assert!(!access.sees_rule(&RuleScope::All, None));
        assert!(!access.sees_rule(&RuleScope::DeviceType("spot".into()), None));
        assert!(Access::fleet().sees_rule(&RuleScope::All, None));
    }

    #[test]
    fn reads_need_a_viewer_alert_actions_an_operator_changes_an_admin() {
        assert_eq!(required_role("GET", "/alerts"), Role::Viewer);
        assert_eq!(
            required_role("POST", "/alerts/{device_id}/{rule_id}/ack"),
            Role::Operator
        );
        assert_eq!(required_role("PUT", "/rules/{rule_id}"), Role::Admin);
        assert_eq!(
            required_role("POST", "/devices/{device_id}/suspend"),
            Role::Admin
        );
    }
}
