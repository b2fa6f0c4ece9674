// The churn-risk segment table: re-queried (GET segments, an aggregation of a pre-computed
// cube) when the cut or the filters change, sorted here by a column's header button (the
// header's aria-sort says how), a row opening the segment's customers (click, Enter or
// Space), and its CSV written here from the answer on screen ("Export this table": it holds
// every segment already, no second query, and the file follows the table's own sort).

import { fmt } from "./format.js";
import * as charts from "./charts.js";
import { csvText, fileSafe, saveFile } from "./csv.js";
import { openDrill } from "./drilldown.js";
import { announce, api, handleCommonError } from "./session.js";
import { tip } from "./tips.js";
import {
  $, DEFAULT_SORT, dimLabel, dimValue, emptyRow, filterParams, ROW_CAP, STAGE_NOTE, state, TIER_ORDER,
} from "./state.js";

export function segmentParams() {
  return [["by", state.by.join(",")], ...filterParams(state.filters)];
}

let refreshTimer = null;
export function refreshSegments() {
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

export function segmentError(err) {
  const table = $("#segment-table");
  table.dataset.state = "error";
  const status = $("#segment-status");
  status.textContent = `The segments could not be loaded: ${err.message}`;
  status.classList.add("error");
}

export function showSegments(out, params, ms) {
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

/** The column the rows are in the order of, and which way: the marketer's choice, else the
 * service's own order (revenue at risk, largest first), which the header says too. */
function effectiveSort(cols) {
  if (state.sort.col) return state.sort;
  return cols.some((c) => c.id === DEFAULT_SORT) ? { col: DEFAULT_SORT, dir: -1 } : state.sort;
}

function sortBy(c, cols) {
  const now = effectiveSort(cols);
  if (now.col === c.id) state.sort = { col: c.id, dir: -now.dir };
  else state.sort = { col: c.id, dir: c.kind === "dim" || c.kind === "text" ? 1 : -1 };
  renderTable();
  // The header was drawn anew: keep the keyboard on the button just pressed.
  $(`#segment-table th[data-col="${CSS.escape(c.id)}"] button`)?.focus();
  const way = state.sort.dir > 0 ? (c.kind === "dim" || c.kind === "text" ? "A to Z" : "smallest first")
    : (c.kind === "dim" || c.kind === "text" ? "Z to A" : "largest first");
  announce(`Segments sorted by ${c.label}, ${way}`);
}

function headCell(c, cols, sort) {
  const th = document.createElement("th");
  th.scope = "col";
  th.dataset.col = c.id;
  th.className = c.kind.startsWith("num") || c.kind === "delta" || c.kind === "share" ? "num" : "";
  const b = document.createElement("button");
  b.type = "button";
  b.className = "sort";
  b.textContent = c.label;
  // Only the sorted column carries aria-sort (as the ARIA sortable-table pattern has it).
  if (sort.col === c.id) {
    th.setAttribute("aria-sort", sort.dir > 0 ? "ascending" : "descending");
    const mark = document.createElement("span");
    mark.className = "sort-mark";
    mark.setAttribute("aria-hidden", "true");
    mark.textContent = sort.dir > 0 ? "▲" : "▼";
    b.append(mark);
  }
  b.addEventListener("click", () => sortBy(c, cols));
  th.append(b);
  if (c.dim === "stage") {
    // The header's title stays the mouse's tooltip (the browser's own, over the whole cell);
    // the keyboard, on its sort button, gets the same note as a tooltip and description.
    th.title = STAGE_NOTE;
    tip(b, STAGE_NOTE, { hover: false });
  }
  return th;
}

function segmentRow(s, cols, drillKey) {
  const row = document.createElement("tr");
  row.tabIndex = 0;
  row.className = "segment-row";
  row.dataset.key = JSON.stringify(s.key);
  // Focus lands on the row, not a cell: its name says which segment it is (a row's name is
  // not computed from its cells) and its description what Enter does.
  const dims = cols.filter((c) => c.kind === "dim").map((c) => `${c.label} ${s.key[c.dim]}`).join(", ");
  row.setAttribute("aria-label", `${dims || "All customers"}: ${fmt.count(s.customers)} customers, `
    + `revenue at risk ${fmt.money(s.revenue_at_risk)}`);
  row.setAttribute("aria-describedby", "segment-hint");
  if (drillKey === row.dataset.key) {
    row.classList.add("selected");
    row.setAttribute("aria-current", "true");
  }
  for (const c of cols) row.append(cell(c, s));
  // The top action's note: read with the row and shown at its cell while the row has the
  // keyboard (one tooltip per row, the row being the Tab stop already); a mouse hovers the cell.
  const action = row.querySelector("td.action");
  if (s.top_action && action) tip(row, actionNote(s), { anchor: action });
  row.addEventListener("click", () => openDrill(s, row));
  row.addEventListener("keydown", (e) => {
    if (e.target === row && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      openDrill(s, row);
    }
  });
  return row;
}

export function renderTable() {
  const out = state.seg;
  if (!out) return;
  const table = $("#segment-table");
  const cols = columns(out);
  const sort = effectiveSort(cols);
  const tr = document.createElement("tr");
  for (const c of cols) tr.append(headCell(c, cols, sort));
  table.tHead.replaceChildren(tr);
  const rows = sortedSegments(out, cols).slice(0, ROW_CAP);
  const frag = document.createDocumentFragment();
  const drillKey = state.drill ? JSON.stringify(state.drill.key) : null;
  for (const s of rows) frag.append(segmentRow(s, cols, drillKey));
  if (!rows.length) frag.append(emptyRow(cols.length, "No customers match these filters."));
  table.tBodies[0].replaceChildren(frag);
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
  // The total row is no Tab stop of its own: its action cell becomes the one.
  const total = foot.querySelector("td.action");
  if (out.total.top_action && total) tip(total, actionNote(out.total));
}

/** What a top action's share is a share of (the cell shows the action and the share only). */
function actionNote(s) {
  return `${s.top_action}: ${fmt.pct(s.top_action_share, 0)} of the segment's customers`;
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
    bar.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.style.width = `${Math.max(0, Math.min(1, raw || 0)) * 100}%`;
    bar.append(fill);
    td.append(bar, fmt.pct(raw));
  } else if (c.kind === "delta") {
    const missing = raw === undefined || raw === null;
    td.className = `num ${missing ? "muted" : charts.deltaClass(fmt.shown(c.unit, raw), c.bad(s))}`;
    td.textContent = missing ? "new" : c.show(s);
  } else if (c.kind === "text") {
    td.className = "action";
    if (s.top_action) {
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

/** The segment table as CSV, written here from the answer already loaded: every segment of
 * it (not only the rows drawn), in the table's current order, with the snapshot's as-of date. */
export function exportTable() {
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
  announce(`Download started: ${name}`);
}
