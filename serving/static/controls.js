// The segment table's controls: which dimensions to cut by (checkboxes) and a filter per
// dimension (a disclosure of checkboxes, one open at a time, closed by Escape or a click
// elsewhere). Every change re-queries the table.

import { refreshSegments } from "./segment-table.js";
import { $, dimLabel, dimValue, orderValues, state } from "./state.js";

export function buildControls() {
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
      const chosen = Object.keys(state.dims).filter((d) => $(`#by-${CSS.escape(d)}`).checked);
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

function filterControl(dim, values) {
  const details = document.createElement("details");
  details.className = "filter";
  details.id = `filter-${dim}`;
  details.dataset.dim = dim;
  const summary = document.createElement("summary");
  summary.className = "filter-summary";
  const panel = document.createElement("div");
  panel.className = "filter-panel";
  // The checkboxes' names are bare values ("high"): the group says what they filter.
  panel.setAttribute("role", "group");
  panel.setAttribute("aria-label", `Filter by ${dimLabel(dim).toLowerCase()}`);
  for (const v of orderValues(dim, values)) {
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
  clear.setAttribute("aria-label", `All: no ${dimLabel(dim).toLowerCase()} filter`);
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

export function updateFilterSummaries() {
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

export function clearFilters() {
  state.filters = {};
  for (const b of document.querySelectorAll("details.filter input")) b.checked = false;
  updateFilterSummaries();
  refreshSegments();
  // The button hides itself: focus goes to the first filter rather than to the page's top.
  if (document.activeElement === document.body || $("#clear-filters").contains(document.activeElement)) {
    $("details.filter summary")?.focus();
  }
}

/** Close every open filter but the one holding `target` (null: all of them). Focus inside a
 * closed one returns to its summary: a hidden checkbox would leave keyboard users nowhere. */
export function closeFilters(target = null) {
  for (const d of document.querySelectorAll("details.filter[open]")) {
    if (target && d.contains(target)) continue;
    const hadFocus = d.contains(document.activeElement);
    d.open = false;
    if (hadFocus) d.querySelector("summary").focus();
  }
}
