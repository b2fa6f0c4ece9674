// The dashboard's shared state and the small helpers every part of the page uses: the
// segment cut, filters and sort, the drill-down, and how dimensions and their values read.

import { fmt } from "./format.js";

export const ROW_CAP = 300; // segment rows drawn at most (the rest: filter or cut by fewer dimensions)
export const PAGE = 50; // drill-down customers per page
export const TIER_ORDER = ["low", "medium", "high"];
export const DEFAULT_BY = ["tier", "stage"];
// The service's order of segments when the marketer has not sorted the table (largest first).
export const DEFAULT_SORT = "revenue_at_risk";
// A customer's segment stage is the stage of their latest activity; the funnel counts the
// furthest stage each reached. Same word, two numbers: the segment side says "current".
const DIM_LABELS = { stage: "Current stage" };
export const STAGE_NOTE = "Stage of the latest activity; the funnel counts the furthest stage reached";

export const $ = (sel) => document.querySelector(sel);

export const state = {
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

export function setState(s) {
  document.body.dataset.state = s;
}

export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

export function dimLabel(dim) {
  return DIM_LABELS[dim] || fmt.label(dim);
}

/** A dimension's value as shown: a tier as its pill (its name in words, not only a colour). */
export function dimValue(dim, v) {
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

/** Tiers and stages in their own order (then the others, "(none)" last); other dimensions as given. */
export function orderValues(dim, values) {
  const list = [...values];
  const rank = dim === "tier" ? TIER_ORDER : dim === "stage" ? state.stages : null;
  if (rank) {
    const pos = (v) => (rank.includes(v) ? rank.indexOf(v) : rank.length + (v === "(none)" ? 1 : 0));
    list.sort((a, b) => pos(a) - pos(b) || a.localeCompare(b));
  }
  return list;
}

export function filterParams(filters) {
  const out = [];
  for (const [dim, values] of Object.entries(filters)) {
    if (values && values.length) out.push([dim, values.join(",")]);
  }
  return out;
}

// A table body's one row saying it has nothing to show, across all ``span`` columns.
export function emptyRow(span, text) {
  const tr = document.createElement("tr");
  const td = document.createElement("td");
  td.colSpan = span;
  td.className = "empty";
  td.textContent = text;
  tr.append(td);
  return tr;
}
