// Journey marketer dashboard. Plain ES modules, no build step, no third-party code.
//
// The page holds no data: it reads a marketer key from the URL fragment (#key=…, which
// browsers never send to servers) or a small form, keeps it in sessionStorage (this tab only)
// and calls the service with it as X-API-Key. The first view comes from one pre-aggregated
// call (dashboard/data); the segment table re-queries `segments` (an aggregation of a
// pre-computed cube) when the cut or the filters change; the drill-down pages through
// `segments/customers`; the customer export downloads `segments/export`, while the segment
// table's export is written here from the answer on screen (it holds every segment already:
// no second query, and the file follows the table's own sort).
//
// URLs are relative without a leading slash: the page is served at /v1/dashboard behind
// BentoML and at /dashboard when the FastAPI app runs on its own.

import { fmt } from "./format.js";
import * as charts from "./charts.js";
import { loadPersonaPanels } from "./personas.js";
import { loadDriftPanel } from "./drift.js";
import { loadBacktestPanel } from "./backtest.js";
import { loadTriggerPanel } from "./triggers.js";
import { csvText, fileSafe, saveFile } from "./csv.js";

const BASE = new URL(location.pathname.replace(/\/dashboard\/?$/, "/"), location.origin);
const KEY_STORE = "journey.apiKey";
const ROW_CAP = 300; // segment rows drawn at most (the rest: filter or cut by fewer dimensions)
const PAGE = 50; // drill-down customers per page
const TIER_ORDER = ["low", "medium", "high"];
const DEFAULT_BY = ["tier", "stage"];
// A customer's segment stage is the stage of their latest activity; the funnel counts the
// furthest stage each reached. Same word, two numbers: the segment side says "current".
const DIM_LABELS = { stage: "Current stage" };
const STAGE_NOTE = "Stage of the latest activity; the funnel counts the furthest stage reached";

const $ = (sel) => document.querySelector(sel);

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const state = {
  key: null,
  data: null,
  stages: [],
  dims: {}, // dimension -> its values in this snapshot
  by: [...DEFAULT_BY],
  filters: {}, // dimension -> selected values (absent: all)
  seg: null, // the last SegmentsOut shown
  sort: { col: null, dir: -1 }, // null: the service's order (revenue at risk, largest first)
  attrBy: "channel",
  drill: null,
  seq: 0,
  drillSeq: 0,
  started: performance.now(),
  ready: false,
};

// -- key -----------------------------------------------------------------------------------

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the key lives in memory for this page only
  }
}

/** The key from the URL fragment (then removed from the address bar) or this tab's storage. */
function readKey() {
  // Parsed by hand: URLSearchParams would turn a "+" of the key into a space.
  const hash = location.hash.replace(/^#/, "");
  const parts = hash.split("&").filter(Boolean);
  const at = parts.findIndex((p) => p.startsWith("key="));
  if (at >= 0) {
    let key = parts[at].slice(4);
    try {
      key = decodeURIComponent(key);
    } catch {
      // keep it as it is
    }
    key = key.trim();
    parts.splice(at, 1);
    history.replaceState(null, "", location.pathname + location.search + (parts.length ? `#${parts.join("&")}` : ""));
    if (key) {
      storage()?.setItem(KEY_STORE, key);
      return key;
    }
  }
  return storage()?.getItem(KEY_STORE) || state.key;
}

function forgetKey() {
  storage()?.removeItem(KEY_STORE);
  state.key = null;
}

function showKeyForm(message) {
  setState("key");
  $("#content").hidden = true;
  $("#message").hidden = true;
  $("#sign-out").hidden = true;
  $("#snapshot-meta").textContent = "";
  const form = $("#key-form");
  form.hidden = false;
  const err = $("#key-error");
  err.hidden = !message;
  err.textContent = message || "";
  const input = $("#key-input");
  input.value = "";
  input.focus();
}

// -- API -----------------------------------------------------------------------------------

async function api(path, params = []) {
  const url = new URL(path, BASE);
  for (const [k, v] of params) url.searchParams.append(k, v);
  let response;
  try {
    response = await fetch(url, {
      headers: { "X-API-Key": state.key || "", Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    throw new ApiError(0, "network", `The service cannot be reached (${err.message}).`, null);
  }
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    throw new ApiError(response.status, body?.code || `http_${response.status}`,
      body?.message || response.statusText || `HTTP ${response.status}`, body?.field ?? null);
  }
  return response;
}

function filterParams(filters) {
  const out = [];
  for (const [dim, values] of Object.entries(filters)) {
    if (values && values.length) out.push([dim, values.join(",")]);
  }
  return out;
}

/** Errors every call shares: a key problem shows the key form, no snapshot says what to run,
 * a service still starting is retried. Returns true when handled. */
function handleCommonError(err) {
  if (!(err instanceof ApiError)) return false;
  if (err.status === 401 || err.status === 403) {
    forgetKey();
    const hint = err.status === 403 ? " The dashboard needs a marketer or admin key." : "";
    showKeyForm(`The service refused this key: ${err.message}.${hint}`);
    return true;
  }
  if (err.status === 404 && err.code === "no_snapshot") {
    showMessage("no-snapshot", "No scores yet",
      "The service has no score snapshot to show. Score every customer first — run `journey score` "
      + "(with the service stopped), or have an admin call `POST /v1/admin/score` — then reload this page.",
      err.message);
    return true;
  }
  if (err.status === 503) {
    showMessage("starting", "The service is starting", "Models and histories are still loading; "
      + "this page retries in a few seconds.", err.message);
    setTimeout(load, 3000);
    return true;
  }
  return false;
}

function showMessage(kind, heading, text, detail) {
  setState(kind === "no-snapshot" ? "no-snapshot" : "error");
  const box = $("#message");
  box.dataset.code = kind;
  const h = document.createElement("strong");
  h.textContent = heading;
  const p = document.createElement("p");
  // `code` spans for back-quoted commands
  String(text).split("`").forEach((part, i) => {
    if (i % 2) {
      const c = document.createElement("code");
      c.textContent = part;
      p.append(c);
    } else {
      p.append(part);
    }
  });
  box.replaceChildren(h, p);
  if (detail) {
    const d = document.createElement("p");
    d.className = "detail";
    d.textContent = `The service said: ${detail}`;
    box.append(d);
  }
  box.hidden = false;
  $("#content").hidden = true;
  $("#key-form").hidden = true;
}

function setState(s) {
  document.body.dataset.state = s;
}

// -- loading -------------------------------------------------------------------------------

async function load() {
  state.key = readKey();
  if (!state.key) {
    showKeyForm();
    return;
  }
  setState("loading");
  $("#key-form").hidden = true;
  $("#message").hidden = true;
  state.ready = false;
  state.started = performance.now();
  // The first view: one pre-aggregated call; the table's query runs alongside it.
  const dataCall = api("dashboard/data").then((r) => r.json());
  const segCall = api("segments", segmentParams()).then((r) => r.json());
  segCall.catch(() => {}); // reported through dataCall (same key, same snapshot)
  let data;
  try {
    data = await dataCall;
  } catch (err) {
    if (!handleCommonError(err)) {
      showMessage("error", "The dashboard could not load", err.message);
    }
    return;
  }
  renderOverview(data);
  $("#content").hidden = false;
  $("#sign-out").hidden = false;
  redrawCharts(); // sized now that the content is visible
  try {
    const seg = await segCall;
    showSegments(seg, segmentParams());
  } catch (err) {
    if (!handleCommonError(err)) segmentError(err);
  }
  setState("ready");
  state.ready = true;
  const ms = performance.now() - state.started;
  performance.mark("journey:ready");
  window.journeyRenderMs = ms;
  $("#foot-render").textContent = `Loaded in ${fmt.num(ms / 1000, 2)} s`;
  loadTriggerPanel(api); // after the first view: not part of its load time
  loadPersonaPanels(api);
  loadDriftPanel(api);
  loadBacktestPanel(api);
}

// -- overview ------------------------------------------------------------------------------

function renderOverview(data) {
  state.data = data;
  state.dims = data.dimensions || {};
  const jm = data.journey_map;
  const funnelStages = jm && Array.isArray(jm.funnel) ? jm.funnel.map((r) => r.stage) : [];
  state.stages = funnelStages.length ? funnelStages : (state.dims.stage || []);
  // Keep only cuts and filters this snapshot knows (a reload may bring other dimensions).
  state.by = state.by.filter((d) => d in state.dims);
  for (const d of Object.keys(state.filters)) {
    if (!(d in state.dims)) delete state.filters[d];
  }
  renderSnapshotMeta(data.snapshot);
  renderKpis(data);
  renderJourneyMeta(jm);
  renderTiersMeta(data.snapshot);
  buildControls();
  const models = Object.entries(data.snapshot.models || {}).map(([k, v]) => `${k} v${v}`).join(" · ");
  $("#foot-models").textContent = models ? `Models: ${models}` : "";
}

function snapshotTime(id) {
  // Snapshot ids are their scoring time: 20251115T120301123456Z
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})/.exec(id || "");
  return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]} UTC` : id;
}

function renderSnapshotMeta(snap) {
  $("#page-title").textContent = `Marketer dashboard: scores as of ${fmt.date(snap.as_of)}`;
  const parts = [`Scores as of <b>${esc(fmt.date(snap.as_of))}</b>`, `scored ${esc(fmt.dateTime(snap.scored_at))}`];
  parts.push(snap.previous ? `Δ vs the previous snapshot, scored ${esc(snapshotTime(snap.previous))}`
    : "first snapshot: no changes yet");
  $("#snapshot-meta").innerHTML = parts.join('<span class="sep">·</span>');
}

function sum(rows, f) {
  return rows.reduce((a, r) => a + (f(r) || 0), 0);
}

/** A money sum, null when rows have it but none knows it (a store whose conversions carry no
 * value): the tile then shows a dash, not a 0 that reads as a real figure. */
function knownSum(rows, f) {
  return !rows.length || rows.some((r) => typeof f(r) === "number") ? sum(rows, f) : null;
}

/** Figures of the whole snapshot from the tiers (every customer has one tier). */
function overall(tiers) {
  const n = sum(tiers, (t) => t.customers);
  const rar = knownSum(tiers, (t) => t.revenue_at_risk);
  const risk = n ? sum(tiers, (t) => t.mean_risk * t.customers) / n : null;
  const high = tiers.find((t) => t.key.tier === "high");
  const highN = high ? high.customers : 0;
  const out = { n, rar, risk, highN, highShare: n ? highN / n : null, change: null };
  if (tiers.some((t) => t.change)) {
    const prevN = n - sum(tiers, (t) => t.change?.customers);
    const prevRiskSum = sum(tiers, (t) => (t.change ? (t.mean_risk - t.change.mean_risk) * (t.customers - t.change.customers) : 0));
    const prevHigh = high ? highN - (high.change?.customers || 0) : 0;
    out.change = {
      n: n - prevN,
      rar: rar === null ? null : knownSum(tiers, (t) => t.change?.revenue_at_risk),
      risk: prevN > 0 && risk !== null ? risk - prevRiskSum / prevN : null,
      highShare: prevN > 0 && out.highShare !== null ? out.highShare - prevHigh / prevN : null,
    };
  }
  return out;
}

function rateText(rate) {
  if (!rate || rate.value === null || rate.value === undefined) return null;
  const ci = rate.ci95 ? ` · 95% CI ${fmt.pct(rate.ci95[0])}–${fmt.pct(rate.ci95[1])}` : "";
  return `${fmt.count(rate.count)} of ${fmt.count(rate.of)}${ci}`;
}

function renderKpis(data) {
  const o = overall(data.tiers || []);
  const kpis = data.journey_map?.kpis || {};
  const params = data.journey_map?.params || {};
  const snap = data.snapshot;
  const vs = snap.previous ? `Change since the previous snapshot (scored ${snapshotTime(snap.previous)})` : "";
  const tiles = [
    {
      id: "snapshot", label: "Scores as of", value: fmt.date(snap.as_of), raw: snap.as_of,
      sub: snap.previous ? "▲▼ vs previous snapshot" : "first snapshot", title: vs,
    },
    {
      id: "customers", label: "Customers", value: fmt.count(o.n), raw: o.n,
      delta: o.change && { text: fmt.signedCount(o.change.n), v: o.change.n, kind: "count", riseIsBad: null },
    },
    {
      id: "revenue-at-risk", label: "Revenue at risk", value: fmt.moneyShort(o.rar), raw: o.rar,
      title: `${fmt.money(o.rar)}: expected value × churn probability, summed`,
      delta: o.change && o.change.rar !== null
        && { text: fmt.signedMoneyShort(o.change.rar), v: o.change.rar, kind: "moneyShort", riseIsBad: true },
    },
    {
      id: "high-risk", label: "High-risk share", value: fmt.pct(o.highShare), raw: o.highShare,
      sub: `${fmt.count(o.highN)} customers`,
      delta: o.change && o.change.highShare !== null
        && { text: fmt.signedPp(o.change.highShare), v: o.change.highShare, kind: "pp", riseIsBad: true },
    },
    {
      id: "mean-risk", label: "Mean risk", value: fmt.pct(o.risk), raw: o.risk,
      delta: o.change && o.change.risk !== null && { text: fmt.signedPp(o.change.risk), v: o.change.risk, kind: "pp", riseIsBad: true },
    },
  ];
  const rate = (id, label, r, sub) => {
    if (!r || r.value === null || r.value === undefined) return;
    tiles.push({ id, label, value: fmt.pct(r.value), raw: r.value, sub, title: rateText(r) });
  };
  const conv = kpis.conversion_rate;
  rate("conversion", "Conversion", conv, conv ? `${fmt.count(conv.count)} of ${fmt.count(conv.of)} bought` : "");
  rate("retention", "Retention", kpis.retention_rate, `buyers active ${params.retention_days ?? 90} days ago, still active`);
  rate("repeat", "Repeat rate", kpis.repeat_purchase_rate, "buyers with 2+ orders");
  const csat = kpis.csat;
  if (csat && csat.count > 0 && csat.satisfied && csat.satisfied.value !== null) {
    tiles.push({
      id: "csat", label: "CSAT (satisfied)", value: fmt.pct(csat.satisfied.value), raw: csat.satisfied.value,
      sub: `satisfied · mean ${fmt.fixed(csat.mean, 2)}`,
      title: `${fmt.count(csat.satisfied.count)} of ${fmt.count(csat.count)} support ratings at or above `
        + `${params.satisfied_min ?? 4}; mean rating ${fmt.fixed(csat.mean, 2)}`,
    });
  }
  const nps = kpis.nps;
  if (nps && nps.count > 0 && nps.score !== null && nps.score !== undefined) {
    tiles.push({
      id: "nps", label: "NPS", value: fmt.signedNum(nps.score, 0), raw: nps.score,
      sub: `${fmt.count(nps.count)} answers`,
      title: `${fmt.count(nps.promoters)} promoters, ${fmt.count(nps.passives)} passives, `
        + `${fmt.count(nps.detractors)} detractors (each customer's latest answer)`,
    });
  }
  const box = $("#kpis");
  box.replaceChildren(...tiles.map((t) => kpiTile(t, vs)));
}

function kpiTile(t, vs) {
  const tile = document.createElement("div");
  tile.className = `kpi kpi-${t.id}`;
  tile.dataset.testid = `kpi-${t.id}`;
  tile.id = `kpi-${t.id}`;
  if (t.title) tile.title = t.title;
  const label = document.createElement("div");
  label.className = "kpi-label";
  label.textContent = t.label;
  const value = document.createElement("div");
  value.className = "kpi-value";
  value.textContent = t.value;
  value.dataset.value = t.raw === null || t.raw === undefined ? "" : String(t.raw);
  tile.append(label, value);
  const sub = document.createElement("div");
  sub.className = "kpi-sub";
  if (t.delta) {
    const d = document.createElement("span");
    const shown = fmt.shown(t.delta.kind, t.delta.v); // colour and arrow: what is read
    d.className = charts.deltaClass(shown, t.delta.riseIsBad);
    d.dataset.value = String(t.delta.v);
    d.textContent = `${arrow(shown)} ${t.delta.text}`;
    d.title = vs;
    sub.append(d);
    if (t.sub) sub.append(" · ", t.sub);
  } else if (t.sub) {
    sub.textContent = t.sub;
  }
  tile.append(sub);
  return tile;
}

function arrow(v) {
  return !v ? "■" : v > 0 ? "▲" : "▼";
}

function renderJourneyMeta(jm) {
  const meta = $("#journey-meta");
  const drops = $("#drop-offs");
  drops.replaceChildren();
  if (!jm) {
    meta.textContent = "This snapshot has no journey map.";
    return;
  }
  const p = jm.params || {};
  meta.textContent = `${fmt.count(jm.customers)} customers with ${fmt.count(jm.events)} events before ${fmt.date(jm.as_of)}`
    + (p.drop_off_days ? ` · dropped off = no activity for ${p.drop_off_days} days` : "")
    + (jm.no_stage ? ` · ${fmt.count(jm.no_stage)} with no stage yet` : "");
  const top = (jm.drop_offs || []).slice(0, 3);
  if (top.length) {
    const head = document.createElement("li");
    head.className = "drop-head";
    head.textContent = "Biggest drop-offs";
    drops.append(head);
  }
  for (const d of top) {
    const li = document.createElement("li");
    const b = document.createElement("b");
    b.textContent = d.stage;
    li.append(b, ` ${fmt.count(d.dropped)} dropped · ${fmt.pct(d.share_of_reached)} of those who reached it`);
    drops.append(li);
  }
}

function renderTiersMeta(snap) {
  const bands = snap.risk_bands || [];
  $("#tiers-meta").textContent = bands.length === 2
    ? `Calibrated churn probability: low < ${fmt.pct(bands[0], 0)} ≤ medium < ${fmt.pct(bands[1], 0)} ≤ high`
    : "Tiers of the calibrated churn probability";
}

function renderAttributionMeta(attr, lookback, contacts) {
  const meta = $("#attribution-meta");
  if (!attr) {
    meta.textContent = "";
    return;
  }
  const window = lookback ? `the last ${lookback} days` : "the whole history";
  meta.textContent = `Markov-chain removal effect (order 1) over ${fmt.count(attr.journeys)} journeys in ${window}, `
    + `${fmt.count(attr.total_conversions)} converted (${fmt.pct(attr.journeys ? attr.total_conversions / attr.journeys : null)})`
    + (contacts ? "; marketing contacts count as touchpoints." : ".");
}

/** Every chart, sized to its container (called on load and when the window is resized). */
function redrawCharts() {
  const data = state.data;
  if (!data) return;
  const jm = data.journey_map;
  if (jm) {
    charts.funnelChart($("#funnel"), jm.funnel, jm.customers);
    charts.sankeyChart($("#sankey"), jm.flows, state.stages);
    const attr = jm.attribution || {};
    const chosen = state.attrBy === "channel" ? attr.by_channel : attr.by_touchpoint;
    charts.attributionChart($("#attribution"), chosen);
    renderAttributionMeta(chosen, attr.lookback_days, attr.include_contacts);
  } else {
    for (const id of ["#funnel", "#sankey", "#attribution"]) {
      charts.empty($(id), "No journey map in this snapshot: score again to compute one.");
    }
  }
  charts.tiersChart($("#tiers"), data.tiers, TIER_ORDER);
  charts.stageTiersChart($("#stage-tiers"), data.stage_tiers, state.stages, TIER_ORDER);
}

// -- segment controls ------------------------------------------------------------------------

function buildControls() {
  const cut = $("#cut-by");
  const legendEl = cut.querySelector("legend");
  cut.replaceChildren(legendEl);
  for (const dim of Object.keys(state.dims)) {
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `by-${dim}`;
    box.value = dim;
    box.checked = state.by.includes(dim);
    box.addEventListener("change", () => {
      const chosen = Object.keys(state.dims).filter((d) => $(`#by-${cssId(d)}`).checked);
      state.by = chosen;
      state.sort = { col: null, dir: -1 };
      refreshSegments();
    });
    label.append(box, ` ${dimLabel(dim)}`);
    cut.append(label);
  }
  const filters = $("#filters");
  filters.replaceChildren();
  for (const [dim, values] of Object.entries(state.dims)) {
    filters.append(filterControl(dim, values));
  }
  filters.append($("#clear-filters"));
  updateFilterSummaries();
}

function cssId(s) {
  return CSS.escape(s);
}

function filterControl(dim, values) {
  const details = document.createElement("details");
  details.className = "filter";
  details.id = `filter-${dim}`;
  details.dataset.dim = dim;
  const summary = document.createElement("summary");
  summary.className = "filter-summary";
  const panel = document.createElement("div");
  panel.className = "filter-panel";
  const ordered = orderValues(dim, values);
  for (const v of ordered) {
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = v;
    box.checked = (state.filters[dim] || []).includes(v);
    box.addEventListener("change", () => {
      const chosen = [...panel.querySelectorAll("input:checked")].map((b) => b.value);
      if (chosen.length) state.filters[dim] = chosen;
      else delete state.filters[dim];
      updateFilterSummaries();
      refreshSegments();
    });
    label.append(box, " ", dimValue(dim, v));
    panel.append(label);
  }
  const clear = document.createElement("button");
  clear.type = "button";
  clear.className = "link";
  clear.textContent = "All";
  clear.addEventListener("click", () => {
    for (const b of panel.querySelectorAll("input")) b.checked = false;
    delete state.filters[dim];
    updateFilterSummaries();
    refreshSegments();
  });
  panel.append(clear);
  details.append(summary, panel);
  details.addEventListener("toggle", () => {
    if (!details.open) return;
    for (const other of document.querySelectorAll("details.filter[open]")) {
      if (other !== details) other.open = false;
    }
  });
  return details;
}

function updateFilterSummaries() {
  let any = false;
  for (const details of document.querySelectorAll("details.filter")) {
    const dim = details.dataset.dim;
    const chosen = state.filters[dim] || [];
    any ||= chosen.length > 0;
    const summary = details.querySelector("summary");
    const name = document.createElement("span");
    name.className = "filter-name";
    name.textContent = dimLabel(dim);
    const val = document.createElement("span");
    val.className = "filter-value";
    val.textContent = !chosen.length ? "all" : chosen.length === 1 ? chosen[0] : `${chosen.length} selected`;
    summary.replaceChildren(name, val);
    details.classList.toggle("active", chosen.length > 0);
  }
  $("#clear-filters").hidden = !any;
}

function orderValues(dim, values) {
  const list = [...values];
  const rank = dim === "tier" ? TIER_ORDER : dim === "stage" ? state.stages : null;
  if (rank) {
    const pos = (v) => (rank.includes(v) ? rank.indexOf(v) : rank.length + (v === "(none)" ? 1 : 0));
    list.sort((a, b) => pos(a) - pos(b) || a.localeCompare(b));
  }
  return list;
}

function dimLabel(dim) {
  return DIM_LABELS[dim] || fmt.label(dim);
}

function dimValue(dim, v) {
  if (dim === "tier") {
    const pill = document.createElement("span");
    pill.className = `pill tier-${TIER_ORDER.includes(v) ? v : "other"}`;
    pill.textContent = v;
    return pill;
  }
  const s = document.createElement("span");
  s.textContent = v;
  if (v === "(none)") s.className = "muted";
  return s;
}

// -- segment table -------------------------------------------------------------------------

function segmentParams() {
  return [["by", state.by.join(",")], ...filterParams(state.filters)];
}

let refreshTimer = null;
function refreshSegments() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(querySegments, 120);
  $("#segment-status").textContent = "Updating…";
  $("#segment-table").dataset.state = "loading";
}

async function querySegments() {
  const seq = ++state.seq;
  const params = segmentParams();
  const t0 = performance.now();
  try {
    const out = await (await api("segments", params)).json();
    if (seq !== state.seq) return;
    showSegments(out, params, performance.now() - t0);
  } catch (err) {
    if (seq !== state.seq) return;
    if (!handleCommonError(err)) segmentError(err);
  }
}

function segmentError(err) {
  const table = $("#segment-table");
  table.dataset.state = "error";
  const status = $("#segment-status");
  status.textContent = `The segments could not be loaded: ${err.message}`;
  status.classList.add("error");
}

function showSegments(out, params, ms) {
  state.seg = out;
  const table = $("#segment-table");
  table.dataset.query = new URLSearchParams(params).toString();
  renderTable();
  table.dataset.state = "ready";
  const status = $("#segment-status");
  status.classList.remove("error");
  const n = out.segments.length;
  const shown = Math.min(n, ROW_CAP);
  const time = ms === undefined ? "" : ` · ${fmt.count(ms)} ms`;
  status.textContent = `${fmt.count(n)} segment${n === 1 ? "" : "s"} · ${fmt.count(out.total.customers)} customers`
    + (shown < n ? ` · showing the ${fmt.count(shown)} largest by the current sort — filter or cut by fewer dimensions to see the rest` : "")
    + time;
}

function columns(out) {
  const hasChange = out.segments.some((s) => s.change) || !!out.total.change;
  const hasActions = out.snapshot.actions || out.segments.some((s) => s.top_action);
  const cols = out.by.map((d) => ({ id: `key:${d}`, dim: d, label: dimLabel(d), kind: "dim" }));
  cols.push(
    { id: "customers", label: "Customers", kind: "num", get: (s) => s.customers, show: (s) => fmt.count(s.customers) },
    { id: "share", label: "Share", kind: "share", get: (s) => s.share },
    { id: "mean_risk", label: "Mean risk", kind: "num", get: (s) => s.mean_risk, show: (s) => fmt.pct(s.mean_risk) },
    { id: "expected_value", label: "Expected value (total)", kind: "num", get: (s) => s.expected_value, show: (s) => fmt.money(s.expected_value) },
    { id: "revenue_at_risk", label: "Revenue at risk (total)", kind: "num strong", get: (s) => s.revenue_at_risk, show: (s) => fmt.money(s.revenue_at_risk) },
  );
  if (hasChange) {
    cols.push(
      { id: "d_customers", label: "Δ customers", kind: "delta", unit: "count", get: (s) => s.change?.customers, show: (s) => fmt.signedCount(s.change?.customers), bad: (s) => charts.tierRiseIsBad(s.key.tier ?? singleTier()) },
      { id: "d_mean_risk", label: "Δ risk", kind: "delta", unit: "pp", get: (s) => s.change?.mean_risk, show: (s) => fmt.signedPp(s.change?.mean_risk), bad: () => true },
      { id: "d_revenue_at_risk", label: "Δ revenue at risk", kind: "delta", unit: "money", get: (s) => s.change?.revenue_at_risk, show: (s) => fmt.signedMoney(s.change?.revenue_at_risk), bad: () => true },
    );
  }
  if (hasActions) {
    cols.push({ id: "top_action", label: "Top action", kind: "text", get: (s) => s.top_action || "" });
  }
  return cols;
}

/** The tier all rows share when the filters keep a single one (else undefined). */
function singleTier() {
  const t = state.filters.tier;
  return t && t.length === 1 ? t[0] : undefined;
}

function sortedSegments(out, cols) {
  const rows = [...out.segments];
  const { col, dir } = state.sort;
  if (!col) return rows;
  const c = cols.find((x) => x.id === col);
  if (!c) return rows;
  if (c.kind === "dim") {
    const rank = c.dim === "tier" ? TIER_ORDER : c.dim === "stage" ? state.stages : null;
    const pos = (v) => (rank && rank.includes(v) ? rank.indexOf(v) : 1e6);
    rows.sort((a, b) => dir * (pos(a.key[c.dim]) - pos(b.key[c.dim]) || a.key[c.dim].localeCompare(b.key[c.dim])));
  } else if (c.kind === "text") {
    rows.sort((a, b) => dir * String(c.get(a)).localeCompare(String(c.get(b))));
  } else {
    const v = (s) => { const x = c.get(s); return typeof x === "number" ? x : -Infinity; };
    rows.sort((a, b) => dir * (v(a) - v(b)));
  }
  return rows;
}

function renderTable() {
  const out = state.seg;
  if (!out) return;
  const table = $("#segment-table");
  const cols = columns(out);
  // head
  const tr = document.createElement("tr");
  for (const c of cols) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.col = c.id;
    if (c.dim === "stage") th.title = STAGE_NOTE;
    th.className = c.kind.startsWith("num") || c.kind === "delta" || c.kind === "share" ? "num" : "";
    const active = state.sort.col === c.id;
    th.setAttribute("aria-sort", active ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "sort";
    b.textContent = c.label;
    if (active) {
      const mark = document.createElement("span");
      mark.className = "sort-mark";
      mark.textContent = state.sort.dir > 0 ? "▲" : "▼";
      b.append(mark);
    }
    b.addEventListener("click", () => {
      if (state.sort.col === c.id) state.sort.dir = -state.sort.dir;
      else state.sort = { col: c.id, dir: c.kind === "dim" || c.kind === "text" ? 1 : -1 };
      renderTable();
    });
    th.append(b);
    tr.append(th);
  }
  table.tHead.replaceChildren(tr);
  // body
  const rows = sortedSegments(out, cols).slice(0, ROW_CAP);
  const frag = document.createDocumentFragment();
  const drillKey = state.drill ? JSON.stringify(state.drill.key) : null;
  for (const s of rows) {
    const row = document.createElement("tr");
    row.tabIndex = 0;
    row.className = "segment-row";
    row.dataset.key = JSON.stringify(s.key);
    if (drillKey === row.dataset.key) row.classList.add("selected");
    for (const c of cols) row.append(cell(c, s));
    row.addEventListener("click", () => openDrill(s, row));
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        openDrill(s, row);
      }
    });
    frag.append(row);
  }
  if (!rows.length) {
    const row = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = cols.length;
    td.className = "empty";
    td.textContent = "No customers match these filters.";
    row.append(td);
    frag.append(row);
  }
  table.tBodies[0].replaceChildren(frag);
  // total
  const foot = document.createElement("tr");
  foot.className = "total-row";
  const dimCols = cols.filter((c) => c.kind === "dim").length;
  if (dimCols) {
    const th = document.createElement("th");
    th.scope = "row";
    th.colSpan = dimCols;
    th.textContent = Object.keys(state.filters).length ? "Total (filtered)" : "Total";
    foot.append(th);
  }
  for (const c of cols.filter((x) => x.kind !== "dim")) foot.append(cell(c, out.total));
  table.tFoot.replaceChildren(foot);
}

function cell(c, s) {
  const td = document.createElement("td");
  td.dataset.col = c.id;
  if (c.kind === "dim") {
    const v = s.key[c.dim];
    td.dataset.value = v;
    td.append(dimValue(c.dim, v));
    return td;
  }
  const raw = c.get(s);
  td.dataset.value = raw === undefined || raw === null ? "" : String(raw);
  if (c.kind === "share") {
    td.className = "num share";
    const bar = document.createElement("span");
    bar.className = "share-bar";
    const fill = document.createElement("span");
    fill.style.width = `${Math.max(0, Math.min(1, raw || 0)) * 100}%`;
    bar.append(fill);
    td.append(bar, fmt.pct(raw));
  } else if (c.kind === "delta") {
    const missing = raw === undefined || raw === null;
    td.className = `num ${missing ? "muted" : charts.deltaClass(fmt.shown(c.unit, raw), c.bad(s))}`;
    td.textContent = raw === undefined || raw === null ? "new" : c.show(s);
  } else if (c.kind === "text") {
    td.className = "action";
    if (s.top_action) {
      td.title = `${s.top_action}: ${fmt.pct(s.top_action_share, 0)} of the segment's customers`;
      td.append(s.top_action);
      const share = document.createElement("span");
      share.className = "muted";
      share.textContent = ` ${fmt.pct(s.top_action_share, 0)}`;
      td.append(share);
    } else {
      td.textContent = "—";
      td.classList.add("muted");
    }
  } else {
    td.className = c.kind;
    td.textContent = c.show(s);
  }
  return td;
}

// -- drill-down ----------------------------------------------------------------------------

function openDrill(seg, row) {
  const filters = {};
  for (const [d, v] of Object.entries(state.filters)) filters[d] = [...v];
  for (const [d, v] of Object.entries(seg.key)) filters[d] = [v];
  state.drill = { filters, key: seg.key, offset: 0, sort: $("#drill-sort").value, expected: seg.customers };
  for (const r of document.querySelectorAll("#segment-table tr.selected")) r.classList.remove("selected");
  row?.classList.add("selected");
  const panel = $("#drilldown");
  panel.hidden = false;
  panel.dataset.filters = JSON.stringify(filters);
  renderChips(filters);
  loadDrill().then(() => panel.scrollIntoView({ block: "start" }));
}

function renderChips(filters) {
  const chips = $("#drill-chips");
  chips.replaceChildren();
  const entries = Object.entries(filters);
  if (!entries.length) {
    const c = document.createElement("span");
    c.className = "chip";
    c.textContent = "All customers";
    chips.append(c);
  }
  for (const [d, vs] of entries) {
    const c = document.createElement("span");
    c.className = "chip";
    const b = document.createElement("b");
    b.textContent = `${dimLabel(d)}: `;
    c.append(b, vs.join(", "));
    chips.append(c);
  }
}

// persona_id: the persona column shows its current name (the id is the export's, for joins)
const KNOWN = ["customer_id", "stage", "tier", "churn", "conversion", "next_stage", "next_stage_probability",
  "expected_value", "revenue_at_risk", "recency_days", "events", "top_action", "top_action_value", "persona_id"];

async function loadDrill() {
  const d = state.drill;
  if (!d) return;
  const seq = ++state.drillSeq;
  const panel = $("#drilldown");
  panel.dataset.state = "loading";
  const params = [...filterParams(d.filters), ["sort", d.sort], ["limit", String(PAGE)], ["offset", String(d.offset)]];
  try {
    const out = await (await api("segments/customers", params)).json();
    if (seq !== state.drillSeq) return;
    d.total = out.total;
    renderDrill(out);
    panel.dataset.state = "ready";
    panel.dataset.total = String(out.total);
    panel.dataset.offset = String(out.offset);
  } catch (err) {
    if (seq !== state.drillSeq) return;
    if (!handleCommonError(err)) {
      panel.dataset.state = "error";
      $("#drill-range").textContent = `The customers could not be loaded: ${err.message}`;
    }
  }
}

function renderDrill(out) {
  $("#drill-title").textContent = `${fmt.count(out.total)} customer${out.total === 1 ? "" : "s"} in this segment`;
  const customers = out.customers;
  const extras = [];
  for (const c of customers.slice(0, 5)) {
    for (const k of Object.keys(c)) if (!KNOWN.includes(k) && !extras.includes(k)) extras.push(k);
  }
  const cols = [
    ["customer_id", "Customer", (c) => c.customer_id, ""],
    ["stage", "Current stage", (c) => c.stage ?? "(none)", ""],
    ["tier", "Tier", (c) => c.tier, "tier"],
    ["churn", "Churn risk", (c) => fmt.pct(c.churn), "num"],
    ["conversion", "Conversion", (c) => fmt.pct(c.conversion), "num"],
    ["next_stage", "Next stage", (c) => `${c.next_stage} ${fmt.pct(c.next_stage_probability, 0)}`, ""],
    ["expected_value", "Expected value (per customer)", (c) => fmt.money(c.expected_value), "num"],
    ["revenue_at_risk", "Revenue at risk (per customer)", (c) => fmt.money(c.revenue_at_risk), "num strong"],
    ["recency_days", "Days inactive", (c) => (c.recency_days === null ? "—" : fmt.num(c.recency_days, 0)), "num"],
    ["events", "Events", (c) => fmt.count(c.events), "num"],
    ["top_action", "Next best action", (c) => c.top_action || "—", ""],
    // A missing attribute reads "(none)", as in the filters and the CSV.
    ...extras.map((k) => [k, fmt.label(k), (c) => (c[k] === null || c[k] === undefined ? "(none)" : String(c[k])), ""]),
  ];
  const table = $("#drill-table");
  const head = document.createElement("tr");
  for (const [id, label, , cls] of cols) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.col = id;
    th.className = cls.startsWith("num") ? "num" : "";
    th.textContent = label;
    if (id === "stage") th.title = STAGE_NOTE;
    if (id === out.sort) th.classList.add("sorted");
    head.append(th);
  }
  table.tHead.replaceChildren(head);
  const frag = document.createDocumentFragment();
  for (const c of customers) {
    const tr = document.createElement("tr");
    tr.dataset.customer = c.customer_id;
    for (const [id, , show, cls] of cols) {
      const td = document.createElement("td");
      td.dataset.col = id;
      const raw = c[id];
      td.dataset.value = raw === null || raw === undefined ? "" : String(raw);
      if (cls === "tier") td.append(dimValue("tier", c.tier));
      else {
        td.textContent = show(c);
        td.className = cls;
      }
      tr.append(td);
    }
    frag.append(tr);
  }
  if (!customers.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = cols.length;
    td.className = "empty";
    td.textContent = "No customers in this segment.";
    tr.append(td);
    frag.append(tr);
  }
  table.tBodies[0].replaceChildren(frag);
  const from = out.total ? out.offset + 1 : 0;
  const to = out.offset + customers.length;
  $("#drill-range").textContent = `${fmt.count(from)}–${fmt.count(to)} of ${fmt.count(out.total)}`;
  $("#drill-prev").disabled = out.offset <= 0;
  $("#drill-next").disabled = to >= out.total;
}

// -- export --------------------------------------------------------------------------------

function filenameOf(disposition) {
  if (!disposition) return null;
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1] : null;
}

/** The customers matching `filters` (GET segments/export), in the order `sort` names (the
 * service's default, revenue at risk, when none). */
async function exportCsv(filters, button, sort = null) {
  const label = button.innerHTML;
  button.disabled = true;
  button.textContent = "Preparing…";
  try {
    const params = [...filterParams(filters), ...(sort ? [["sort", sort]] : [])];
    const r = await api("segments/export", params);
    const blob = await r.blob();
    saveFile(blob, filenameOf(r.headers.get("Content-Disposition")) || "segment.csv");
  } catch (err) {
    if (!handleCommonError(err)) {
      const status = $("#segment-status");
      status.textContent = `The export failed: ${err.message}`;
      status.classList.add("error");
    }
  } finally {
    button.disabled = false;
    button.innerHTML = label;
  }
}

/** The segment table as CSV, written here from the answer already loaded: every segment of
 * it (not only the rows drawn), in the table's current order, with the snapshot's as-of date. */
function exportTable() {
  const out = state.seg;
  if (!out) return;
  const shown = new Set(columns(out).map((c) => c.id));
  const asOf = fmt.date(out.snapshot.as_of);
  const cols = [
    ...out.by.map((d) => ({ name: d, get: (s) => s.key[d], text: true })),
    { name: "customers", get: (s) => s.customers },
    { name: "share", get: (s) => s.share, digits: 4 },
    { name: "mean_risk", get: (s) => s.mean_risk, digits: 4 },
    { name: "expected_value_total", get: (s) => s.expected_value, digits: 2 },
    { name: "revenue_at_risk_total", get: (s) => s.revenue_at_risk, digits: 2 },
  ];
  if (shown.has("d_customers")) {
    cols.push(
      { name: "change_customers", get: (s) => s.change?.customers },
      { name: "change_mean_risk", get: (s) => s.change?.mean_risk, digits: 4 },
      { name: "change_revenue_at_risk_total", get: (s) => s.change?.revenue_at_risk, digits: 2 },
    );
  }
  if (shown.has("top_action")) {
    cols.push({ name: "top_action", get: (s) => s.top_action, text: true },
      { name: "top_action_share", get: (s) => s.top_action_share, digits: 4 });
  }
  cols.push({ name: "as_of", get: () => asOf, text: true });
  const filters = Object.entries(out.filters).sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v.join("+")}`).join("-") || "all";
  const name = `segments-${fileSafe(asOf)}-by-${fileSafe(out.by.join("+") || "total")}-${fileSafe(filters).slice(0, 120)}.csv`;
  const text = csvText(cols, sortedSegments(out, columns(out)));
  saveFile(new Blob([text], { type: "text/csv;charset=utf-8" }), name);
}

// -- helpers and wiring --------------------------------------------------------------------

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function wire() {
  $("#key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("#key-input").value.trim();
    if (!key) return;
    storage()?.setItem(KEY_STORE, key);
    state.key = key;
    load();
  });
  $("#sign-out").addEventListener("click", () => {
    forgetKey();
    showKeyForm();
  });
  $("#attr-channel").addEventListener("click", () => setAttribution("channel"));
  $("#attr-touchpoint").addEventListener("click", () => setAttribution("event_type"));
  $("#clear-filters").addEventListener("click", () => {
    state.filters = {};
    for (const b of document.querySelectorAll("details.filter input")) b.checked = false;
    updateFilterSummaries();
    refreshSegments();
  });
  $("#export").addEventListener("click", (e) => exportCsv(state.filters, e.currentTarget));
  $("#export-table").addEventListener("click", exportTable);
  $("#drill-export").addEventListener("click",
    (e) => state.drill && exportCsv(state.drill.filters, e.currentTarget, state.drill.sort));
  $("#drill-close").addEventListener("click", () => {
    $("#drilldown").hidden = true;
    state.drill = null;
    for (const r of document.querySelectorAll("#segment-table tr.selected")) r.classList.remove("selected");
  });
  $("#drill-prev").addEventListener("click", () => {
    if (!state.drill) return;
    state.drill.offset = Math.max(0, state.drill.offset - PAGE);
    loadDrill();
  });
  $("#drill-next").addEventListener("click", () => {
    if (!state.drill) return;
    state.drill.offset += PAGE;
    loadDrill();
  });
  $("#drill-sort").addEventListener("change", (e) => {
    if (!state.drill) return;
    state.drill.sort = e.target.value;
    state.drill.offset = 0;
    loadDrill();
  });
  document.addEventListener("click", (e) => {
    for (const d of document.querySelectorAll("details.filter[open]")) {
      if (!d.contains(e.target)) d.open = false;
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") for (const d of document.querySelectorAll("details.filter[open]")) d.open = false;
  });
  window.addEventListener("hashchange", () => {
    if (/(^#|&)key=/.test(location.hash)) load();
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(redrawCharts, 150);
  });
}

function setAttribution(by) {
  state.attrBy = by;
  $("#attr-channel").setAttribute("aria-pressed", String(by === "channel"));
  $("#attr-touchpoint").setAttribute("aria-pressed", String(by !== "channel"));
  redrawCharts();
}

wire();
load();
