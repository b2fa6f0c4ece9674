// Drift: the service's live window of scored customers against what the champions were trained
// on (GET drift), per feature and score: population stability index against the warn and
// alarm thresholds, the distribution test's p-value and the resulting status. Loaded after the
// first view (not part of its load time); `api` is the dashboard's call helper.

import { fmt } from "./format.js";
import { tipTitles } from "./tips.js";

const $ = (sel) => document.querySelector(sel);
const FEATURES_SHOWN = 15; // the most moved features; scores are always listed
const STATUS_ORDER = { alarm: 0, warn: 1, ok: 2, too_few: 3 };
const STATUS_TEXT = { alarm: "alarm", warn: "warn", ok: "ok", too_few: "too few rows" };

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// A PSI bar on a scale that shows both thresholds (ticks) whatever the value. Positions are
// set through the CSSOM afterwards (`place`): the page's CSP forbids inline style attributes.
function psiCell(psi, s) {
  if (psi === null || psi === undefined) return `<td class="num">${fmt.num(null)}</td>`;
  const top = Math.max(s.psi_alarm * 2, psi);
  const at = (v) => Math.min(100, (v / top) * 100).toFixed(1);
  return `<td class="psi"><span class="psi-bar" aria-hidden="true"><span class="psi-fill" data-width="${at(psi)}"></span>` +
    `<span class="psi-tick warn" data-left="${at(s.psi_warn)}"></span>` +
    `<span class="psi-tick alarm" data-left="${at(s.psi_alarm)}"></span></span>` +
    `<span class="num">${fmt.num(psi, 3)}</span></td>`;
}

function place(root) {
  for (const el of root.querySelectorAll("[data-width]")) el.style.width = `${el.dataset.width}%`;
  for (const el of root.querySelectorAll("[data-left]")) el.style.left = `${el.dataset.left}%`;
}

function pValue(p) {
  if (p === null || p === undefined) return fmt.num(null);
  return p < 0.001 ? "< 0.001" : fmt.num(p, 3);
}

function row(r, s) {
  return `<tr data-status="${esc(r.status)}"><th scope="row">${esc(r.name)}</th>` +
    `<td>${r.kind === "score" ? "score" : "feature"}</td>${psiCell(r.psi, s)}` +
    `<td class="num" title="${r.test === "ks" ? "Kolmogorov-Smirnov" : "chi-square"}">${pValue(r.p_value)}</td>` +
    `<td class="num">${fmt.count(r.n)}</td>` +
    `<td class="drift-status">${esc(STATUS_TEXT[r.status] || r.status)}</td></tr>`;
}

function shown(rows) {
  const rank = (r) => [STATUS_ORDER[r.status] ?? 9, -(r.psi ?? -1)];
  const order = (a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || x[1] - y[1];
  };
  const scores = rows.filter((r) => r.kind === "score").sort(order);
  const features = rows.filter((r) => r.kind !== "score").sort(order).slice(0, FEATURES_SHOWN);
  return [...scores, ...features];
}

/** The badge: [panel state, text]. "No drift" only when some column had enough rows to be
 * compared: an empty window (every column missing) or one too small says nothing either way. */
function verdict(rep) {
  const alarms = rep.rows.filter((r) => r.status === "alarm").length;
  const warns = rep.rows.filter((r) => r.status === "warn").length;
  if (rep.alarm) return ["alarm", `${alarms} alarm${alarms === 1 ? "" : "s"}`];
  if (warns) return ["warn", `${warns} to watch`];
  if (!rep.window_size || !rep.rows.some((r) => r.status === "ok")) return ["nodata", "not enough data"];
  return ["ok", "no drift"];
}

function render(out) {
  const panel = $("#drift");
  const badge = $("#drift-badge");
  const meta = $("#drift-meta");
  const body = $("#drift-table tbody");
  if (!out.available) {
    panel.dataset.state = "unavailable";
    badge.textContent = "unavailable";
    meta.textContent = out.reason || "Drift is not available.";
    body.innerHTML = "";
    return;
  }
  const rep = out.report;
  const s = rep.settings;
  const [state, text] = verdict(rep);
  panel.dataset.state = state;
  badge.textContent = text;
  const rows = (n) => `${fmt.count(n)} ${n === 1 ? "row" : "rows"}`;
  // An empty window has no rows and no times to quote: say so, not "0 rows nothing scored".
  const live = rep.window_size && rep.start
    ? `Live window: ${rows(rep.window_size)} scored ${fmt.dateTime(rep.start)} – ${fmt.dateTime(rep.end)}`
    : "Live window: nothing scored yet";
  meta.textContent = `${live}. Compared with ${rows(rep.reference_size)} the champions were trained on ` +
    `(${Object.entries(out.versions).map(([k, v]) => `${k} v${v}`).join(", ")}).`;
  $("#drift-thresholds").textContent = `Warn at PSI ≥ ${s.psi_warn}, alarm at PSI ≥ ${s.psi_alarm}, ` +
    `both only when the test's p-value is below ${s.p_value} and the window holds at least ` +
    `${fmt.count(s.min_samples)} rows.`;
  const none = rep.window_size ? "No monitored column." : "No scored customers in the live window yet.";
  body.innerHTML = shown(rep.rows).map((r) => row(r, s)).join("") ||
    `<tr><td colspan="6" class="empty">${none}</td></tr>`;
  place(body);
  tipTitles($("#drift-table"), "Arrow keys move between the p-values, each with its test.");
}

export async function loadDriftPanel(api) {
  const meta = $("#drift-meta");
  if (!meta) return;
  try {
    render(await (await api("drift")).json());
  } catch (err) {
    $("#drift").dataset.state = "error";
    meta.textContent = `Drift could not be loaded (${err.message}).`;
  }
}
