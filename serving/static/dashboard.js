// Journey marketer dashboard. Plain ES modules, no build step, no third-party code.
//
// The page holds no data: it reads a marketer key from the URL fragment or a small form
// (session.js) and calls the service with it. The first view comes from one pre-aggregated
// call (dashboard/data, overview.js); the segment table re-queries `segments` when the cut or
// the filters change (controls.js, segment-table.js); the drill-down pages through
// `segments/customers` and the customer export downloads `segments/export` (drilldown.js).
// The panels below (triggers, personas and KPIs, drift, backtest) load after the first view.
// This module starts the page and wires its fixed controls.

import { fmt } from "./format.js";
import { buildControls, clearFilters, closeFilters } from "./controls.js";
import { exportCsv, wireDrill } from "./drilldown.js";
import { redrawCharts, renderOverview, setAttribution } from "./overview.js";
import { exportTable, segmentError, segmentParams, showSegments } from "./segment-table.js";
import {
  api, forgetKey, handleCommonError, onRetry, readKey, rememberKey, showKeyForm, showMessage,
} from "./session.js";
import { $, setState, state } from "./state.js";
import { tipTitles } from "./tips.js";

/** Load the first view with the key at hand (else ask for one). `fromForm`: the marketer
 * typed the key, so the keyboard moves on to the page's heading once it is shown (the form
 * it was in is gone). */
async function load(fromForm = false) {
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
  buildControls();
  $("#content").hidden = false;
  $("#sign-out").hidden = false;
  if (fromForm) $("#page-title").focus();
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
  loadPanels();
}

/** The panels below the first view (triggers, personas and KPIs, drift, backtest), each
 * reporting its own failure in place. Their modules are fetched once the first view is drawn:
 * neither they nor their calls are part of its load time. */
async function loadPanels() {
  const [triggers, personas, drift, backtest] = await Promise.all(
    ["./triggers.js", "./personas.js", "./drift.js", "./backtest.js"].map((m) => import(m)));
  triggers.loadTriggerPanel(api);
  personas.loadPersonaPanels(api);
  drift.loadDriftPanel(api);
  backtest.loadBacktestPanel(api);
}

function wire() {
  $("#key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("#key-input").value.trim();
    if (!key) return;
    rememberKey(key);
    load(true);
  });
  $("#sign-out").addEventListener("click", () => {
    forgetKey();
    showKeyForm();
  });
  $("#attr-channel").addEventListener("click", () => setAttribution("channel"));
  $("#attr-touchpoint").addEventListener("click", () => setAttribution("event_type"));
  $("#clear-filters").addEventListener("click", clearFilters);
  $("#export").addEventListener("click", (e) => exportCsv(state.filters, e.currentTarget));
  $("#export-table").addEventListener("click", exportTable);
  wireDrill();
  tipTitles($("#segments .card-head")); // the export buttons' notes: what each file holds
  document.addEventListener("click", (e) => closeFilters(e.target));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeFilters();
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

onRetry(load);
wire();
load();
