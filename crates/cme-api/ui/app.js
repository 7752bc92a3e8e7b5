// The cme dashboard: plain JavaScript over the HAL API, same origin. Everything shown is
// put in the page as text (never as HTML): plan names, logs and plugin output come from
// people and plugins the operator may not trust.
"use strict";

const TOKEN_KEY = "cme-token";
const STATUSES = ["pending", "running", "succeeded", "failed", "missed", "cancelled", "paused", "skipped"];
const view = () => document.getElementById("view");

// ---- the API -------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/hal+json, application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit" });
  const text = await response.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (_) { doc = null; }
  if (!response.ok) {
    const detail = (doc && (doc.detail || doc.msg)) || response.status + " " + response.statusText;
    throw new ApiError(response.status, detail);
  }
  return doc;
}

// ---- building the page ---------------------------------------------------------------

// h("a", {href: "#/x", class: "y"}, "text", child, ...): children are text or nodes.
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (key === "style") Object.assign(node.style, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children.flat(Infinity)) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function show(...nodes) {
  view().replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

function banner(message) {
  const node = document.getElementById("banner");
  node.textContent = message || "";
  node.hidden = !message;
}

function when(text) {
  if (!text) return "—";
  const date = new Date(text);
  return isNaN(date) ? text : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function badge(status) {
  return h("span", { class: "badge status-" + status, "data-status": status }, status);
}

function table(headings, rows, attrs) {
  return h("table", attrs || {}, h("thead", {}, h("tr", {}, headings.map((t) => h("th", {}, t)))), h("tbody", {}, rows));
}

function json(value) {
  return h("pre", { class: "mono" }, JSON.stringify(value, null, 2));
}

// ---- the halt switch (always in the header) -----------------------------------------

// Whether the controls shown are for a halted engine (null: none shown yet). They are
// rebuilt only when that changes (or when asked), never under an operator typing a reason.
let controlsHalted = null;

async function refreshSwitch(rebuild) {
  const state = document.getElementById("halt-state");
  const controls = document.getElementById("switch-controls");
  let halt;
  try {
    halt = await api("GET", "/api/1/halt");
  } catch (error) {
    state.textContent = "unknown";
    state.className = "badge";
    controls.replaceChildren();
    controlsHalted = null;
    return;
  }
  state.textContent = halt.halted ? "halted" : "armed";
  state.className = "badge " + (halt.halted ? "halted" : "running-engine");
  state.title = halt.halted ? "since " + when(halt.since) + (halt.reason ? ": " + halt.reason : "") : "attacks fire on schedule";
  if (rebuild || controlsHalted !== halt.halted) {
    controls.replaceChildren(halt.halted ? resumeControl() : haltControl());
    controlsHalted = halt.halted;
  }
}

// Two steps each: the button asks, a second button confirms.
function haltControl() {
  const reason = h("input", { id: "halt-reason", placeholder: "reason (shown to everyone)", size: 24 });
  const ask = h("button", { id: "halt", class: "danger", onclick: () => ask.replaceWith(confirmStep("halt", "Halt: cancel running attacks and fire nothing?", async () => {
    await api("POST", "/api/1/halt", { reason: reason.value || null });
  })) }, "Halt");
  return h("span", {}, reason, " ", ask);
}

function resumeControl() {
  const ask = h("button", { id: "resume", class: "go", onclick: () => ask.replaceWith(confirmStep("resume", "Resume: let plans fire again?", async () => {
    await api("POST", "/api/1/resume");
  })) }, "Resume");
  return ask;
}

function confirmStep(name, question, act) {
  return h("span", { class: "confirm", id: name + "-confirmation" }, question, " ",
    h("button", { id: name + "-confirm", class: name === "halt" ? "danger" : "go", onclick: async () => {
      try {
        await act();
        banner("");
      } catch (error) {
        banner(error.message);
      }
      await refreshSwitch(true);
      route();
    } }, "Confirm"),
    h("button", { id: name + "-cancel", onclick: () => refreshSwitch(true) }, "Cancel"));
}

// ---- views ---------------------------------------------------------------------------

async function plansView() {
  const doc = await api("GET", "/api/1/plans/?all=true&size=200");
  const rows = doc.plans.map((p) => h("tr", { "data-plan": p.id },
    h("td", {}, h("a", { href: "#/plans/" + encodeURIComponent(p.id) }, p.name)),
    h("td", { class: "mono" }, p.planner.ref),
    h("td", { class: "mono" }, p.attack.ref),
    h("td", {}, when(p.next_execution)),
    h("td", {}, String(p.executors_count)),
    h("td", {}, p.paused && h("span", { class: "tag" }, "paused"), p.dry_run && h("span", { class: "tag" }, "dry run"),
      p.recurring && h("span", { class: "tag" }, "recurring"), p.executed && h("span", { class: "tag" }, "done"))));
  show(h("h1", {}, "Plans"),
    rows.length ? table(["Name", "Planner", "Attack", "Next firing", "Executors", ""], rows, { class: "plans" })
      : h("p", { class: "muted" }, "No plans yet: POST one to /api/1/plans/ or run `cme plans create`."),
    doc._links.next ? h("p", { class: "muted" }, "Showing the first 200 plans.") : null);
}

async function planView(id) {
  const plan = await api("GET", "/api/1/plans/" + encodeURIComponent(id));
  const facts = [
    ["Id", plan.id], ["Created", when(plan.created)], ["Planner", plan.planner.ref + " (" + plan.planner.plugin + ")"],
    ["Attack", plan.attack.ref + " (" + plan.attack.plugin + ")"], ["Next firing", when(plan.next_execution)],
    ["Time zone", plan.timezone || "engine's"], ["Paused", plan.paused ? "since " + when(plan.paused_since) : "no"],
    ["Dry run", plan.dry_run ? "yes" : "no"], ["Recurring", plan.recurring ? "planned until " + when(plan.planned_until) : "no"],
    ["Misfire / overlap", plan.misfire + " / " + plan.overlap],
    ["Steady state", (plan.steady_state || []).map((p) => p.ref).join(", ") || "none (no probe guards its runs)"],
    ["Stop conditions", (plan.stop_conditions || []).map((c) => `${c.ref} every ${c.interval_seconds} s, then ${c.on_failure}`).join("; ") || "none"],
  ];
  const parts = [
    h("h1", {}, plan.name),
    h("dl", {}, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("p", {}, h("a", { href: "#/executors?plan_id=" + encodeURIComponent(plan.id) }, "All executors of this plan on the timeline")),
    h("h2", {}, "Attack args"), json(plan.attack.args),
    h("h2", {}, "Planner args"), json(plan.planner.args),
  ];
  if (plan.recurring) {
    const forecast = await api("GET", "/api/1/plans/" + encodeURIComponent(id) + "/forecast");
    parts.push(h("h2", {}, "Forecast: the coming week"), forecastTable(forecast));
  }
  show(...parts);
}

function forecastTable(forecast) {
  const notes = forecast.notes.map((n) => h("p", { class: "muted" }, n));
  const rows = forecast.firings.map((f) => h("tr", {},
    h("td", {}, when(f.due)), h("td", {}, badge(f.status)), h("td", {}, f.reason || ""),
    h("td", {}, f.executor_id ? h("a", { href: "#/executors/" + encodeURIComponent(f.executor_id) }, f.executor_id) : "not stored yet")));
  return h("div", { class: "forecast" }, notes,
    rows.length ? table(["Due", "Will be", "Why", "Executor"], rows) : h("p", { class: "muted" }, "No firings in this span."),
    forecast.truncated ? h("p", { class: "muted" }, "Only the first firings are shown.") : null);
}

async function executorsView(query) {
  const planId = query.get("plan_id") || "";
  const status = query.get("status") || "";
  const params = new URLSearchParams({ executed: "all", size: "300" });
  if (planId) params.set("plan_id", planId);
  if (status) params.set("status", status);
  const [doc, plans] = await Promise.all([api("GET", "/api/1/executors/?" + params), api("GET", "/api/1/plans/?all=true&size=200")]);
  const executors = (doc._embedded && doc._embedded.executors) || [];
  const names = Object.fromEntries(plans.plans.map((p) => [p.id, p.name]));
  const filters = h("form", { class: "filters", id: "filters", onsubmit: (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const next = new URLSearchParams();
    for (const key of ["plan_id", "status"]) if (form.get(key)) next.set(key, form.get(key));
    location.hash = "#/executors" + (next.toString() ? "?" + next : "");
  } },
    h("label", {}, "Plan", h("select", { name: "plan_id", id: "filter-plan" }, h("option", { value: "" }, "every plan"),
      plans.plans.map((p) => h("option", { value: p.id, selected: p.id === planId }, p.name)))),
    h("label", {}, "Status", h("select", { name: "status", id: "filter-status" }, h("option", { value: "" }, "every status"),
      STATUSES.map((s) => h("option", { value: s, selected: s === status }, s)))),
    h("button", { type: "submit" }, "Filter"));
  const rows = executors.map((e) => h("tr", { "data-executor": e.id },
    h("td", {}, when(e.next_run_time)), h("td", {}, badge(e.status)),
    h("td", {}, h("a", { href: "#/plans/" + encodeURIComponent(e.plan_id) }, names[e.plan_id] || e.plan_id)),
    h("td", {}, h("a", { href: "#/executors/" + encodeURIComponent(e.id), class: "executor-link" }, e.id)),
    h("td", {}, e.dry_run ? h("span", { class: "tag" }, "dry run") : null, e.error || e.reason || (e.result && e.result.summary) || "")));
  show(h("h1", {}, "Executors"), filters, timeline(executors),
    rows.length ? table(["Due", "Status", "Plan", "Executor", "Outcome"], rows, { class: "executors" })
      : h("p", { class: "muted" }, "No executors match."));
}

// Past and upcoming executors on one time axis, one dot each, coloured by status.
function timeline(executors) {
  const width = 1000, height = 110, left = 20, right = 20;
  const now = Date.now();
  const times = executors.map((e) => Date.parse(e.next_run_time)).filter((t) => !isNaN(t));
  const from = Math.min(now, ...times) - 60000, until = Math.max(now, ...times) + 60000;
  const x = (t) => left + ((t - from) / (until - from)) * (width - left - right);
  const chart = svg("svg", { class: "timeline", id: "timeline", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" },
    svg("line", { x1: left, x2: width - right, y1: 60, y2: 60, stroke: "#dde2e7" }),
    svg("line", { x1: x(now), x2: x(now), y1: 15, y2: 95, stroke: "#1f5fa8", "stroke-dasharray": "3 3" }),
    svg("text", { x: x(now) + 4, y: 24 }, "now"),
    svg("text", { x: left, y: 105 }, new Date(from).toLocaleString()),
    svg("text", { x: width - right, y: 105, "text-anchor": "end" }, new Date(until).toLocaleString()));
  executors.forEach((e, i) => {
    const t = Date.parse(e.next_run_time);
    if (isNaN(t)) return;
    const dot = svg("circle", { cx: x(t), cy: 60 + ((i % 5) - 2) * 7, r: 5, class: "dot status-" + e.status, "data-status": e.status },
      svg("title", {}, `${e.status} · ${new Date(t).toLocaleString()} · ${e.id}`));
    dot.addEventListener("click", () => { location.hash = "#/executors/" + encodeURIComponent(e.id); });
    chart.append(dot);
  });
  const legend = h("p", { class: "legend" }, STATUSES.map((s) => h("span", {}, h("i", { class: "status-" + s }), s)));
  return h("div", {}, chart, legend);
}

// A run's journal as a timeline: one row per lane (a chain of `after`), a bar per step
// from its start to its end (attacks red, verifies blue, waits grey), a tick where each
// revert ran, and the probe readings as a small chart below (healthy up, unhealthy down).
function runTimeline(journal) {
  const steps = (journal.steps || []).filter((s) => s.started);
  const readings = journal.readings || [];
  const reverts = journal.reverts || [];
  const times = [...steps.flatMap((s) => [s.started, s.ended]), ...readings.map((r) => r.at), ...reverts.map((r) => r.at)]
    .map((t) => Date.parse(t)).filter((t) => !isNaN(t));
  if (!steps.length || !times.length) return h("p", { class: "muted" }, "No step has started yet.");
  const from = Math.min(...times), until = Math.max(...times, Date.now() * (journal.live ? 1 : 0), from + 1000);
  // Lanes: a step continues the row of a step it comes after when that step ends the row.
  const rows = [], rowOf = {};
  [...steps].sort((a, b) => Date.parse(a.started) - Date.parse(b.started)).forEach((step) => {
    const before = (step.after || []).find((name) => rowOf[name] !== undefined && rows[rowOf[name]] === name);
    const at = before !== undefined ? rowOf[before] : rows.length;
    rows[at] = step.name;
    rowOf[step.name] = at;
  });
  const width = 1000, left = 150, right = 20, rowHeight = 26, top = 10, chart = 46;
  const height = top + rows.length * rowHeight + chart + 24;
  const x = (t) => left + ((Date.parse(t) - from) / (until - from)) * (width - left - right);
  const y = (name) => top + rowOf[name] * rowHeight;
  const node = svg("svg", { class: "run-timeline", id: "run-timeline", viewBox: `0 0 ${width} ${height}` });
  steps.forEach((step) => {
    const end = step.ended || new Date(until).toISOString();
    const width_ = Math.max(2, x(end) - x(step.started));
    const bar = svg("rect", { x: x(step.started), y: y(step.name) + 4, width: width_, height: rowHeight - 8,
      rx: 3, class: `bar kind-${step.kind} step-${step.status}`, "data-step": step.name, "data-status": step.status },
      svg("title", {}, `${step.name} (${step.kind}) ${step.status}${step.error ? ": " + step.error : ""}`));
    node.append(bar);
    // The step's name in its bar when it fits (a verify is an instant: its reading is named below).
    if (width_ >= step.name.length * 6.5 + 8) {
      node.append(svg("text", { x: x(step.started) + 4, y: y(step.name) + rowHeight / 2 + 4, class: "in-bar" }, step.name));
    }
  });
  rows.forEach((_, i) => node.append(svg("text", { x: 4, y: top + i * rowHeight + rowHeight / 2 + 4, class: "lane" }, `lane ${i + 1}`)));
  reverts.forEach((revert) => {
    const row = revert.step !== undefined && rowOf[revert.step] !== undefined ? y(revert.step) : top;
    node.append(svg("path", { d: `M ${x(revert.at)} ${row + 2} l 5 -0 l -5 ${rowHeight - 4} l -5 -${rowHeight - 4} z`,
      class: "revert revert-" + revert.state, "data-state": revert.state },
      svg("title", {}, `revert ${revert.state}: ${revert.target}${revert.outcome ? " (" + revert.outcome + ")" : ""}`)));
  });
  const base = top + rows.length * rowHeight + 8;
  node.append(svg("line", { x1: left, x2: width - right, y1: base + chart / 2, y2: base + chart / 2, class: "axis" }),
    svg("text", { x: 4, y: base + chart / 2 + 4, class: "lane" }, "probe readings"));
  readings.forEach((reading) => {
    node.append(svg("circle", { cx: x(reading.at), cy: base + (reading.healthy ? 8 : chart - 8), r: 5,
      class: "reading " + (reading.healthy ? "healthy" : "unhealthy"), "data-phase": reading.phase },
      svg("title", {}, `${reading.probe} ${reading.healthy ? "healthy" : "unhealthy"} (${reading.phase})${reading.reason ? ": " + reading.reason : ""}`)),
      svg("text", { x: x(reading.at) + 8, y: base + (reading.healthy ? 12 : chart - 4) }, `${reading.step || "steady state"} · ${reading.phase}`));
  });
  node.append(svg("text", { x: left, y: height - 4 }, new Date(from).toLocaleTimeString()),
    svg("text", { x: width - right, y: height - 4, "text-anchor": "end" }, new Date(until).toLocaleTimeString()));
  const legend = h("p", { class: "legend" }, h("span", {}, h("i", { class: "kind-attack" }), "fault held"),
    h("span", {}, h("i", { class: "kind-verify" }), "verify"), h("span", {}, h("i", { class: "kind-wait" }), "wait"),
    h("span", {}, "▼ revert"), journal.outcome ? h("span", {}, "outcome: ", badge(journal.outcome)) : null,
    journal.aborted ? h("span", { class: "error" }, "aborted: " + journal.aborted) : null);
  return h("div", {}, node, legend);
}

async function executorView(id) {
  const e = await api("GET", "/api/1/executors/" + encodeURIComponent(id));
  let journal = null;
  try { journal = await api("GET", "/api/1/executors/" + encodeURIComponent(id) + "/journal"); } catch (_) { journal = null; }
  const facts = [
    ["Status", badge(e.status)], ["Plan", h("a", { href: "#/plans/" + encodeURIComponent(e.plan_id) }, e.plan_id)],
    ["Due", when(e.next_run_time)], ["Started", when(e.started_at)], ["Finished", when(e.finished_at)],
    ["Plugin", e.plugin || "—"], ["Dry run", e.dry_run === null ? "—" : e.dry_run ? "yes" : "no"], ["Attempts", String(e.attempts)],
  ];
  if (e.outcome) facts.push(["Outcome", badge(e.outcome)]);
  if (e.error) facts.push(["Error", e.error]);
  if (e.reason) facts.push(["Reason", e.reason]);
  const log = e.log || {};
  const lines = (log.lines || []).map((l) => (typeof l === "string" ? l : `${l.level || ""} ${l.message || JSON.stringify(l)}`)).join("\n");
  show(h("h1", {}, "Executor ", h("span", { class: "mono" }, e.id)),
    h("dl", { id: "executor-facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    journal ? [h("h2", {}, "Run"), runTimeline(journal)] : null,
    h("h2", {}, "Result"), e.result ? json(e.result) : h("p", { class: "muted" }, "No result."),
    h("h2", {}, "Log"), h("pre", { id: "log", class: "mono" }, lines || "(no log lines)"),
    log.stdout ? [h("h2", {}, "stdout"), h("pre", { class: "mono" }, log.stdout)] : null,
    log.stderr ? [h("h2", {}, "stderr"), h("pre", { class: "mono" }, log.stderr)] : null,
    log.dry_run_actions && log.dry_run_actions.length ? [h("h2", {}, "What a real run would have done"), json(log.dry_run_actions)] : null);
}

// Every item of a list paged by cursor, following `_links.next` to the end.
async function allPages(path, key) {
  let items = [];
  for (let next = path; next;) {
    const doc = await api("GET", next);
    items = items.concat(doc[key] || []);
    next = doc._links && doc._links.next ? doc._links.next.href : null;
  }
  return items;
}

// ---- the calendar: a week of every plan's firings and the blackouts over them -----------

// The wall-clock parts of an instant in a zone.
function wallParts(ms, zone) {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", weekday: "short" }).formatToParts(new Date(ms));
  const get = (type) => parts.find((p) => p.type === type).value;
  return { y: +get("year"), m: +get("month"), d: +get("day"), h: +get("hour"), min: +get("minute"), s: +get("second"),
    weekday: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].indexOf(get("weekday")) };
}

// The instant a wall time of a zone names (a skipped wall time: just after the change).
function instantOf(y, m, d, zone) {
  const guess = Date.UTC(y, m - 1, d);
  let at = guess;
  for (let i = 0; i < 2; i++) {
    const w = wallParts(at, zone);
    at -= Date.UTC(w.y, w.m - 1, w.d, w.h, w.min, w.s) - guess;
  }
  return at;
}

function dayKey(p) { return `${p.y}-${String(p.m).padStart(2, "0")}-${String(p.d).padStart(2, "0")}`; }

async function calendarView(query) {
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  let zone = query.get("zone") || browserZone;
  try { new Intl.DateTimeFormat("en-US", { timeZone: zone }); } catch (_) { banner("Unknown time zone " + zone + "; showing " + browserZone); zone = browserZone; }
  // The Monday of the asked week (default: this week), in the zone.
  const asked = (query.get("week") || "").match(/^(\d{4})-(\d{2})-(\d{2})$/);
  const today = wallParts(Date.now(), zone);
  let [y, m, d] = asked ? [+asked[1], +asked[2], +asked[3]] : [today.y, today.m, today.d];
  const noon = Date.UTC(y, m - 1, d, 12);
  const back = (new Date(noon).getUTCDay() + 6) % 7;
  const monday = new Date(noon - back * 86400000);
  const days = [...Array(7).keys()].map((i) => new Date(monday.getTime() + i * 86400000));
  const starts = days.map((day) => instantOf(day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate(), zone));
  const after = new Date(monday.getTime() + 7 * 86400000);
  const end = instantOf(after.getUTCFullYear(), after.getUTCMonth() + 1, after.getUTCDate(), zone);
  const params = new URLSearchParams({ from: new Date(starts[0]).toISOString(), until: new Date(end).toISOString() });
  const [schedule, calendars] = await Promise.all([api("GET", "/api/1/schedule?" + params), api("GET", "/api/1/calendars/")]);
  const weekOf = (date) => `${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, "0")}-${String(date.getUTCDate()).padStart(2, "0")}`;
  const go = (week, z) => { location.hash = "#/calendar?" + new URLSearchParams({ zone: z, week }); };
  const controls = h("form", { class: "filters", id: "calendar-controls", onsubmit: (event) => {
    event.preventDefault();
    go(weekOf(monday), new FormData(event.target).get("zone") || browserZone);
  } },
    h("button", { type: "button", id: "week-before", onclick: () => go(weekOf(new Date(monday.getTime() - 7 * 86400000)), zone) }, "‹ Week before"),
    h("button", { type: "button", id: "week-after", onclick: () => go(weekOf(after), zone) }, "Week after ›"),
    h("label", {}, "Time zone", h("input", { name: "zone", id: "calendar-zone", value: zone, list: "zones", size: 24 })),
    h("datalist", { id: "zones" }, [browserZone, "UTC", "Europe/Madrid", "Europe/London", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"]
      .map((z) => h("option", { value: z }))),
    h("button", { type: "submit" }, "Show"));

  // One column a day; a block per (hour, plan, status) with how many firings it holds, and
  // each blackout occurrence as a band over the hours it covers.
  const dayOf = (ms) => { for (let i = 6; i >= 0; i--) if (ms >= starts[i]) return i; return -1; };
  const top = (ms, i) => Math.max(0, Math.min(100, ((ms - starts[i]) / ((i < 6 ? starts[i + 1] : end) - starts[i])) * 100));
  const columns = days.map((day, i) => h("div", { class: "day", "data-day": weekOf(day) },
    h("div", { class: "day-head" }, day.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" })),
    h("div", { class: "day-body" })));
  for (const b of schedule.blackouts) {
    const s = Date.parse(b.start), e = Date.parse(b.end);
    for (let i = 0; i < 7; i++) {
      const dayEnd = i < 6 ? starts[i + 1] : end;
      if (s >= dayEnd || e <= starts[i]) continue;
      const from = top(Math.max(s, starts[i]), i), to = top(Math.min(e, dayEnd), i);
      columns[i].lastChild.append(h("div", { class: "blackout", style: { top: from + "%", height: Math.max(to - from, 0.8) + "%" },
        title: `${b.name}: ${new Date(s).toLocaleString(undefined, { timeZone: zone })} – ${new Date(e).toLocaleString(undefined, { timeZone: zone })}` },
        h("span", {}, b.name)));
    }
  }
  const groups = new Map();
  for (const f of schedule.firings) {
    const t = Date.parse(f.due), i = dayOf(t);
    if (i < 0) continue;
    const w = wallParts(t, zone);
    const key = [i, w.h, f.plan_id, f.status, f.reason || ""].join("|");
    if (!groups.has(key)) groups.set(key, { i, hour: w.h, first: t, firing: f, count: 0 });
    groups.get(key).count += 1;
  }
  for (const g of groups.values()) {
    const f = g.firing;
    const label = `${new Date(g.first).toLocaleTimeString(undefined, { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" })} ${f.plan}` + (g.count > 1 ? ` ×${g.count}` : "");
    columns[g.i].lastChild.append(h("a", { class: "firing status-" + f.status + (f.status === "skipped" ? " skipped" : ""),
      href: "#/plans/" + encodeURIComponent(f.plan_id), style: { top: top(g.first, g.i) + "%" }, "data-status": f.status,
      title: `${f.plan} · ${f.status}${f.reason ? " · " + f.reason : ""}` },
      label, f.status === "skipped" && f.reason ? h("em", {}, " — " + f.reason) : null));
  }
  const hours = h("div", { class: "hours" }, h("div", { class: "day-head" }), h("div", { class: "day-body" },
    [...Array(24).keys()].map((hr) => h("span", { style: { top: (hr / 24) * 100 + "%" } }, String(hr).padStart(2, "0") + ":00"))));
  const skipped = schedule.firings.filter((f) => f.status === "skipped").length;
  const calendarRows = calendars.calendars.map((c) => h("tr", { "data-calendar": c.name },
    h("td", {}, c.name), h("td", {}, c.kind), h("td", { class: "mono" }, c.url || "—"), h("td", {}, String(c.blackouts)),
    h("td", {}, c.kind === "subscription" ? when(c.last_fetched) : "uploaded " + when(c.created)),
    h("td", {}, c.last_error ? h("span", { class: "error" }, c.last_error) : (c.kind === "subscription" ? "ok" : ""))));
  show(h("h1", {}, "Calendar"), controls,
    h("p", { class: "muted", id: "calendar-summary" }, `${schedule.firings.length} firings, ${skipped} skipped, ${schedule.blackouts.length} blackout spans, week of ${weekOf(monday)} in ${zone}`),
    schedule.notes.map((n) => h("p", { class: "muted" }, n)),
    h("div", { class: "week", id: "week" }, hours, columns),
    h("h2", {}, "Calendars"),
    calendarRows.length ? table(["Name", "Kind", "URL", "Blackouts", "Fetched", "State"], calendarRows, { class: "calendars" })
      : h("p", { class: "muted" }, "No calendars: POST an .ics to /api/1/calendars/?name=holidays, or subscribe to one."));
}

async function pluginsView() {
  const plugins = await allPages("/api/1/plugins/?size=1000", "plugins");
  const rows = plugins.map((p) => h("tr", { "data-plugin": p.id },
    h("td", { class: "mono" }, p.id), h("td", {}, p.kind), h("td", {}, badge(p.status)),
    h("td", {}, p.builtin ? "built in" : "uploaded" + (p.uploaded_by ? " by " + p.uploaded_by : "")),
    h("td", { class: "mono" }, (p.capabilities || []).map(capability).join("; ")),
    h("td", {}, p.granted ? h("pre", { class: "mono" }, JSON.stringify(p.granted, null, 1)) : h("span", { class: "muted" }, "nothing"))));
  show(h("h1", {}, "Plugins"), table(["Id", "Kind", "Status", "Origin", "Declared capabilities", "Granted"], rows, { class: "plugins" }));
}

// A declared capability: its kind, then what it names ({"kind": "http", "urls": ["*"]} -> "http *").
function capability(c) {
  if (typeof c !== "object" || c === null) return String(c);
  const rest = Object.entries(c).filter(([k]) => k !== "kind").map(([, v]) => (Array.isArray(v) ? v.join(" ") : JSON.stringify(v)));
  return [c.kind, ...rest].join(" ");
}

async function auditView() {
  const doc = await api("GET", "/api/1/audit/?size=200");
  const entries = (doc._embedded && doc._embedded.audit) || [];
  const rows = entries.map((a) => h("tr", {},
    h("td", {}, when(a.at)), h("td", {}, a.source), h("td", {}, a.actor), h("td", { class: "mono" }, a.action),
    h("td", { class: "mono" }, a.target), h("td", {}, a.decision + (a.dry_run ? " (dry run)" : "")), h("td", {}, a.reason || a.outcome || "")));
  show(h("h1", {}, "Audit log"), table(["At", "Source", "Actor", "Action", "Target", "Decision", "Reason / outcome"], rows, { class: "audit" }));
}

function loginView(message) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", placeholder: "API token" });
  show(h("form", { class: "login", id: "login", onsubmit: (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    banner("");
    start();
  } }, h("h1", {}, "Sign in"), h("p", { class: "muted" }, message), input,
    h("p", { class: "muted" }, "The token is kept in this tab's session storage only."), h("button", { type: "submit", class: "go" }, "Use token")));
}

// ---- routing -------------------------------------------------------------------------

// Views render one at a time, in the order they were asked for, and a view asked for
// while another renders is skipped when a newer one follows it: a slow page (the
// calendar's forecasts) can never paint over the page the operator went to next.
let routeSeq = 0;
let routing = Promise.resolve();

function route() {
  const seq = ++routeSeq;
  routing = routing.then(() => (seq === routeSeq ? renderRoute() : undefined)).catch((error) => banner(String(error)));
  return routing;
}

async function renderRoute() {
  const [path, search] = (location.hash.replace(/^#/, "") || "/plans").split("?");
  const query = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === parts[0]);
  try {
    if (parts[0] === "plans" && parts[1]) await planView(parts[1]);
    else if (parts[0] === "executors" && parts[1]) await executorView(parts[1]);
    else if (parts[0] === "executors") await executorsView(query);
    else if (parts[0] === "calendar") await calendarView(query);
    else if (parts[0] === "plugins") await pluginsView();
    else if (parts[0] === "audit") await auditView();
    else await plansView();
  } catch (error) {
    if (error.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      loginView("This engine needs an API token.");
    } else {
      show(h("p", { class: "muted" }, "Cannot show this page."));
      banner(error.message);
    }
  }
}

function start() {
  document.getElementById("sign-out").hidden = !sessionStorage.getItem(TOKEN_KEY);
  refreshSwitch();
  route();
}

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  start();
});
window.addEventListener("hashchange", () => { banner(""); route(); });
start();
// The switch can be flipped elsewhere (the CLI, another replica): keep the badge honest.
setInterval(() => { if (!document.hidden) refreshSwitch(); }, 15000);
