// The drill-down: a segment's customers a page at a time (GET segments/customers), in the
// order the marketer picks. Opening it moves the keyboard to its heading; Escape or the close
// button closes it and returns the keyboard to the segment's row. And the customer export:
// every customer matching the filters (the segment card's) or of the segment (the drill-down's),
// with their scores, as the service writes it (GET segments/export, CSV), under its file name.

import { fmt } from "./format.js";
import { saveFile } from "./csv.js";
import { announce, api, handleCommonError } from "./session.js";
import { $, dimLabel, dimValue, emptyRow, filterParams, PAGE, STAGE_NOTE, state } from "./state.js";
import { tipTitles } from "./tips.js";

// persona_id: the persona column shows its current name (the id is the export's, for joins)
const KNOWN = ["customer_id", "stage", "tier", "churn", "conversion", "next_stage", "next_stage_probability",
  "expected_value", "revenue_at_risk", "recency_days", "events", "top_action", "top_action_value", "persona_id"];

function unselectRows() {
  for (const r of document.querySelectorAll("#segment-table tr.selected")) {
    r.classList.remove("selected");
    r.removeAttribute("aria-current");
  }
}

export function openDrill(seg, row) {
  const filters = {};
  for (const [d, v] of Object.entries(state.filters)) filters[d] = [...v];
  for (const [d, v] of Object.entries(seg.key)) filters[d] = [v];
  state.drill = { filters, key: seg.key, offset: 0, sort: $("#drill-sort").value, expected: seg.customers };
  unselectRows();
  row?.classList.add("selected");
  row?.setAttribute("aria-current", "true");
  const panel = $("#drilldown");
  panel.hidden = false;
  panel.dataset.filters = JSON.stringify(filters);
  renderChips(filters);
  loadDrill().then(() => {
    panel.scrollIntoView({ block: "start" });
    // Its heading now says how many customers: read first, and Tab goes on into the panel.
    if (state.drill) $("#drill-title").focus({ preventScroll: true });
  });
}

/** Close the panel; the keyboard goes back to the segment's row (drawn anew if the table
 * changed since), else to the table's heading. */
export function closeDrill() {
  const key = state.drill ? JSON.stringify(state.drill.key) : null;
  const panel = $("#drilldown");
  const hadFocus = panel.contains(document.activeElement);
  panel.hidden = true;
  panel.removeAttribute("aria-busy");
  state.drill = null;
  state.drillSeq++; // an answer still on its way is not drawn
  unselectRows();
  if (!hadFocus) return;
  const row = key && [...document.querySelectorAll("#segment-table tr.segment-row")].find((r) => r.dataset.key === key);
  (row || $("#segments-title")).focus();
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

async function loadDrill() {
  const d = state.drill;
  if (!d) return;
  const seq = ++state.drillSeq;
  const panel = $("#drilldown");
  panel.dataset.state = "loading";
  panel.setAttribute("aria-busy", "true");
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
  } finally {
    if (seq === state.drillSeq) panel.removeAttribute("aria-busy");
  }
}

function drillColumns(customers) {
  const extras = [];
  for (const c of customers.slice(0, 5)) {
    for (const k of Object.keys(c)) if (!KNOWN.includes(k) && !extras.includes(k)) extras.push(k);
  }
  return [
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
}

function drillHead(cols, sort) {
  const head = document.createElement("tr");
  for (const [id, label, , cls] of cols) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.col = id;
    th.className = cls.startsWith("num") ? "num" : "";
    th.textContent = label;
    if (id === "stage") th.title = STAGE_NOTE;
    if (id === sort) {
      th.classList.add("sorted");
      th.setAttribute("aria-sort", "descending"); // the service sorts largest first
    }
    head.append(th);
  }
  return head;
}

function renderDrill(out) {
  $("#drill-title").textContent = `${fmt.count(out.total)} customer${out.total === 1 ? "" : "s"} in this segment`;
  const customers = out.customers;
  const cols = drillColumns(customers);
  const table = $("#drill-table");
  table.tHead.replaceChildren(drillHead(cols, out.sort));
  tipTitles(table.tHead); // the stage column's note: latest, not furthest, stage
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
  if (!customers.length) frag.append(emptyRow(cols.length, "No customers in this segment."));
  table.tBodies[0].replaceChildren(frag);
  const from = out.total ? out.offset + 1 : 0;
  const to = out.offset + customers.length;
  $("#drill-range").textContent = `${fmt.count(from)}–${fmt.count(to)} of ${fmt.count(out.total)}`;
  setPager(out.offset <= 0, to >= out.total);
}

/** Enable the pager's buttons; a focused one that turns disabled hands the keyboard to the
 * other one (a disabled button drops focus to the page's top). */
function setPager(noPrev, noNext) {
  const prev = $("#drill-prev");
  const next = $("#drill-next");
  const focused = document.activeElement;
  prev.disabled = noPrev;
  next.disabled = noNext;
  if (focused === prev && noPrev && !noNext) next.focus();
  else if (focused === next && noNext && !noPrev) prev.focus();
}

function page(delta) {
  if (!state.drill) return;
  state.drill.offset = Math.max(0, state.drill.offset + delta);
  loadDrill();
}

// -- customer export -----------------------------------------------------------------------

function filenameOf(disposition) {
  if (!disposition) return null;
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1] : null;
}

/** The customers matching `filters` (GET segments/export), in the order `sort` names (the
 * service's default, revenue at risk, when none). While it runs the button says so and is
 * aria-disabled, not disabled: a disabled button would drop the keyboard's focus. */
export async function exportCsv(filters, button, sort = null) {
  if (button.getAttribute("aria-disabled") === "true") return; // one download at a time
  const label = button.innerHTML;
  button.setAttribute("aria-disabled", "true");
  button.textContent = "Preparing…";
  try {
    const params = [...filterParams(filters), ...(sort ? [["sort", sort]] : [])];
    const r = await api("segments/export", params);
    const blob = await r.blob();
    const name = filenameOf(r.headers.get("Content-Disposition")) || "segment.csv";
    saveFile(blob, name);
    announce(`Download started: ${name}`);
  } catch (err) {
    if (!handleCommonError(err)) {
      const status = $("#segment-status");
      status.textContent = `The export failed: ${err.message}`;
      status.classList.add("error");
    }
  } finally {
    button.removeAttribute("aria-disabled");
    button.innerHTML = label;
  }
}

export function wireDrill() {
  $("#drill-export").addEventListener("click",
    (e) => state.drill && exportCsv(state.drill.filters, e.currentTarget, state.drill.sort));
  $("#drill-close").addEventListener("click", closeDrill);
  $("#drilldown").addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.drill) {
      e.preventDefault();
      closeDrill();
    }
  });
  $("#drill-prev").addEventListener("click", () => page(-PAGE));
  $("#drill-next").addEventListener("click", () => page(PAGE));
  $("#drill-sort").addEventListener("change", (e) => {
    if (!state.drill) return;
    state.drill.sort = e.target.value;
    state.drill.offset = 0;
    loadDrill();
  });
}
