// Live backtest: how the models' past predictions fared once their horizon closed (GET
// backtest, written by `journey backtest`). Per model: realized AUC and calibration error over
// prediction time, one line per model version, the newest point's reliability by decile, and
// the table of every point. Loaded after the first view; `api` is the dashboard's call helper.

import { fmt } from "./format.js";
import { el, empty } from "./charts.js";
import { reliabilityFigures } from "./chart-figures.js";
import { chartKeys } from "./chart-focus.js";

const $ = (sel) => document.querySelector(sel);
const TARGETS = ["churn", "conversion"];
// Each version's line: a dark colour (>= 4.5:1 on white) and a dash of its own, so that the
// lines differ without colour too; the legend draws both beside the version's name.
const VERSION_COLORS = ["#4263eb", "#c2410c", "#087f5b", "#ae3ec9", "#0b7285", "#9c5d00"];
const VERSION_DASHES = [null, "6 3", "2 3", "8 3 2 3", "1 2", "10 4"];
const H = 170;
const PAD = { left: 44, right: 12, top: 12, bottom: 26 };

function bySeries(points) {
  const out = new Map();
  for (const p of points) {
    if (!out.has(p.model_version)) out.set(p.model_version, []);
    out.get(p.model_version).push(p);
  }
  return out;
}

// One line per model version of `metric` over prediction time. Its figures are the table
// below the charts (every point's metrics): the SVG points to it.
function lineChart(container, points, metric, label) {
  const values = points.map((p) => p.metrics[metric]).filter((v) => v !== null);
  if (!values.length) return empty(container, "No closed horizon yet.");
  const width = Math.max(320, Math.floor(container.clientWidth || 480));
  const times = points.map((p) => Date.parse(p.as_of));
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  let [lo, hi] = [Math.min(...values), Math.max(...values)];
  if (hi - lo < 0.02) [lo, hi] = [lo - 0.01, hi + 0.01];
  const x = (t) => PAD.left + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * (width - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  const svg = el("svg", { width, height: H, viewBox: `0 0 ${width} ${H}`, role: "img",
    "aria-label": label, "aria-details": "backtest-table", class: "chart-svg" });
  for (const v of [lo, (lo + hi) / 2, hi]) {
    svg.append(el("line", { x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v), class: "bt-grid" }),
      el("text", { x: PAD.left - 6, y: y(v) + 4, class: "axis-label", "text-anchor": "end" }, fmt.num(v, 3)));
  }
  for (const t of [...new Set([t0, t1])]) {
    svg.append(el("text", { x: x(t), y: H - 8, class: "axis-label", "text-anchor": "middle" },
      fmt.date(new Date(t).toISOString())));
  }
  [...bySeries(points)].forEach(([version, series], i) => {
    const color = VERSION_COLORS[i % VERSION_COLORS.length];
    const drawn = series.filter((p) => p.metrics[metric] !== null);
    const path = drawn.map((p, k) => `${k ? "L" : "M"}${x(Date.parse(p.as_of)).toFixed(1)} ${y(p.metrics[metric]).toFixed(1)}`);
    const dash = VERSION_DASHES[i % VERSION_DASHES.length];
    // The legend: the version's line (its colour and dash) beside its name in the text colour.
    const ly = PAD.top + 10 + 13 * i;
    svg.append(el("path", { d: path.join(" "), stroke: color, "stroke-dasharray": dash, class: "bt-line" }),
      el("line", { x1: width - PAD.right - 50, x2: width - PAD.right - 28, y1: ly - 4, y2: ly - 4,
        stroke: color, "stroke-dasharray": dash, class: "bt-swatch" }),
      el("text", { x: width - PAD.right, y: ly, "text-anchor": "end", class: "axis-label bt-legend" }, `v${version}`));
    for (const p of drawn) {
      svg.append(el("circle", { cx: x(Date.parse(p.as_of)), cy: y(p.metrics[metric]), r: 3.5, fill: color },
        el("title", {}, `v${version}, predicted ${fmt.date(p.as_of)}: ${label} ${fmt.num(p.metrics[metric], 4)}`)));
    }
  });
  container.replaceChildren(svg);
  const series = bySeries(points).size;
  chartKeys(container, `${fmt.label(label)}: ${values.length} points of ${series} model `
    + `version${series === 1 ? "" : "s"}, predicted from ${fmt.date(new Date(t0).toISOString())} `
    + `to ${fmt.date(new Date(t1).toISOString())}`);
}

// The newest point's deciles: mean prediction against the realized rate (the diagonal is
// perfect calibration).
function reliabilityChart(container, point) {
  const size = 170;
  const s = (v) => PAD.top + (1 - v) * (size - PAD.top - PAD.bottom);
  const sx = (v) => PAD.left + v * (size - PAD.left - PAD.right);
  const top = Math.min(1, Math.max(0.05, ...point.reliability.flatMap((b) => [b.mean_predicted, b.observed_rate])) * 1.1);
  const svg = el("svg", { width: size, height: size, viewBox: `0 0 ${size} ${size}`, role: "img",
    "aria-label": `Reliability of v${point.model_version}`, class: "chart-svg" });
  svg.append(el("line", { x1: sx(0), y1: s(0), x2: sx(1), y2: s(1), class: "bt-diagonal" }),
    el("text", { x: sx(0.5), y: size - 8, class: "axis-label", "text-anchor": "middle" }, "predicted"),
    el("text", { x: 8, y: PAD.top + 4, class: "axis-label" }, "realized"));
  for (const b of point.reliability) {
    svg.append(el("circle", { cx: sx(b.mean_predicted / top), cy: s(b.observed_rate / top), r: 3.5, class: "bt-dot" },
      el("title", {}, `decile ${b.bin}: predicted ${fmt.pct(b.mean_predicted)}, realized ${fmt.pct(b.observed_rate)} (${fmt.count(b.n)})`)));
  }
  container.replaceChildren(svg);
}

function cell(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function row(p) {
  const m = p.metrics;
  const tr = document.createElement("tr");
  const head = cell("th", p.target);
  head.scope = "row";
  tr.append(head, cell("td", fmt.date(p.as_of)), cell("td", `v${p.model_version}`),
    ...[m.roc_auc, m.log_loss, m.brier, m.ece].map((v) => cell("td", fmt.num(v, 4), "num")),
    cell("td", `${fmt.pct(m.mean_predicted)} / ${fmt.pct(m.base_rate)}`, "num"),
    cell("td", fmt.count(m.n), "num"));
  return tr;
}

// The table's one row when it has no results: headers alone read as a failed load.
function emptyRow(text) {
  const tr = document.createElement("tr");
  const td = cell("td", text, "empty");
  td.colSpan = 9;
  tr.append(td);
  return tr;
}

function emptyCharts(text) {
  for (const t of TARGETS) {
    for (const chart of ["auc", "ece", "rel"]) empty($(`#backtest-${chart}-${t}`), text);
    reliabilityFigures($(`#backtest-rel-${t}`), null);
  }
}

function render(results) {
  const body = $("#backtest-table tbody");
  const meta = $("#backtest-meta");
  if (!results.length) {
    const command = document.createElement("code");
    command.textContent = "journey backtest";
    meta.replaceChildren("No closed horizon scored yet: run ", command, " once a scoring run's horizon has passed.");
    body.replaceChildren(emptyRow("No backtest results yet."));
    emptyCharts("No data yet.");
    return;
  }
  const horizon = results[0].horizon_days;
  meta.textContent = `${results.length} (model, version, prediction time) scored against what happened in the ` +
    `${horizon} days after each prediction; newest ${fmt.date(results.at(-1).evaluated_at)}.`;
  for (const t of TARGETS) {
    const points = results.filter((r) => r.target === t);
    lineChart($(`#backtest-auc-${t}`), points, "roc_auc", `${t} realized AUC`);
    lineChart($(`#backtest-ece-${t}`), points, "ece", `${t} calibration error`);
    const newest = points.at(-1);
    if (newest) reliabilityChart($(`#backtest-rel-${t}`), newest);
    else empty($(`#backtest-rel-${t}`), "No data yet.");
    reliabilityFigures($(`#backtest-rel-${t}`), newest);
  }
  body.replaceChildren(...results.slice().reverse().map(row));
}

export async function loadBacktestPanel(api) {
  const meta = $("#backtest-meta");
  if (!meta) return;
  try {
    render((await (await api("backtest")).json()).results);
  } catch (err) {
    meta.textContent = `The backtest could not be loaded (${err.message}).`;
    $("#backtest-table tbody").replaceChildren(emptyRow("No backtest results to show."));
    emptyCharts("Not loaded.");
  }
}
