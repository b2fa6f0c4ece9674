// Journey dashboard charts: small, dependency-free SVG drawings (no CDN, no canvas).
// Every chart takes a container element and plain data, clears the container and draws an
// <svg> sized to the container's width (text stays at its CSS size: the viewBox is in pixels).

import { fmt } from "./format.js";

const NS = "http://www.w3.org/2000/svg";

export const STAGE_COLORS = ["#4263eb", "#1c7ed6", "#1098ad", "#0ca678", "#37b24d", "#74b816",
  "#f59f00", "#f76707"];
export const TIER_COLORS = { low: "#2f9e44", medium: "#f08c00", high: "#e03131" };
export const DROPPED_COLOR = "#e03131";
export const ACTIVE_COLOR = "#2f9e44";
export const ENTERED_COLOR = "#868e96";

export function tierColor(tier) {
  return TIER_COLORS[tier] || "#adb5bd";
}

export function stageColor(index) {
  return index < 0 ? "#adb5bd" : STAGE_COLORS[index % STAGE_COLORS.length];
}

// Tiers differ by a pattern as well as by colour (low plain, medium striped, high dotted): a
// bar stacked by tier reads without telling red from green.
const TIER_MARKS = { medium: "stripes", high: "dots" };
let patternSeq = 0; // pattern ids are the document's: each drawing gets its own

/** The fill of each tier in `svg` (a colour, or a pattern defined in the SVG on first use). */
export function tierPainter(svg) {
  const paints = new Map();
  return (tier) => {
    const mark = TIER_MARKS[tier];
    if (!mark) return tierColor(tier);
    if (!paints.has(tier)) {
      const defs = svg.querySelector("defs") || svg.insertBefore(el("defs"), svg.firstChild);
      const id = `tier-${mark}-${++patternSeq}`;
      defs.append(el("pattern", { id, width: 6, height: 6, patternUnits: "userSpaceOnUse",
        patternTransform: mark === "stripes" ? "rotate(45)" : null, class: `tier-mark ${mark}` },
      el("rect", { width: 6, height: 6, fill: tierColor(tier) }),
      mark === "stripes" ? el("rect", { width: 2, height: 6, fill: "#fff", opacity: 0.55 })
        : el("circle", { cx: 3, cy: 3, r: 1.3, fill: "#fff", opacity: 0.75 })));
      paints.set(tier, `url(#${id})`);
    }
    return paints.get(tier);
  };
}

/** An SVG element with attributes (null/undefined skipped) and children (strings become text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function title(text) {
  return el("title", {}, text);
}

function frame(container, height, label) {
  const width = Math.max(320, Math.floor(container.clientWidth || 640));
  const svg = el("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label,
    class: "chart-svg",
  });
  container.replaceChildren(svg);
  return { svg, width };
}

/** A message in place of a chart (no data). */
export function empty(container, text) {
  const p = document.createElement("p");
  p.className = "chart-empty";
  p.textContent = text;
  container.replaceChildren(p);
}

function legend(items) {
  // items: [{label, color, shape}] drawn left to right; returns [group, width]
  const g = el("g", { class: "legend" });
  let x = 0;
  for (const item of items) {
    const shape = item.shape === "dot"
      ? el("circle", { cx: x + 5, cy: 0, r: 4.5, fill: "#fff", stroke: item.color, "stroke-width": 2 })
      : item.shape === "diamond"
        ? el("path", { d: `M${x + 5},-5.5 L${x + 10.5},0 L${x + 5},5.5 L${x - 0.5},0 Z`, fill: item.color })
        : el("rect", { x, y: -5, width: 10, height: 10, rx: 2, fill: item.color });
    g.append(shape, el("text", { x: x + 15, y: 4 }, item.label));
    x += 15 + item.label.length * 6.4 + 16;
  }
  return [g, x];
}

// -- funnel --------------------------------------------------------------------------------

/** Stage funnel: a bar per stage (customers who reached it), the customers who dropped off at
 * that stage at its end, and between stages the conversion and the median days it took. */
export function funnelChart(container, funnel, customers) {
  if (!funnel || !funnel.length) return empty(container, "No stage funnel in this snapshot.");
  const barH = 26, gap = 24, top = 8, labelW = 104, valueW = 118;
  const height = top + funnel.length * barH + (funnel.length - 1) * gap + 40;
  const { svg, width } = frame(container, height, "Stage funnel: customers who reached each stage or a later one");
  const max = Math.max(1, customers || 0, ...funnel.map((r) => r.reached));
  const span = Math.max(60, width - labelW - valueW - 8);
  const scale = (n) => (span * n) / max;
  funnel.forEach((row, i) => {
    const y = top + i * (barH + gap);
    const w = Math.max(scale(row.reached), row.reached > 0 ? 2 : 0);
    const dropW = Math.min(w, scale(row.dropped || 0));
    const g = el("g", { class: "funnel-row", "data-stage": row.stage },
      title(`${row.stage}: ${fmt.count(row.reached)} reached (${fmt.pct(row.share)} of customers); `
        + `${fmt.count(row.at_stage)} are furthest here, ${fmt.count(row.dropped)} of them dropped off`));
    g.append(
      el("text", { x: labelW - 10, y: y + barH / 2 + 4, "text-anchor": "end", class: "axis-label" },
        row.stage),
      el("rect", { x: labelW, y, width: span, height: barH, rx: 3, class: "track" }),
      el("rect", { x: labelW, y, width: w, height: barH, rx: 3, fill: stageColor(i), class: "bar" }),
    );
    if (dropW >= 1) {
      g.append(el("rect", { x: labelW + w - dropW, y: y + barH * 0.55, width: dropW, height: barH * 0.45,
        fill: DROPPED_COLOR, class: "bar dropped" }, title(`${fmt.count(row.dropped)} dropped off at ${row.stage}`)));
    }
    g.append(el("text", { x: labelW + w + 8, y: y + barH / 2 + 4, class: "value" },
      el("tspan", { class: "strong" }, fmt.count(row.reached)),
      el("tspan", { class: "muted" }, `  ${fmt.pct(row.share)}`),
    ));
    svg.append(g);
    if (i > 0) {
      const parts = [];
      if (row.conversion_from_previous !== null && row.conversion_from_previous !== undefined) {
        parts.push(`${fmt.pct(row.conversion_from_previous)} continue`);
      }
      if (row.median_days_from_previous !== null && row.median_days_from_previous !== undefined) {
        parts.push(`median ${fmt.days(row.median_days_from_previous)}`);
      }
      const ty = y - gap / 2 + 4;
      svg.append(el("g", { class: "funnel-step" },
        el("path", { d: `M${labelW + 6},${ty - 9} v8 m-3.5,-3.5 l3.5,3.5 l3.5,-3.5`, class: "step-arrow" }),
        el("text", { x: labelW + 16, y: ty, class: "step" }, parts.join(" · ") || "—")));
    }
  });
  const [lg] = legend([{ label: "reached the stage", color: stageColor(0) },
    { label: "dropped off there (no activity)", color: DROPPED_COLOR }]);
  lg.setAttribute("transform", `translate(${labelW},${height - 14})`);
  svg.append(lg);
}

// -- Sankey --------------------------------------------------------------------------------

/** Stage flows: where customers were first seen ("entered"), the stages in columns in funnel
 * order, then the terminal nodes (active, dropped); a band per link, as wide as its customers.
 * Links only go forward, and every stage's inflow equals its outflow. */
export function sankeyChart(container, flows, stages) {
  if (!flows || !flows.length) return empty(container, "No stage flows in this snapshot.");
  const sources = ["entered"];
  const terminals = ["active", "dropped"];
  const order = [...stages];
  for (const f of flows) {
    for (const n of [f.source, f.target]) {
      if (!order.includes(n) && !terminals.includes(n) && !sources.includes(n)) order.push(n);
    }
  }
  const used = new Set(flows.flatMap((f) => [f.source, f.target]));
  const sourceNodes = sources.filter((n) => used.has(n));
  const stageNodes = order.filter((n) => used.has(n));
  const termNodes = terminals.filter((n) => used.has(n));
  const first = sourceNodes.length ? 1 : 0;
  const nodes = new Map();
  const node = (name, col, kind) => ({ name, col, kind, inV: 0, outV: 0, ins: [], outs: [] });
  sourceNodes.forEach((name) => nodes.set(name, node(name, 0, "source")));
  stageNodes.forEach((name, i) => nodes.set(name, node(name, first + i, "stage")));
  termNodes.forEach((name) => nodes.set(name, node(name, first + stageNodes.length, "terminal")));
  const links = flows.filter((f) => f.customers > 0 && nodes.has(f.source) && nodes.has(f.target))
    .map((f) => ({ ...f, s: nodes.get(f.source), t: nodes.get(f.target) }));
  for (const l of links) {
    l.s.outV += l.customers; l.s.outs.push(l);
    l.t.inV += l.customers; l.t.ins.push(l);
  }
  for (const n of nodes.values()) n.value = Math.max(n.inV, n.outV);
  const cols = first + stageNodes.length + (termNodes.length ? 1 : 0);
  // Stage labels alternate above and below their nodes so that neighbours never overlap.
  const height = 410, top = 34, bottom = 34, nodeW = 12, pad = 26;
  const { svg, width } = frame(container, height, "Stage flows");
  const left = 2, right = 84;
  const colX = (c) => left + (cols > 1 ? (c * (width - left - right - nodeW)) / (cols - 1) : 0);
  const termTotal = termNodes.reduce((a, n) => a + nodes.get(n).value, 0);
  const maxCol = Math.max(termTotal, ...[...nodes.values()].map((n) => n.value), 1);
  const avail = height - top - bottom - pad * Math.max(0, termNodes.length - 1);
  const ky = avail / maxCol;
  for (const name of [...sourceNodes, ...stageNodes]) {
    const n = nodes.get(name);
    n.h = Math.max(1.5, n.value * ky);
    n.x = colX(n.col);
    n.y = top + (avail - n.h) / 2;
  }
  let y = top;
  for (const name of termNodes) {
    const n = nodes.get(name);
    n.h = Math.max(1.5, n.value * ky);
    n.x = colX(n.col);
    n.y = y;
    y += n.h + pad;
  }
  // Stack links at each node: outgoing by target position, incoming by source position.
  for (const n of nodes.values()) {
    n.outs.sort((a, b) => a.t.col - b.t.col || a.t.y - b.t.y);
    n.ins.sort((a, b) => a.s.col - b.s.col || a.s.y - b.s.y);
    let yo = n.y;
    for (const l of n.outs) { l.sy = yo; yo += l.customers * ky; }
    let yi = n.y;
    for (const l of n.ins) { l.ty = yi; yi += l.customers * ky; }
  }
  const linkLayer = el("g", { class: "links" });
  for (const l of links) {
    const w = Math.max(0.75, l.customers * ky);
    const x0 = l.s.x + nodeW, x1 = l.t.x;
    const mx = (x0 + x1) / 2;
    const d = `M${x0},${l.sy} C${mx},${l.sy} ${mx},${l.ty} ${x1},${l.ty} `
      + `L${x1},${l.ty + w} C${mx},${l.ty + w} ${mx},${l.sy + w} ${x0},${l.sy + w} Z`;
    const color = l.target === "dropped" ? DROPPED_COLOR : l.target === "active" ? ACTIVE_COLOR
      : l.s.kind === "source" ? ENTERED_COLOR : stageColor(stageNodes.indexOf(l.source));
    linkLayer.append(el("path", { d, fill: color, class: "link", "data-source": l.source, "data-target": l.target },
      title(`${l.source} → ${l.target}: ${fmt.count(l.customers)} customers`)));
  }
  svg.append(linkLayer);
  const nodeLayer = el("g", { class: "nodes" });
  for (const n of nodes.values()) {
    const color = n.name === "dropped" ? DROPPED_COLOR : n.name === "active" ? ACTIVE_COLOR
      : n.kind === "source" ? ENTERED_COLOR : stageColor(stageNodes.indexOf(n.name));
    const g = el("g", { class: "node", "data-node": n.name },
      el("rect", { x: n.x, y: n.y, width: nodeW, height: n.h, rx: 2, fill: color },
        title(`${n.name}: ${fmt.count(n.value)} customers`)));
    if (n.kind === "terminal") {
      // Terminal nodes: label to their right, in the margin kept for it.
      const ty = n.y + n.h / 2;
      g.append(el("text", { x: n.x + nodeW + 6, y: ty - 2, class: "node-label" }, n.name),
        el("text", { x: n.x + nodeW + 6, y: ty + 12, class: "node-value" }, fmt.count(n.value)));
    } else {
      // Entry and stage nodes: label above, or below for odd columns (the first
      // column's label starts at its left edge).
      const leftmost = n.col === 0;
      const tx = leftmost ? n.x : n.x + nodeW / 2;
      const anchor = leftmost ? "start" : "middle";
      const below = n.kind === "stage" && n.col % 2 === 1;
      const ty = below ? n.y + n.h + 13 : n.y - 20;
      g.append(el("text", { x: tx, y: ty, "text-anchor": anchor, class: "node-label" }, n.name),
        el("text", { x: tx, y: ty + 13, "text-anchor": anchor, class: "node-value" }, fmt.count(n.value)));
    }
    nodeLayer.append(g);
  }
  svg.append(nodeLayer);
}

// -- attribution ---------------------------------------------------------------------------

/** Markov removal-effect share per label (bar) against first-touch (circle) and last-touch
 * (diamond) shares, largest Markov share first. */
export function attributionChart(container, attribution) {
  const labels = attribution && attribution.labels ? attribution.labels : [];
  if (!labels.length) return empty(container, "No touchpoint paths to attribute in this snapshot.");
  const rowH = 26, top = 6, labelW = 120, valueW = 64;
  const height = top + labels.length * rowH + 34;
  const { svg, width } = frame(container, height, "Attribution");
  const max = Math.max(0.01, ...labels.flatMap((c) => [c.share, c.first_touch_share, c.last_touch_share]));
  const span = Math.max(60, width - labelW - valueW - 10);
  const x = (v) => labelW + (span * v) / max;
  // Grid lines at round percentages.
  const step = max > 0.5 ? 0.2 : max > 0.2 ? 0.1 : max > 0.08 ? 0.05 : 0.02;
  const grid = el("g", { class: "grid" });
  for (let v = 0; v <= max + 1e-9; v += step) {
    grid.append(el("line", { x1: x(v), x2: x(v), y1: top - 2, y2: top + labels.length * rowH }),
      el("text", { x: x(v), y: top + labels.length * rowH + 12, "text-anchor": "middle", class: "tick" },
        fmt.pct(v, 0)));
  }
  svg.append(grid);
  labels.forEach((c, i) => {
    const y = top + i * rowH;
    const cy = y + rowH / 2;
    const w = Math.max(1, x(c.share) - labelW);
    svg.append(el("g", { class: "attr-row", "data-label": c.label },
      title(`${c.label}: Markov share ${fmt.pct(c.share, 1)} (removal effect ${fmt.pct(c.removal_effect, 1)}, `
        + `${fmt.num(c.conversions, 1)} conversions); first touch ${fmt.pct(c.first_touch_share, 1)}, `
        + `last touch ${fmt.pct(c.last_touch_share, 1)}; ${fmt.count(c.touchpoints)} touchpoints`),
      el("text", { x: labelW - 10, y: cy + 4, "text-anchor": "end", class: "axis-label" }, c.label),
      el("rect", { x: labelW, y: cy - 7, width: w, height: 14, rx: 2, class: "bar markov" }),
      el("line", { x1: x(c.first_touch_share), x2: x(c.last_touch_share), y1: cy, y2: cy, class: "touch-span" }),
      el("circle", { cx: x(c.first_touch_share), cy, r: 4.5, class: "first-touch" }),
      el("path", { d: `M${x(c.last_touch_share)},${cy - 5.5} l5.5,5.5 l-5.5,5.5 l-5.5,-5.5 Z`, class: "last-touch" }),
      el("text", { x: width - 4, y: cy + 4, "text-anchor": "end", class: "value strong" },
        fmt.pct(c.share, 1))));
  });
  const [lg] = legend([{ label: "Markov removal-effect share", color: "#4263eb" },
    { label: "first touch", color: "#495057", shape: "dot" },
    { label: "last touch", color: "#f08c00", shape: "diamond" }]);
  lg.setAttribute("transform", `translate(${labelW},${height - 8})`);
  svg.append(lg);
}

// -- risk tiers ----------------------------------------------------------------------------

/** Customers and revenue at risk per risk tier (low, medium, high), with the change since the
 * previous snapshot. */
export function tiersChart(container, tiers, order) {
  if (!tiers || !tiers.length) return empty(container, "No scored customers.");
  const rows = [...tiers].sort((a, b) => order.indexOf(a.key.tier) - order.indexOf(b.key.tier));
  const rowH = 50, top = 24, labelW = 74;
  const height = top + rows.length * rowH + 4;
  const { svg, width } = frame(container, height, "Risk tiers");
  const paint = tierPainter(svg);
  const half = (width - labelW - 16) / 2;
  const maxN = Math.max(1, ...rows.map((r) => r.customers));
  const maxR = Math.max(1, ...rows.map((r) => r.revenue_at_risk));
  const barSpan = half - 12;
  svg.append(el("text", { x: labelW, y: 12, class: "col-head" }, "Customers"),
    el("text", { x: labelW + half + 16, y: 12, class: "col-head" }, "Revenue at risk (total)"));
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const tier = r.key.tier;
    const color = paint(tier);
    const wN = Math.max(2, (barSpan * r.customers) / maxN);
    const wR = Math.max(2, (barSpan * r.revenue_at_risk) / maxR);
    const ch = r.change;
    svg.append(el("g", { class: "tier-row", "data-tier": tier },
      title(`${tier}: ${fmt.count(r.customers)} customers (${fmt.pct(r.share)}), mean risk ${fmt.pct(r.mean_risk)}, `
        + `revenue at risk ${fmt.money(r.revenue_at_risk)}`),
      el("text", { x: 0, y: y + 13, class: "tier-name" }, tier),
      el("text", { x: 0, y: y + 28, class: "muted small" }, `risk ${fmt.pct(r.mean_risk, 0)}`),
      el("rect", { x: labelW, y, width: wN, height: 18, rx: 3, fill: color, class: "bar" }),
      el("text", { x: labelW, y: y + 33, class: "value" },
        el("tspan", { class: "strong" }, fmt.count(r.customers)),
        el("tspan", { class: "muted" }, ` ${fmt.pct(r.share, 0)}`),
        ch ? el("tspan", { class: deltaClass(fmt.shown("count", ch.customers), tierRiseIsBad(tier)) }, `  ${fmt.signedCount(ch.customers)}`) : null),
      el("rect", { x: labelW + half + 16, y, width: wR, height: 18, rx: 3, fill: color, class: "bar", opacity: 0.8 }),
      el("text", { x: labelW + half + 16, y: y + 33, class: "value" },
        el("tspan", { class: "strong" }, fmt.money(r.revenue_at_risk)),
        ch ? el("tspan", { class: deltaClass(fmt.shown("money", ch.revenue_at_risk), true) }, `  ${fmt.signedMoney(ch.revenue_at_risk)}`) : null)));
  });
}

/** Customers of each current stage (the stage of their latest activity, not the furthest
 * reached: that is the funnel's) stacked by risk tier. */
export function stageTiersChart(container, stageTiers, stages, tierOrder) {
  if (!stageTiers || !stageTiers.length) return empty(container, "No scored customers.");
  const byStage = new Map();
  for (const s of stageTiers) {
    const st = s.key.stage;
    if (!byStage.has(st)) byStage.set(st, []);
    byStage.get(st).push(s);
  }
  const names = [...stages.filter((s) => byStage.has(s)), ...[...byStage.keys()].filter((s) => !stages.includes(s))];
  const rowH = 24, top = 4, labelW = 112, valueW = 70;
  const height = top + names.length * rowH + 30;
  const { svg, width } = frame(container, height, "Current stage (of the latest activity) by risk tier");
  const paint = tierPainter(svg);
  const totals = names.map((n) => byStage.get(n).reduce((a, s) => a + s.customers, 0));
  const max = Math.max(1, ...totals);
  const span = Math.max(60, width - labelW - valueW);
  names.forEach((name, i) => {
    const y = top + i * rowH;
    const g = el("g", { class: "stage-tier-row", "data-stage": name },
      el("text", { x: labelW - 10, y: y + 14, "text-anchor": "end", class: "axis-label" }, name));
    let x = labelW;
    const parts = byStage.get(name).sort((a, b) => tierOrder.indexOf(a.key.tier) - tierOrder.indexOf(b.key.tier));
    for (const s of parts) {
      const w = (span * s.customers) / max;
      if (w <= 0) continue;
      g.append(el("rect", { x, y: y + 3, width: Math.max(w, 0.5), height: rowH - 8, fill: paint(s.key.tier), class: "bar", "data-tier": s.key.tier },
        title(`current stage ${name} · ${s.key.tier}: ${fmt.count(s.customers)} customers, revenue at risk ${fmt.money(s.revenue_at_risk)} (total)`)));
      x += w;
    }
    g.append(el("text", { x: x + 8, y: y + 14, class: "value" }, fmt.count(totals[i])));
    svg.append(g);
  });
  const [lg] = legend(tierOrder.map((t) => ({ label: `${t} risk`, color: paint(t) })));
  lg.setAttribute("transform", `translate(${labelW},${height - 10})`);
  svg.append(lg);
}

/** The CSS class of a change: for counts of risk, a rise is bad (red). Pass the value as shown
 * (`fmt.shown`): a change that reads "0" or "0.0 pp" is flat, not a rise or a fall. */
export function deltaClass(v, riseIsBad) {
  if (!v || Math.abs(v) < 1e-12) return "delta flat";
  if (riseIsBad === null || riseIsBad === undefined) return "delta neutral";
  return (v > 0) === riseIsBad ? "delta bad" : "delta good";
}

/** Whether more customers in a tier is bad news: yes for high risk, no for low, either for
 * medium (null: shown without a judgement). */
export function tierRiseIsBad(tier) {
  return tier === "high" ? true : tier === "low" ? false : null;
}

