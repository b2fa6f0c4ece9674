// The charts' text alternative: each chart's figures as a table, in a disclosure right after
// the chart ("Table of the figures"), which the chart's SVG points to (aria-details). A
// screen reader gets every number the drawing shows in one place, and anyone can read exact
// figures or tell the tiers apart without colour. The marks are readable one by one too, by
// keyboard (chart-focus.js), each chart named by a summary of its figures made here.

import { fmt } from "./format.js";
import { chartKeys } from "./chart-focus.js";

const specs = new WeakMap(); // disclosure -> the figures it shows when opened

/** Put the disclosure of `spec`'s table after `container`: {name, caption, head: [..],
 * rows: [[..]], num: [column indexes holding numbers]}; the first column names the row. The
 * table itself is drawn when the disclosure opens (or now, when it is open): no cost to the
 * first view. `spec` null (a chart with nothing to draw, whose message says so) removes it. */
export function figureTable(container, spec) {
  const id = `${container.id}-figures`;
  let box = document.getElementById(`${id}-box`);
  if (!spec || !spec.rows.length) {
    box?.remove();
    return;
  }
  if (!box) {
    box = document.createElement("details");
    box.className = "chart-data";
    box.id = `${id}-box`;
    box.append(document.createElement("summary"));
    box.addEventListener("toggle", () => box.open && drawTable(box, id, specs.get(box)));
    container.after(box);
  }
  specs.set(box, spec);
  // Seven of these on the page: each says, to a screen reader's list of them, which chart.
  const which = document.createElement("span");
  which.className = "visually-hidden";
  which.textContent = `: ${spec.name}`;
  box.querySelector("summary").replaceChildren("Table of the figures", which);
  box.querySelector(".table-wrap")?.remove(); // figures of an earlier drawing
  if (box.open) drawTable(box, id, spec);
  container.querySelector("svg")?.setAttribute("aria-details", box.id);
}

function drawTable(box, id, spec) {
  if (box.querySelector(".table-wrap")) return;
  const table = document.createElement("table");
  table.className = "data compact";
  table.id = id;
  const caption = document.createElement("caption");
  caption.className = "visually-hidden";
  caption.textContent = spec.caption;
  const num = new Set(spec.num || []);
  const head = document.createElement("tr");
  spec.head.forEach((text, i) => head.append(cell("th", text, num.has(i), "col")));
  const thead = document.createElement("thead");
  thead.append(head);
  const tbody = document.createElement("tbody");
  for (const row of spec.rows) {
    const tr = document.createElement("tr");
    row.forEach((text, i) => tr.append(cell(i ? "td" : "th", text, num.has(i), i ? null : "row")));
    tbody.append(tr);
  }
  table.append(caption, thead, tbody);
  const wrap = document.createElement("div");
  wrap.className = "table-wrap"; // wider than its chart's column: it scrolls, not spills
  wrap.append(table);
  box.append(wrap);
}

function cell(tag, text, isNum, scope) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (isNum) node.className = "num";
  if (scope) node.scope = scope;
  return node;
}

const nothing = (v) => v === null || v === undefined;

export function funnelFigures(container, funnel) {
  figureTable(container, funnel && funnel.length ? {
    name: "stage funnel",
    caption: "Stage funnel: customers who reached each stage or a later one",
    head: ["Stage", "Reached", "Share of customers", "Continue from the previous",
      "Median time from the previous", "Furthest here", "Dropped off there"],
    num: [1, 2, 3, 4, 5, 6],
    rows: funnel.map((r) => [r.stage, fmt.count(r.reached), fmt.pct(r.share),
      nothing(r.conversion_from_previous) ? "—" : fmt.pct(r.conversion_from_previous),
      nothing(r.median_days_from_previous) ? "—" : fmt.days(r.median_days_from_previous),
      fmt.count(r.at_stage), fmt.count(r.dropped)]),
  } : null);
  if (funnel && funnel.length) {
    const [first, last] = [funnel[0], funnel.at(-1)];
    chartKeys(container, `Stage funnel, customers who reached each stage or a later one: `
      + `${funnel.length} stages, from ${first.stage} (${fmt.count(first.reached)}) `
      + `to ${last.stage} (${fmt.count(last.reached)})`);
  }
}

export function sankeyFigures(container, flows) {
  const shown = (flows || []).filter((f) => f.customers > 0);
  figureTable(container, shown.length ? {
    name: "stage flows",
    caption: "Stage flows: customers from each stage (or where first seen) to the next, then still active or dropped off",
    head: ["From", "To", "Customers"],
    num: [2],
    rows: shown.map((f) => [f.source, f.target, fmt.count(f.customers)]),
  } : null);
  const into = (node) => fmt.count(shown.filter((f) => f.target === node).reduce((a, f) => a + f.customers, 0));
  chartKeys(container, `Stage flows: ${shown.length} flows of customers through the stages; `
    + `${into("active")} still active, ${into("dropped")} dropped off`, nodeByNode);
}

// The flows read node by node: a node's customers, then where they went (the drawing has
// every flow first, then every node).
function nodeByNode(marks) {
  const nodes = marks.map((m) => m.parentElement.dataset.node).filter(Boolean);
  const at = (m) => {
    const node = m.parentElement.dataset.node;
    return node ? [nodes.indexOf(node), -1] : [nodes.indexOf(m.dataset.source), nodes.indexOf(m.dataset.target)];
  };
  return marks.map((m) => [at(m), m]).sort(([a], [b]) => a[0] - b[0] || a[1] - b[1]).map(([, m]) => m);
}

export function attributionFigures(container, attribution, what) {
  const labels = attribution && attribution.labels ? attribution.labels : [];
  figureTable(container, labels.length ? {
    name: `touchpoint impact by ${what.toLowerCase()}`,
    caption: `Touchpoint impact by ${what.toLowerCase()}: Markov removal-effect share against first and last touch`,
    head: [what, "Markov share", "Removal effect", "Conversions", "First touch", "Last touch", "Touchpoints"],
    num: [1, 2, 3, 4, 5, 6],
    rows: labels.map((c) => [c.label, fmt.pct(c.share, 1), fmt.pct(c.removal_effect, 1),
      fmt.num(c.conversions, 1), fmt.pct(c.first_touch_share, 1), fmt.pct(c.last_touch_share, 1),
      fmt.count(c.touchpoints)]),
  } : null);
  if (labels.length) {
    const top = labels.reduce((a, c) => (c.share > a.share ? c : a));
    chartKeys(container, `Touchpoint impact by ${what.toLowerCase()}: ${labels.length} `
      + `${what.toLowerCase()}s; the largest Markov share is ${top.label}'s, ${fmt.pct(top.share, 1)}`);
  }
}

export function tiersFigures(container, tiers, order) {
  const rows = [...(tiers || [])].sort((a, b) => order.indexOf(a.key.tier) - order.indexOf(b.key.tier));
  const changed = rows.some((r) => r.change);
  figureTable(container, rows.length ? {
    name: "risk tiers",
    caption: "Customers and revenue at risk per risk tier",
    head: ["Risk tier", "Customers", "Share", "Mean risk", "Revenue at risk (total)",
      ...(changed ? ["Δ customers", "Δ revenue at risk"] : [])],
    num: changed ? [1, 2, 3, 4, 5, 6] : [1, 2, 3, 4],
    rows: rows.map((r) => [r.key.tier, fmt.count(r.customers), fmt.pct(r.share), fmt.pct(r.mean_risk),
      fmt.money(r.revenue_at_risk),
      ...(changed ? [fmt.signedCount(r.change?.customers), fmt.signedMoney(r.change?.revenue_at_risk)] : [])]),
  } : null);
  chartKeys(container, `Risk tiers: ${rows.map((r) => `${r.key.tier} ${fmt.count(r.customers)} customers`).join(", ")}`);
}

export function stageTiersFigures(container, stageTiers, stages, order) {
  const cells = stageTiers || [];
  const names = [...new Set([...stages, ...cells.map((s) => s.key.stage)])]
    .filter((n) => cells.some((s) => s.key.stage === n));
  const tiers = [...new Set([...order, ...cells.map((s) => s.key.tier)])]
    .filter((t) => cells.some((s) => s.key.tier === t));
  const count = (stage, tier) => cells.filter((s) => s.key.stage === stage && (!tier || s.key.tier === tier))
    .reduce((a, s) => a + s.customers, 0);
  figureTable(container, names.length ? {
    name: "current stage by risk tier",
    caption: "Customers of each current stage (of the latest activity) by risk tier",
    head: ["Current stage", ...tiers.map((t) => `${fmt.label(t)} risk`), "Total"],
    num: [...tiers.keys()].map((i) => i + 1).concat(tiers.length + 1),
    rows: names.map((n) => [n, ...tiers.map((t) => fmt.count(count(n, t))), fmt.count(count(n, null))]),
  } : null);
  chartKeys(container, `Current stage (of the latest activity) by risk tier: ${names.length} stages, `
    + `each a bar of its ${tiers.length} risk tiers`);
}

export function reliabilityFigures(container, point) {
  const bins = point ? point.reliability || [] : [];
  figureTable(container, bins.length ? {
    name: `${point.target} reliability`,
    caption: `Reliability of v${point.model_version} by decile: mean prediction against the realized rate`,
    head: ["Decile", "Mean predicted", "Realized rate", "Customers"],
    num: [1, 2, 3],
    rows: bins.map((b) => [String(b.bin), fmt.pct(b.mean_predicted), fmt.pct(b.observed_rate), fmt.count(b.n)]),
  } : null);
  if (bins.length) {
    chartKeys(container, `${fmt.label(point.target)} reliability of v${point.model_version}: `
      + `${bins.length} deciles, mean prediction against the realized rate`);
  }
}
