//! Who may see and do what through the API: a caller's role and scope, read from the claims
//! API Gateway's JWT authorizer verified (or full access for IAM-signed callers). Pure: the
//! HTTP front ends turn their request contexts into a [`Caller`]; the router checks the role
//! each route needs (`super::routes::ROUTES`) before anything else and the scope before a
//! store answers, so an out-of-scope id is "not found", never "forbidden".
//!
//! Only the claims of the stack's sign-in mode ([`ApiAuth`]) are read (see docs/access.md):
//! - `cognito`: the groups (`cognito:groups`, each group name whole): `iotdp-viewer`,
//!   `iotdp-operator`, `iotdp-admin` give the role (the highest wins); `place:<site[/zone…]>`,
//!   `device:<id>` and `fleet` give the scope.
//! - `jwt` (any other OpenID Connect provider): `iotdp_role` (one role) and `iotdp_scope`
//!   (space-separated entries, or an array of them).
//! - `iam`: no claim: IAM-signed callers are admins of the fleet.
//!
//! An entry that is not exactly one of these gives nothing and is logged once, so a typo
//! narrows access and never widens it.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::Value;

use crate::alerting::rule::Scope as RuleScope;
use crate::domain::{LocationPath, is_valid_device_id};

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

/// How callers of the API sign in: the stack's `ApiAuth` parameter (`API_AUTH` in the `api`
/// function's environment). It decides which claims give a caller's role and scope, so a
/// claim meant for another mode (an `iotdp_scope` a Cognito user carries) gives nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ApiAuth {
    /// SigV4-signed requests, each caller an admin of the fleet; no JWT claim is read.
    #[default]
    Iam,
    /// The stack's user pool: the groups claim, `cognito:groups`, and no other.
    Cognito,
    /// Your own OpenID Connect provider: `iotdp_role` and `iotdp_scope`, and no other.
    Jwt,
}

impl ApiAuth {
    pub const ALL: [ApiAuth; 3] = [ApiAuth::Iam, ApiAuth::Cognito, ApiAuth::Jwt];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiAuth::Iam => "iam",
            ApiAuth::Cognito => "cognito",
            ApiAuth::Jwt => "jwt",
        }
    }

    /// `iam`, `cognito` or `jwt`, as template.yaml's `ApiAuth` spells them.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == text)
    }

    /// The claims this mode reads (the others are ignored).
    pub fn claims(self) -> &'static [&'static str] {
        match self {
            ApiAuth::Iam => &[],
            ApiAuth::Cognito => &[GROUPS_CLAIM],
            ApiAuth::Jwt => &[ROLE_CLAIM, SCOPE_CLAIM],
        }
    }
}

/// A JWT's claims as its payload carries them: an array claim is a JSON array, not the
/// flattened text API Gateway's request context makes of it.
pub type Claims = serde_json::Map<String, Value>;

/// The claim carrying Cognito's groups.
pub const GROUPS_CLAIM: &str = "cognito:groups";
/// What a group giving a role is named: `iotdp-` and the role.
pub const ROLE_GROUP_PREFIX: &str = "iotdp-";
/// The role claim for identity providers without groups.
pub const ROLE_CLAIM: &str = "iotdp_role";
/// The scope claim for identity providers without groups: space-separated entries.
pub const SCOPE_CLAIM: &str = "iotdp_scope";

/// Something in a caller's claims that gives nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// An entry of a claim the mode reads that is not exactly a role or scope entry (a
    /// group of another application, a typo, a name with spaces or commas in it).
    Entry { claim: &'static str, entry: String },
    /// A claim another sign-in mode reads.
    OtherModesClaim { claim: &'static str, mode: ApiAuth },
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ignored::Entry {
                claim: ROLE_CLAIM,
                entry,
            } => write!(
                f,
                "{ROLE_CLAIM} '{entry}' gives nothing: it is not exactly viewer, operator or admin (docs/access.md)"
            ),
            Ignored::Entry { claim, entry } => write!(
                f,
                "{claim} entry '{entry}' gives nothing: it is not exactly fleet, place:<site[/zone/section/spot]>, device:<id> or iotdp-viewer|operator|admin (docs/access.md)"
            ),
            Ignored::OtherModesClaim { claim, mode } => write!(
                f,
                "claim {claim} gives nothing with ApiAuth={}: it is read with another ApiAuth (docs/access.md)",
                mode.as_str()
            ),
        }
    }
}

/// What a token's claims give under one sign-in mode, and what in them gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsReading {
    pub caller: Caller,
    pub ignored: Vec<Ignored>,
}

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

    /// A caller authenticated but given nothing (no authorizer in front, or a token that
    /// cannot be read): every route refuses them.
    pub fn nobody(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            role: None,
            access: Access::default(),
        }
    }

    /// The caller the verified `claims` of a JWT describe under `auth`; what gives nothing is
    /// logged, once per distinct entry (a user pool may serve other applications, whose
    /// groups would otherwise be logged on every call).
    pub fn from_claims(auth: ApiAuth, claims: &Claims) -> Self {
        let reading = read_claims(auth, claims);
        for ignored in &reading.ignored {
            warn_once(ignored);
        }
        reading.caller
    }
}

/// The caller `claims` describe under `auth`, reading only that mode's claims, each entry
/// whole: an entry is a role group, `fleet`, `place:` and a valid path, or `device:` and a
/// valid device id, exactly, or it is ignored.
pub fn read_claims(auth: ApiAuth, claims: &Claims) -> ClaimsReading {
    let identity = ["cognito:username", "username", "email", "sub"]
        .iter()
        .find_map(|name| {
            claims
                .get(*name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        })
        .unwrap_or("unknown");
    let mut reading = ClaimsReading {
        caller: Caller::nobody(identity),
        ignored: Vec::new(),
    };
    for claim in [GROUPS_CLAIM, ROLE_CLAIM, SCOPE_CLAIM] {
        if !auth.claims().contains(&claim) && claims.contains_key(claim) {
            reading
                .ignored
                .push(Ignored::OtherModesClaim { claim, mode: auth });
        }
    }
    match auth {
        ApiAuth::Iam => {}
        ApiAuth::Cognito => {
            if let Some(groups) = claims.get(GROUPS_CLAIM) {
                for entry in list_entries(groups, None) {
                    reading.take(GROUPS_CLAIM, entry);
                }
            }
        }
        ApiAuth::Jwt => {
            match claims.get(ROLE_CLAIM) {
                Some(Value::String(role)) if Role::parse(role).is_some() => {
                    reading.caller.role = Role::parse(role);
                }
                Some(other) => reading.ignored.push(Ignored::Entry {
                    claim: ROLE_CLAIM,
                    entry: text_of(other),
                }),
                None => {}
            }
            if let Some(scope) = claims.get(SCOPE_CLAIM) {
                for entry in list_entries(scope, Some(' ')) {
                    reading.take(SCOPE_CLAIM, entry);
                }
            }
        }
    }
    reading
}

impl ClaimsReading {
    /// Add what `entry` of `claim` gives, or note that it gives nothing.
    fn take(&mut self, claim: &'static str, entry: Result<&str, String>) {
        let caller = &mut self.caller;
        let given = entry.as_ref().is_ok_and(|&entry| {
            if let Some(role) = entry.strip_prefix(ROLE_GROUP_PREFIX).and_then(Role::parse) {
                caller.role = caller.role.max(Some(role));
            } else if entry == "fleet" {
                caller.access.fleet = true;
            } else if let Some(path) = entry
                .strip_prefix("place:")
                .and_then(|place| LocationPath::parse_exact(place).ok())
                .filter(|path| !path.is_empty())
            {
                caller.access.places.push(path);
            } else if let Some(device) = entry
                .strip_prefix("device:")
                .filter(|id| is_valid_device_id(id))
            {
                caller.access.devices.push(device.to_owned());
            } else {
                return false;
            }
            true
        });
        if !given {
            self.ignored.push(Ignored::Entry {
                claim,
                entry: entry.map_or_else(|text| text, str::to_owned),
            });
        }
    }
}

/// The entries of a list claim: each string of an array whole; a string whole, or split on
/// `separator` alone where the claim's format has one (`iotdp_scope`'s spaces). Anything
/// else is an entry that cannot be read, as its JSON text.
fn list_entries(value: &Value, separator: Option<char>) -> Vec<Result<&str, String>> {
    match (value, separator) {
        (Value::Array(items), _) => items
            .iter()
            .map(|item| item.as_str().ok_or_else(|| item.to_string()))
            .collect(),
        (Value::String(text), Some(separator)) => text
            .split(separator)
            .filter(|e| !e.is_empty())
            .map(Ok)
            .collect(),
        (Value::String(text), None) => vec![Ok(text.as_str())],
        (other, _) => vec![Err(other.to_string())],
    }
}

fn text_of(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// Distinct ignored entries warned about so far; bounded, so a stream of odd tokens cannot
/// grow it without end (past the bound, each is warned about again).
static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
const MOST_REMEMBERED_WARNINGS: usize = 1024;

fn warn_once(ignored: &Ignored) {
    let line = ignored.to_string();
    if first_time(&WARNED, line.clone()) {
        tracing::warn!(claims = "ignored", "{line}");
    }
}

/// Whether `line` is new to `seen` (remembering it, while there is room).
fn first_time(seen: &Mutex<BTreeSet<String>>, line: String) -> bool {
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.contains(&line) {
        return false;
    }
    if seen.len() < MOST_REMEMBERED_WARNINGS {
        seen.insert(line);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: Value) -> Claims {
        value.as_object().cloned().expect("claims are an object")
    }

    #[test]
    fn cognito_groups_give_the_highest_role_and_every_scope_entry() {
        let caller = Caller::from_claims(
            ApiAuth::Cognito,
            &claims(serde_json::json!({
                "sub": "5f1c",
                "cognito:username": "ana",
                GROUPS_CLAIM: ["iotdp-viewer", "place:wall-3/zone-a", "iotdp-operator", "device:ac-7", "other-app"],
            })),
        );
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
        let reading = read_claims(
            ApiAuth::Jwt,
            &claims(serde_json::json!({
                "sub": "u-1",
                ROLE_CLAIM: "viewer",
                SCOPE_CLAIM: "place:site-1 place:/bad/ place: device:",
            })),
        );
        let caller = &reading.caller;
        assert_eq!(caller.identity, "u-1");
        assert_eq!(caller.role, Some(Role::Viewer));
        assert_eq!(
            caller.access.places,
            [LocationPath::parse("site-1").unwrap()]
        );
        assert!(caller.access.devices.is_empty() && !caller.access.fleet);
        let ignored: Vec<String> = reading
            .ignored
            .iter()
            .map(|i| match i {
                Ignored::Entry { entry, .. } => entry.clone(),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(ignored, ["place:/bad/", "place:", "device:"]);
        // No role claim and no group: authenticated, allowed nothing.
        let nobody = Caller::from_claims(
            ApiAuth::Jwt,
            &claims(serde_json::json!({"sub": "u-2", SCOPE_CLAIM: "fleet"})),
        );
        assert_eq!(nobody.role, None);
        assert!(nobody.access.fleet);
    }

    #[test]
    fn an_array_claim_is_read_as_an_array_and_a_string_claim_whole() {
        let caller = Caller::from_claims(
            ApiAuth::Cognito,
            &claims(serde_json::json!({GROUPS_CLAIM: ["iotdp-admin", "fleet"]})),
        );
        assert_eq!(caller.role, Some(Role::Admin));
        assert!(caller.access.fleet);
        // Text that looks like a list is one group name, which no group is.
        for text in [
            r#"["iotdp-admin","fleet"]"#,
            "[iotdp-admin fleet]",
            "iotdp-admin,fleet",
        ] {
            let reading = read_claims(
                ApiAuth::Cognito,
                &claims(serde_json::json!({GROUPS_CLAIM: text})),
            );
            assert_eq!(reading.caller.role, None, "{text}");
            assert!(!reading.caller.access.fleet, "{text}");
            assert_eq!(
                reading.ignored,
                [Ignored::Entry {
                    claim: GROUPS_CLAIM,
                    entry: text.into()
                }]
            );
        }
        // An array iotdp_scope: each entry whole, not split.
        let reading = read_claims(
            ApiAuth::Jwt,
            &claims(
                serde_json::json!({ROLE_CLAIM: "admin", SCOPE_CLAIM: ["device:ac-1", "place:a fleet", 7]}),
            ),
        );
        assert_eq!(reading.caller.access.devices, ["ac-1"]);
        assert!(!reading.caller.access.fleet && reading.caller.access.places.is_empty());
        assert_eq!(reading.ignored.len(), 2, "{:?}", reading.ignored);
    }

    #[test]
    fn the_role_claim_is_a_role_name_exactly() {
        for role in [" admin", "Admin", "admin operator", "iotdp-admin"] {
            let reading = read_claims(ApiAuth::Jwt, &claims(serde_json::json!({ROLE_CLAIM: role})));
            assert_eq!(reading.caller.role, None, "{role}");
            assert_eq!(reading.ignored.len(), 1, "{role}");
        }
        let reading = read_claims(
            ApiAuth::Jwt,
            &claims(serde_json::json!({ROLE_CLAIM: ["admin"]})),
        );
        assert_eq!(reading.caller.role, None);
    }

    #[test]
    fn iam_reads_no_claim_at_all() {
        let reading = read_claims(
            ApiAuth::Iam,
            &claims(serde_json::json!({
                "sub": "s",
                GROUPS_CLAIM: ["iotdp-admin", "fleet"],
                ROLE_CLAIM: "admin",
                SCOPE_CLAIM: "fleet",
            })),
        );
        assert_eq!(reading.caller, Caller::nobody("s"));
        assert_eq!(reading.ignored.len(), 3);
    }

    #[test]
    fn an_ignored_entry_is_warned_about_once() {
        let seen = Mutex::new(BTreeSet::new());
        assert!(first_time(&seen, "plce:site-1".into()));
        assert!(!first_time(&seen, "plce:site-1".into()));
        assert!(first_time(&seen, "place:site 1".into()));
        for n in 0..MOST_REMEMBERED_WARNINGS {
            first_time(&seen, format!("entry-{n}"));
        }
        assert_eq!(seen.lock().unwrap().len(), MOST_REMEMBERED_WARNINGS);
        assert!(first_time(&seen, "one too many".into()));
        assert!(
            first_time(&seen, "one too many".into()),
            "not remembered past the bound"
        );
    }

    #[test]
    fn the_mode_is_spelled_as_template_yaml_spells_it() {
        for mode in ApiAuth::ALL {
            assert_eq!(ApiAuth::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(ApiAuth::parse("Cognito"), None);
        assert_eq!(ApiAuth::default(), ApiAuth::Iam);
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
}
