// Who is calling: the sign-in (the user pool's hosted UI, authorization code with PKCE), the
// token kept for the session, and the role its claims give (as the API reads them).

import { showError } from "./dom.js";

const ROLES = { viewer: 1, operator: 2, admin: 3 };

/// How to sign in, from the server (`/console/config.json`): the user pool's hosted UI with
/// the authorization-code flow and PKCE, or nothing (IAM, or the local platform).
const config = await fetch("/console/config.json").then((r) => r.json()).catch(() => ({ sign_in: null }));
export const signIn = config.sign_in;

function randomText(bytes) {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...values)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return btoa(String.fromCharCode(...new Uint8Array(digest))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const redirectUri = () => `${location.origin}/`;

/// To the hosted UI; it comes back to this page with `?code=…&state=…`.
async function startSignIn() {
  const verifier = randomText(48);
  const state = randomText(16);
  sessionStorage.setItem("iotdp.pkce", JSON.stringify({ verifier, state, route: location.hash }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: signIn.client_id,
    redirect_uri: redirectUri(),
    scope: signIn.scope,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  });
  location.assign(`${signIn.authorize}?${query}`);
}

/// Back from the hosted UI: the code and this tab's verifier for the tokens.
async function finishSignIn() {
  const query = new URLSearchParams(location.search);
  const code = query.get("code");
  if (!signIn || !code) return;
  const pending = JSON.parse(sessionStorage.getItem("iotdp.pkce") || "null");
  sessionStorage.removeItem("iotdp.pkce");
  history.replaceState(null, "", `${location.pathname}${pending?.route || "#/fleet"}`);
  if (!pending || pending.state !== query.get("state")) {
    throw new Error("Sign-in came back for another request (state differs): sign in again.");
  }
  const response = await fetch(signIn.token, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: signIn.client_id,
      code,
      redirect_uri: redirectUri(),
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json();
  if (!response.ok || !tokens.id_token) {
    throw new Error(`Sign-in failed: ${tokens.error_description || tokens.error || response.status}`);
  }
  sessionStorage.setItem("iotdp.token", tokens.id_token);
}

function signOut() {
  sessionStorage.removeItem("iotdp.token");
  const query = new URLSearchParams({ client_id: signIn.client_id, logout_uri: redirectUri() });
  location.assign(`${signIn.logout}?${query}`);
}

/// A token handed over in the URL (`#id_token=…`, or `?token=…` for a local scoped caller) is
/// kept for the session, and the address cleaned.
function takeToken() {
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, "")).get("id_token");
  const fromQuery = new URLSearchParams(location.search).get("token");
  const found = fromHash || fromQuery;
  if (found) {
    sessionStorage.setItem("iotdp.token", found);
    history.replaceState(null, "", location.pathname + "#/fleet");
  }
  return sessionStorage.getItem("iotdp.token");
}

function claimsOf(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

/// The caller's role as the API reads a signed-in user's token (docs/access.md): the
/// `cognito:groups` claim alone, each group taken whole, so only `iotdp-viewer`,
/// `iotdp-operator` and `iotdp-admin` give a role (a near miss gives none). Without a token the
/// local platform treats the caller as its admin. This only decides which buttons show; the
/// API enforces the role.
function roleOf(claims, jwt) {
  if (!jwt) return signIn ? "none" : "admin";
  let best = null;
  for (const group of [].concat(claims["cognito:groups"] || [])) {
    const role = typeof group === "string" && group.startsWith("iotdp-") ? group.slice(6) : null;
    if (Object.hasOwn(ROLES, role) && (!best || ROLES[role] > ROLES[best])) best = role;
  }
  return best || "viewer";
}

let failed = null;
await finishSignIn().catch((e) => { failed = e; });
/// Why coming back from the hosted UI did not sign in, if it did not.
export const signInError = failed;
/// The bearer token the API calls carry, or null.
export const token = takeToken();
export const claims = token ? claimsOf(token) : {};
export const role = roleOf(claims, token);
/// Whether the caller's role is at least `needed` (the pages show act buttons only then).
export const can = (needed) => (ROLES[role] || 0) >= ROLES[needed];

/// The header's caller: who and which role, with Sign in or Sign out where the page signs in.
export function showWho() {
  const who = document.getElementById("who");
  if (token) {
    who.append(`${claims.email || claims["cognito:username"] || claims.sub || "signed in"} · ${role} `);
    if (signIn) who.append(Object.assign(document.createElement("button"), { type: "button", className: "secondary", textContent: "Sign out", onclick: signOut }));
  } else if (signIn) {
    who.append(Object.assign(document.createElement("button"), { type: "button", textContent: "Sign in", onclick: () => startSignIn().catch(showError) }));
  } else {
    who.textContent = "local · admin";
  }
}
