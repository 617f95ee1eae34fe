// The console in a real headless Chromium (Debian's, driven by playwright-core) against a
// running `iotdp local` with its simulated fleet: each page renders what the API answers, and
// what an operator does through it reaches the API and the devices. Run by `make console-test`
// (part of `make test`); IOTDP_BIN names the iotdp binary. Screenshots go to
// CONSOLE_SCREENSHOTS (default target/console).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { chromium } from "playwright-core";

const IOTDP = process.env.IOTDP_BIN || "target/debug/iotdp";
const SHOTS = process.env.CONSOLE_SCREENSHOTS || "target/console";
let platform;
let base;
let mqttPort;
let browser;
let authorization;
/// The fleet's admin, as the other tests' pages sign in (the local API reads the claims).
const ADMIN = token({ sub: "a1", email: "admin@example.com", "cognito:groups": ["iotdp-admin", "fleet"] });

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/// Poll `probe` until it returns something truthy, for up to `seconds`.
async function eventually(what, probe, seconds = 90) {
  const until = Date.now() + seconds * 1000;
  let last;
  while (Date.now() < until) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}: ${last}`);
}

async function api(path, options = {}) {
  const response = await fetch(base + path, {
    ...options,
    headers: { "content-type": "application/json", ...(options.headers || {}) },
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

async function allPages(path, key) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const answer = await api(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    items.push(...answer[key]);
    cursor = answer.next;
  } while (cursor);
  return items;
}

/// An unsigned JWT with these claims: the local API reads a bearer token's claims as API
/// Gateway's authorizer hands them over (docs/access.md).
function token(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none" })}.${part(claims)}.`;
}

/// One reading published as a device publishes it: MQTT 3.1.1 to the local broker (CONNECT,
/// CONNACK, PUBLISH at QoS 0, DISCONNECT), with no MQTT library.
function publish(clientId, topic, payload) {
  const string = (text) => {
    const bytes = Buffer.from(text);
    return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
  };
  const packet = (type, body) => {
    const length = [];
    let n = body.length;
    do {
      length.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
      n >>= 7;
    } while (n > 0);
    return Buffer.concat([Buffer.from([type, ...length]), body]);
  };
  return new Promise((resolve, reject) => {
    const socket = net.connect(mqttPort, "127.0.0.1", () => {
      // Protocol "MQTT" level 4, clean session, keep-alive 30 s.
      socket.write(packet(0x10, Buffer.concat([string("MQTT"), Buffer.from([4, 0x02, 0, 30]), string(clientId)])));
    });
    socket.once("data", (connack) => {
      if (connack[0] !== 0x20 || connack[3] !== 0) {
        socket.destroy();
        reject(new Error(`the broker refused the connection: ${connack.toString("hex")}`));
        return;
      }
      socket.write(packet(0x30, Buffer.concat([string(topic), Buffer.from(payload)])));
      socket.end(packet(0xe0, Buffer.alloc(0)), resolve);
    });
    socket.on("error", reject);
  });
}

/// A page of the console signed in as `asToken` (the admin by default): the token is put
/// where the console keeps one after signing in.
async function openPage(route, { asToken = ADMIN } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((t) => sessionStorage.setItem("iotdp.token", t), asToken);
  const page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  await page.goto(`${base}/${route}`);
  await page.waitForFunction(() => document.querySelector("#page")?.dataset.ready);
  return page;
}

/// An OAuth 2.0 authorization server as the user pool's hosted UI answers the console: the
/// code flow with PKCE (S256), each code good once and only with its verifier. It signs in
/// an operator of the fleet.
function startAuthorizationServer(port) {
  const codes = new Map();
  const issued = [];
  const server = http.createServer((request, response) => {
    const url = new URL(request.url, `http://127.0.0.1:${port}`);
    if (url.pathname === "/oauth2/authorize") {
      const code = randomUUID();
      codes.set(code, { challenge: url.searchParams.get("code_challenge"), redirect: url.searchParams.get("redirect_uri") });
      const back = new URL(url.searchParams.get("redirect_uri"));
      back.searchParams.set("code", code);
      back.searchParams.set("state", url.searchParams.get("state"));
      response.writeHead(302, { location: back.toString() });
      response.end();
      return;
    }
    if (url.pathname === "/oauth2/token" && request.method === "POST") {
      let body = "";
      request.on("data", (chunk) => { body += chunk; });
      request.on("end", () => {
        const form = new URLSearchParams(body);
        const pending = codes.get(form.get("code"));
        codes.delete(form.get("code"));
        const verified = pending
          && createHash("sha256").update(form.get("code_verifier") || "").digest("base64url") === pending.challenge
          && form.get("redirect_uri") === pending.redirect
          && form.get("client_id") === "console-test-client";
        const headers = { "content-type": "application/json", "access-control-allow-origin": base };
        if (!verified) {
          response.writeHead(400, headers);
          response.end(JSON.stringify({ error: "invalid_grant" }));
          return;
        }
        const idToken = token({ sub: "o1", email: "operator@example.com", "cognito:groups": ["iotdp-operator", "fleet"] });
        issued.push(idToken);
        response.writeHead(200, headers);
        response.end(JSON.stringify({ id_token: idToken, access_token: idToken, token_type: "Bearer", expires_in: 3600 }));
      });
      return;
    }
    response.writeHead(404);
    response.end();
  });
  server.issued = issued;
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

before(async () => {
  const [apiPort, brokerPort, authPort] = [await freePort(), await freePort(), await freePort()];
  mqttPort = brokerPort;
  base = `http://127.0.0.1:${apiPort}`;
  authorization = await startAuthorizationServer(authPort);
  platform = spawn(IOTDP, ["local", "--api", `127.0.0.1:${apiPort}`, "--mqtt", `127.0.0.1:${mqttPort}`, "--store", "influxdb",
    "--console-sign-in-url", `http://127.0.0.1:${authPort}`, "--console-client-id", "console-test-client",
    "--influxdb-data", `target/console-influxdb-${process.pid}`], { stdio: ["ignore", "ignore", "inherit"] });
  platform.on("exit", (code) => {
    if (code !== null && code !== 0) console.error(`iotdp local exited with ${code}`);
  });
  // Up, and the fleet's readings flowing: a battery box has a voltage.
  await eventually("the local platform's API", () => api("/devices?limit=1"));
  await eventually("a battery box's first voltage", async () => {
    const { latest } = await api("/devices/battery-0001");
    return latest.voltage;
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  authorization?.close();
  if (platform && platform.exitCode === null) {
    platform.kill("SIGINT");
    await new Promise((resolve) => platform.once("exit", resolve));
  }
});

test("the fleet page lists every device the API lists, with its counts, in under 250 KB", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((t) => sessionStorage.setItem("iotdp.token", t), ADMIN);
  const page = await context.newPage();
  const sizes = [];
  const external = [];
  // Every request the page makes, through Chromium's own network events: playwright's
  // page.on("response") leaves out the browser's favicon request (a /favicon.ico it answered
  // 404 went unseen there).
  const failed = [];
  const network = await context.newCDPSession(page);
  await network.send("Network.enable");
  network.on("Network.responseReceived", ({ response }) => {
    if (response.status >= 400) failed.push(`${response.status} ${response.url}`);
  });
  network.on("Network.loadingFailed", ({ errorText, canceled }) => {
    if (!canceled) failed.push(`failed: ${errorText}`);
  });
  page.on("requestfinished", (request) => {
    if (!request.url().startsWith(base)) external.push(request.url());
    sizes.push(request.sizes().then((s) => s.responseBodySize + s.responseHeadersSize));
  });
  const started = Date.now();
  await page.goto(`${base}/#/fleet`);
  await page.waitForFunction(() => document.querySelector("#page")?.dataset.ready === "fleet");
  const firstPageMs = Date.now() - started;
  await page.waitForLoadState("networkidle");
  const bytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
  const devices = await allPages("/devices?limit=500", "devices");
  const rows = await page.locator("[data-testid=devices] tbody tr").count();
  assert.equal(rows, devices.length);
  const active = devices.filter((d) => d.status === "active").length;
  assert.equal(await page.locator("[data-status=active] b").innerText(), String(active));
  assert.deepEqual(external, [], "nothing is fetched from elsewhere");
  assert.ok(bytes < 250 * 1024, `first page transferred ${bytes} bytes`);
  console.log(`first page: ${(bytes / 1024).toFixed(1)} KiB transferred (uncompressed) in ${sizes.length} requests, ready in ${firstPageMs} ms`);
  // Filtering by type asks the API and shows only that type.
  await page.selectOption("select[name=status]", "active");
  await page.waitForFunction(() => location.hash.includes("status=active") && document.querySelector("#page").dataset.ready === "fleet");
  await page.fill("input[name=type]", "thermostat");
  await page.click("form.filters button[type=submit]");
  await page.waitForFunction(() => location.hash.includes("type=thermostat") && document.querySelector("#page").dataset.ready === "fleet");
  await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=devices] tbody tr td:nth-child(2)")].every((td) => td.textContent === "thermostat"));
  const thermostats = (await allPages("/devices?type=thermostat&status=active&limit=500", "devices")).length;
  assert.equal(await page.locator("[data-testid=devices] tbody tr").count(), thermostats);
  await page.goto(`${base}/#/fleet`);
  await page.waitForFunction(() => document.querySelector("#page")?.dataset.ready === "fleet");
  await shot(page, "fleet");
  // The loads and the filters asked for nothing that is missing or failed.
  assert.deepEqual(failed, [], "no request answered 4xx/5xx or failed");
  await context.close();
});

test("the drill-down goes from the sites to a spot, each level what the API aggregates", async () => {
  const page = await openPage("#/places/?metric=moisture&range=1h");
  let path = "";
  for (const level of ["site", "zone", "section", "spot"]) {
    // This level's page, not the last one's still marked ready before the click's route ran.
    const shown = ["places", path].filter(Boolean).join("/");
    await page.waitForFunction((s) => document.querySelector("#page").dataset.ready === "places" && document.querySelector("#page").dataset.shown === s, shown);
    const now = new Date();
    const { groups } = await api(`/readings/moisture/drill-down?path=${encodeURIComponent(path)}&from=${new Date(now - 3600e3).toISOString()}&to=${now.toISOString()}&agg=avg`);
    const cells = await page.locator("[data-testid=cells] .cell").evaluateAll((nodes) => nodes.map((n) => n.dataset.group));
    assert.deepEqual(cells.sort(), groups.map((g) => g.name).sort(), `the ${level}s of '${path}'`);
    assert.ok(cells.length > 0, `some ${level} has moisture readings`);
    if (level === "site") await shot(page, "places");
    const next = groups.map((g) => g.name).sort()[0];
    path = path ? `${path}/${next}` : next;
    await page.click(`[data-group="${next}"]`);
    await page.waitForFunction((p) => decodeURIComponent(location.hash).startsWith(`#/places/${p}`), path);
  }
  await page.waitForFunction(() => document.querySelector("[data-testid=spot-devices] a"));
  const expected = await allPages(`/devices?path=${encodeURIComponent(path)}`, "devices");
  const listed = await page.locator("[data-testid=spot-devices] a").allInnerTexts();
  assert.deepEqual(listed, expected.map((d) => d.device_id));
  await page.click("[data-testid=spot-devices] a");
  await page.waitForFunction(() => document.querySelector("#page").dataset.ready === "devices");
});

test("a device's chart draws exactly the API's bins, and a command reaches the simulated thermostat", async () => {
  // Bins that closed a minute before the chart's end no longer change: wait for some.
  await eventually("a minute and a half of battery-0001's voltage", async () => {
    const { points } = await api("/devices/battery-0001/readings/voltage?from=-1h&limit=1");
    return points.length > 0 && Date.parse(points[0].time) < Date.now() - 90_000;
  }, 180);
  const page = await openPage("#/devices/battery-0001?range=1h");
  const started = Date.now();
  await page.waitForFunction(() => document.querySelector("[data-metric=voltage] canvas"));
  console.log(`time to first chart (device page, 1 h): ${Date.now() - started} ms`);
  const chart = await page.evaluate(() => {
    const box = document.querySelector("[data-metric=voltage]");
    return { source: box.dataset.source, data: box.__uplot.data.map((column) => Array.from(column)) };
  });
  const points = await allPages(chart.source, "points");
  // The fleet keeps reporting: a bin still filling may have grown since the chart asked, so
  // the bins compared are those that closed a minute before the range's end.
  const settled = Date.parse(new URL(chart.source, base).searchParams.get("to")) / 1000 - 60;
  const numeric = points.filter((p) => typeof p.value === "number" && Date.parse(p.time) / 1000 < settled);
  const drawn = chart.data[0].map((x, i) => [x, chart.data[1][i]]).filter(([x]) => x < settled);
  assert.deepEqual(drawn.map(([x]) => x), numeric.map((p) => Date.parse(p.time) / 1000));
  assert.deepEqual(drawn.map(([, y]) => y), numeric.map((p) => p.value));
  assert.ok(numeric.length > 0, "the chart has settled bins to compare");
  await shot(page, "device");

  // 10,000 points: how long one redraw takes, from new data to uPlot's draw hook (uPlot
  // commits its redraw in a microtask, so the hook is awaited, not the call).
  const redraw = await page.evaluate(async () => {
    const n = 10000;
    const xs = Float64Array.from({ length: n }, (_, i) => 1.7e9 + i * 60);
    const ys = Float64Array.from({ length: n }, (_, i) => 13 + Math.sin(i / 50) + Math.random() * 0.1);
    const target = document.createElement("div");
    document.body.append(target);
    let drawn = 0;
    const opts = { width: 1200, height: 220, series: [{}, { stroke: "red" }], scales: { x: { time: true } },
      hooks: { draw: [() => { drawn = performance.now(); }] } };
    const u = new uPlot(opts, [xs, ys], target);
    const times = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      drawn = 0;
      u.setData([xs, ys.map((y) => y + i * 0.01)]);
      await new Promise((resolve) => setTimeout(resolve, 0));
      times.push(drawn - t0);
    }
    times.sort((a, b) => a - b);
    return times[5];
  });
  console.log(`chart redraw at 10,000 points: ${redraw.toFixed(1)} ms (median of 10)`);
  assert.ok(redraw < 100, `a redraw at 10,000 points took ${redraw} ms`);

  // A command to a thermostat: pending, then delivered when the device reports it.
  const thermostat = await openPage("#/devices/ac-0000?range=1h");
  await thermostat.fill("[data-testid=command-form] textarea", '{"setpoint": 22.5}');
  await thermostat.click("[data-testid=command-form] button[type=submit]");
  await thermostat.waitForSelector("[data-testid=commands] tbody tr:first-child td[data-status=delivered]", { timeout: 60000 });
  const id = await thermostat.locator("[data-testid=commands] tbody tr:first-child").getAttribute("data-command");
  const { command } = await api(`/devices/ac-0000/commands/${encodeURIComponent(id)}`);
  assert.equal(command.status, "delivered");
  assert.deepEqual(command.desired, { setpoint: 22.5 });
});

test("a new device's chart with one bin spans exactly the range asked for", async () => {
  const id = `console-new-${process.pid}`;
  await api("/devices", { method: "POST", body: JSON.stringify({ device_id: id, device_type: "battery-box" }) });
  await publish(id, `dt/${id}/telemetry`, JSON.stringify({ metrics: { voltage: 12.6 } }));
  await eventually(`${id}'s reading`, async () => (await api(`/devices/${id}`)).latest.voltage);
  const page = await openPage(`#/devices/${id}?range=24h`);
  for (const [range, bin] of [["24h", "5m"], ["1y", "1d"]]) {
    if (range !== "24h") await page.click(`.presets button:text-is("${range}")`);
    // The chart of this range (the previous one stays until the page is drawn again).
    await page.waitForFunction((b) => document.querySelector("#page").dataset.ready === "devices"
      && document.querySelector("[data-metric=voltage]")?.dataset.source.includes(`&bin=${b}&`)
      && document.querySelector("[data-metric=voltage]").__uplot, bin);
    const drawn = await page.evaluate(() => {
      const box = document.querySelector("[data-metric=voltage]");
      const { min, max } = box.__uplot.scales.x;
      return { source: box.dataset.source, min, max, bins: box.__uplot.data[0].length };
    });
    const asked = new URL(drawn.source, base).searchParams;
    const { points } = await api(drawn.source);
    assert.ok(points.length <= 1, `${range}: ${points.length} bins`);
    if (range === "24h") assert.equal(drawn.bins, 1, "the 24 h chart has the one 5 min bin");
    // uPlot would fit the axis to the data: one bin spanned years around it.
    assert.equal(drawn.min, Date.parse(asked.get("from")) / 1000, `${range}: the axis starts at from`);
    assert.equal(drawn.max, Date.parse(asked.get("to")) / 1000, `${range}: the axis ends at to`);
  }
  await page.context().close();
});

test("acknowledging an alarm through the alerts page changes its state in the API", async () => {
  // A rule every battery box's voltage crosses, so an alarm is there to acknowledge.
  await api("/rules/console-test-voltage", {
    method: "PUT",
    body: JSON.stringify({ rule_id: "console-test-voltage", name: "Voltage present (console test)", metric: "voltage",
      scope: { device_type: "battery-box" }, condition: { above: 1 }, severity: "critical" }),
  });
  const alarm = await eventually("an alarm of the test rule", async () => {
    const alerts = await allPages("/alerts?state=ALARM&limit=500", "alerts");
    return alerts.find((a) => a.rule_id === "console-test-voltage");
  });
  const page = await openPage("#/alerts?state=ALARM");
  const row = page.locator(`[data-alert="${alarm.device_id}/console-test-voltage"]`);
  await shot(page, "alerts");
  await row.getByRole("button", { name: "Acknowledge" }).click();
  await page.waitForSelector(`[data-alert="${alarm.device_id}/console-test-voltage"] td[data-state=ACKNOWLEDGED]`);
  const after = await api(`/alerts?device=${encodeURIComponent(alarm.device_id)}`);
  assert.equal(after.alerts.find((a) => a.rule_id === "console-test-voltage").state, "ACKNOWLEDGED");
  await api("/rules/console-test-voltage", { method: "DELETE" });
});

test("a rule with a bad field shows that field's error, and a good one is saved", async () => {
  const page = await openPage("#/rules");
  await shot(page, "rules");
  const bad = { rule_id: "console-test-bad", name: "bad", scope: "all", metric: "temperature", condition: { above: 30 }, clear: 35, severity: "warning" };
  await page.fill("[data-testid=rule-form] textarea", JSON.stringify(bad, null, 2));
  await page.click("[data-testid=rule-form] button[type=submit]");
  await page.waitForSelector("[data-testid=rule-error]:not([hidden])");
  assert.equal(await page.locator("[data-testid=field-name]").innerText(), "clear");
  // The same words the API gives.
  const response = await fetch(`${base}/rules/console-test-bad`, { method: "PUT", body: JSON.stringify(bad) });
  const problem = await response.json();
  assert.equal(response.status, 422);
  assert.ok(problem.detail.includes(await page.locator("[data-testid=field-message]").innerText()), problem.detail);
  const good = { ...bad, rule_id: "console-test-good", clear: 28 };
  await page.fill("[data-testid=rule-form] textarea", JSON.stringify(good, null, 2));
  await page.click("[data-testid=rule-form] button[type=submit]");
  await page.waitForSelector("[data-rule=console-test-good]");
  assert.ok((await api("/rules")).rules.some((r) => r.rule_id === "console-test-good"));
  await api("/rules/console-test-good", { method: "DELETE" });
});

test("a viewer scoped to one site sees nothing of another and has no buttons to act", async () => {
  const site = "wall-2";
  const viewer = token({ sub: "v1", email: "viewer@example.com", "cognito:groups": ["iotdp-viewer", `place:${site}`] });
  const page = await openPage("#/fleet", { asToken: viewer });
  const paths = await page.locator("[data-testid=devices] tbody tr td:nth-child(3)").allInnerTexts();
  assert.ok(paths.length > 0, "the viewer sees their site's devices");
  assert.ok(paths.every((p) => p === site || p.startsWith(`${site}/`)), paths.join(", "));
  assert.match(await page.locator("#who").innerText(), /viewer/);
  await shot(page, "fleet-viewer");
  await page.goto(`${base}/#/alerts`);
  await page.waitForFunction(() => document.querySelector("#page").dataset.ready === "alerts");
  assert.equal(await page.locator("main button").count(), 0, "no act buttons on alerts");
  await page.goto(`${base}/#/devices/wall-gw-0002-s00`);
  await page.waitForFunction(() => document.querySelector("#page").dataset.ready === "devices");
  assert.equal(await page.locator("[data-testid=command-form]").count(), 0, "no command form");
  // Another site's device is not found, exactly as a missing one.
  await page.goto(`${base}/#/devices/battery-0001`);
  await page.waitForFunction(() => document.querySelector("#page").dataset.ready === "error");
  assert.match(await page.locator("#error").innerText(), /not/i);
});

test("signing in runs the code flow with PKCE at the hosted UI and shows the fleet to the signed-in operator", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/#/alerts`);
  await page.waitForFunction(() => document.querySelector("#page")?.dataset.ready === "signed-out");
  assert.equal(await page.locator("[data-testid=devices]").count(), 0, "nothing before signing in");
  await page.getByRole("button", { name: "Sign in" }).click();
  // Back from the authorization server with a code, exchanged for the token, on the page asked for.
  await page.waitForFunction(() => document.querySelector("#page")?.dataset.ready === "alerts");
  assert.equal(authorization.issued.length, 1, "one token issued, for the verifier the page kept");
  assert.match(await page.locator("#who").innerText(), /operator@example.com · operator/);
  assert.ok(!page.url().includes("code="), "the code is not left in the address");
  await page.goto(`${base}/#/fleet`);
  await page.waitForFunction(() => document.querySelector("#page")?.dataset.ready === "fleet");
  assert.ok(await page.locator("[data-testid=devices] tbody tr").count() > 0);
  // A code this tab did not ask for (a forged or replayed redirect) is refused, and said so.
  const forged = await context.newPage();
  await forged.goto(`${base}/?code=forged&state=x#/fleet`);
  await forged.waitForFunction(() => document.querySelector("#page")?.dataset.ready === "signed-out");
  assert.match(await forged.locator("#error").innerText(), /another request/);
  assert.equal(authorization.issued.length, 1);
  await context.close();
});
