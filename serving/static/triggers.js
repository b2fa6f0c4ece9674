// Trigger firings: the newest firings of the service's trigger rules (GET triggers/firings):
// when each fired, the rule, the customer, why in plain words, and how its delivery went (the
// last error in view for a delivery that is retrying or gave up). Loaded after the first view;
// `api` is the dashboard's call helper.

import { fmt } from "./format.js";
import { tipTitles } from "./tips.js";

const $ = (sel) => document.querySelector(sel);
const SHOWN = 20;
// held: over its rule's max_per_minute (a flood of new customers), stored but never sent.
const STATUS_TEXT = { delivered: "delivered", pending: "waiting", retrying: "retrying", dead: "failed", held: "held (rate cap)" };

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);

/** "1 firing", "11 firings" */
export function plural(n, one, many = `${one}s`) {
  return `${fmt.count(n)} ${n === 1 ? one : many}`;
}

// A threshold as a marketer set it: 60%, 62.5%.
function threshold(t) {
  return fmt.pct(t, Number.isInteger(Math.round(t * 1000) / 10) ? 0 : 1);
}

/** Why a firing fired, in words, from its details (the values its rule compared); the rule's
 * own sentence ("stage none -> decision") when they are not ones known here. */
export function firingReason(d) {
  if (!d) return "";
  if ("previous_stage" in d && d.stage) {
    return d.previous_stage ? `Moved from ${d.previous_stage} to ${d.stage}` : `Reached ${d.stage} (first stage seen)`;
  }
  if ("churn_before" in d && isNum(d.churn) && isNum(d.churn_before) && isNum(d.threshold)) {
    const up = d.direction !== "down";
    return `Churn risk ${up ? "rose" : "fell"} from ${fmt.pct(d.churn_before)} to ${fmt.pct(d.churn)}, `
      + `${up ? "above" : "below"} ${threshold(d.threshold)}`;
  }
  if ("was_blocked_by" in d && d.action) {
    return `${d.action} became ${d.level || "eligible"}` + (d.was_blocked_by ? ` (before: ${d.was_blocked_by})` : "");
  }
  if ("inactive_days" in d && isNum(d.inactive_days)) {
    return `No activity for ${fmt.days(d.inactive_days)}` + (d.last_activity ? ` (last on ${fmt.date(d.last_activity)})` : "");
  }
  return String(d.reason || "").replace(/ -> /g, " → ");
}

function sameMinute(a, b) {
  return fmt.dateTime(a) === fmt.dateTime(b);
}

// The delivery: its status in words, and for a delivery retrying or given up, its endpoint's
// last error on a line of its own (a tooltip hid it).
function deliveryCell(f) {
  const problems = f.deliveries.filter((d) => (d.status === "dead" || d.status === "retrying") && d.last_error);
  const lines = problems.map((d) => {
    const next = d.status === "retrying" && d.next_attempt_at ? `; next try ${fmt.dateTime(d.next_attempt_at)}` : "";
    return `<div class="firing-error">${esc(d.endpoint)}: ${esc(d.last_error)} (${plural(d.attempts, "attempt")}${next})</div>`;
  });
  const title = f.deliveries.map((d) => `${d.endpoint}: ${d.status}, ${plural(d.attempts, "attempt")}`).join("; ");
  return `<td class="firing-${esc(f.status)}" title="${esc(title)}">` +
    `<span class="firing-status">${esc(STATUS_TEXT[f.status] || f.status)}</span>${lines.join("")}</td>`;
}

function row(f, shared) {
  // The evaluation time only where it tells something: it differs from the firing's own time
  // and is not the one every row shares (said once above the table).
  const asOf = !shared && !sameMinute(f.as_of, f.fired_at)
    ? `<div class="muted small">evaluated as of ${esc(fmt.dateTime(f.as_of))}</div>` : "";
  return `<tr data-firing="${esc(f.firing_id)}"><td class="fired">${esc(fmt.dateTime(f.fired_at))}${asOf}</td>` +
    `<td>${esc(f.rule)}</td><td>${esc(f.customer_id)}</td>` +
    `<td class="why">${esc(firingReason(f.details))}</td>${deliveryCell(f)}</tr>`;
}

function render(out) {
  const c = out.counts;
  const total = (c.delivered || 0) + (c.dead || 0) + (c.retrying || 0) + (c.pending || 0) + (c.held || 0);
  const firings = out.firings;
  const asOfs = new Set(firings.map((f) => fmt.dateTime(f.as_of)));
  const shared = asOfs.size === 1 ? firings[0].as_of : null;
  const parts = [`${plural(total, "firing")}: ${fmt.count(c.delivered || 0)} delivered, `
    + `${fmt.count((c.retrying || 0) + (c.pending || 0))} in progress, ${fmt.count(c.dead || 0)} failed`
    + (c.held ? `, ${fmt.count(c.held)} held by the rate cap (not sent)` : "")];
  if (total > firings.length) parts.push(`the newest ${fmt.count(firings.length)} below`);
  if (shared && firings.some((f) => !sameMinute(f.as_of, f.fired_at))) {
    parts.push(`rules evaluated as of ${fmt.dateTime(shared)} (the service's clock)`);
  }
  $("#triggers-meta").textContent = parts.join("; ");
  $("#trigger-table tbody").innerHTML = firings.length ? firings.map((f) => row(f, shared)).join("")
    : '<tr><td colspan="5" class="empty">No trigger has fired yet.</td></tr>';
  tipTitles($("#trigger-table"), "Arrow keys move between the deliveries, each with its attempts.");
}

export async function loadTriggerPanel(api) {
  const meta = $("#triggers-meta");
  if (!meta) return;
  try {
    render(await (await api("triggers/firings", [["limit", String(SHOWN)]])).json());
  } catch (err) {
    meta.textContent = `Firings could not be loaded (${err.message}).`;
  }
}
