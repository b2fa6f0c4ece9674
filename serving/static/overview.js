// The first view's overview, from one pre-aggregated answer (dashboard/data): the snapshot's
// dates, the KPI tiles with their change since the previous snapshot, the journey map's notes
// and every chart, each with a table of its figures (charts' text alternative).

import { fmt } from "./format.js";
import * as charts from "./charts.js";
import * as figures from "./chart-figures.js";
import { $, esc, state, TIER_ORDER } from "./state.js";
import { rove, tip } from "./tips.js";

/** Keep the answer and what the rest of the page reads from it (dimensions, stage order). */
export function renderOverview(data) {
  state.data = data;
  state.dims = data.dimensions || {};
  const jm = data.journey_map;
  const funnelStages = jm && Array.isArray(jm.funnel) ? jm.funnel.map((r) => r.stage) : [];
  state.stages = funnelStages.length ? funnelStages : (state.dims.stage || []);
  // Keep only cuts and filters this snapshot knows (a reload may bring other dimensions).
  state.by = state.by.filter((d) => d in state.dims);
  for (const d of Object.keys(state.filters)) {
    if (!(d in state.dims)) delete state.filters[d];
  }
  renderSnapshotMeta(data.snapshot);
  renderKpis(data);
  renderJourneyMeta(jm);
  renderTiersMeta(data.snapshot);
  const models = Object.entries(data.snapshot.models || {}).map(([k, v]) => `${k} v${v}`).join(" · ");
  $("#foot-models").textContent = models ? `Models: ${models}` : "";
}

function snapshotTime(id) {
  // Snapshot ids are their scoring time: 20251115T120301123456Z
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})/.exec(id || "");
  return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]} UTC` : id;
}

function renderSnapshotMeta(snap) {
  $("#page-title").textContent = `Marketer dashboard: scores as of ${fmt.date(snap.as_of)}`;
  const parts = [`Scores as of <b>${esc(fmt.date(snap.as_of))}</b>`, `scored ${esc(fmt.dateTime(snap.scored_at))}`];
  parts.push(snap.previous ? `Δ vs the previous snapshot, scored ${esc(snapshotTime(snap.previous))}`
    : "first snapshot: no changes yet");
  // The dots only separate what is read anyway: a screen reader skips them.
  $("#snapshot-meta").innerHTML = parts.join('<span class="sep" aria-hidden="true">·</span>');
}

function sum(rows, f) {
  return rows.reduce((a, r) => a + (f(r) || 0), 0);
}

/** A money sum, null when rows have it but none knows it (a store whose conversions carry no
 * value): the tile then shows a dash, not a 0 that reads as a real figure. */
function knownSum(rows, f) {
  return !rows.length || rows.some((r) => typeof f(r) === "number") ? sum(rows, f) : null;
}

/** Figures of the whole snapshot from the tiers (every customer has one tier). */
function overall(tiers) {
  const n = sum(tiers, (t) => t.customers);
  const rar = knownSum(tiers, (t) => t.revenue_at_risk);
  const risk = n ? sum(tiers, (t) => t.mean_risk * t.customers) / n : null;
  const high = tiers.find((t) => t.key.tier === "high");
  const highN = high ? high.customers : 0;
  const out = { n, rar, risk, highN, highShare: n ? highN / n : null, change: null };
  if (tiers.some((t) => t.change)) {
    const prevN = n - sum(tiers, (t) => t.change?.customers);
    const prevRiskSum = sum(tiers, (t) => (t.change ? (t.mean_risk - t.change.mean_risk) * (t.customers - t.change.customers) : 0));
    const prevHigh = high ? highN - (high.change?.customers || 0) : 0;
    out.change = {
      n: n - prevN,
      rar: rar === null ? null : knownSum(tiers, (t) => t.change?.revenue_at_risk),
      risk: prevN > 0 && risk !== null ? risk - prevRiskSum / prevN : null,
      highShare: prevN > 0 && out.highShare !== null ? out.highShare - prevHigh / prevN : null,
    };
  }
  return out;
}

function rateText(rate) {
  if (!rate || rate.value === null || rate.value === undefined) return null;
  const ci = rate.ci95 ? ` · 95% CI ${fmt.pct(rate.ci95[0])}–${fmt.pct(rate.ci95[1])}` : "";
  return `${fmt.count(rate.count)} of ${fmt.count(rate.of)}${ci}`;
}

function renderKpis(data) {
  const o = overall(data.tiers || []);
  const kpis = data.journey_map?.kpis || {};
  const params = data.journey_map?.params || {};
  const snap = data.snapshot;
  const vs = snap.previous ? `Change since the previous snapshot (scored ${snapshotTime(snap.previous)})` : "";
  const tiles = [
    {
      id: "snapshot", label: "Scores as of", value: fmt.date(snap.as_of), raw: snap.as_of,
      sub: snap.previous ? "▲▼ vs previous snapshot" : "first snapshot", title: vs,
    },
    {
      id: "customers", label: "Customers", value: fmt.count(o.n), raw: o.n,
      delta: o.change && { text: fmt.signedCount(o.change.n), v: o.change.n, kind: "count", riseIsBad: null },
    },
    {
      id: "revenue-at-risk", label: "Revenue at risk", value: fmt.moneyShort(o.rar), raw: o.rar,
      title: `${fmt.money(o.rar)}: expected value × churn probability, summed`,
      delta: o.change && o.change.rar !== null
        && { text: fmt.signedMoneyShort(o.change.rar), v: o.change.rar, kind: "moneyShort", riseIsBad: true },
    },
    {
      id: "high-risk", label: "High-risk share", value: fmt.pct(o.highShare), raw: o.highShare,
      sub: `${fmt.count(o.highN)} customers`,
      delta: o.change && o.change.highShare !== null
        && { text: fmt.signedPp(o.change.highShare), v: o.change.highShare, kind: "pp", riseIsBad: true },
    },
    {
      id: "mean-risk", label: "Mean risk", value: fmt.pct(o.risk), raw: o.risk,
      delta: o.change && o.change.risk !== null && { text: fmt.signedPp(o.change.risk), v: o.change.risk, kind: "pp", riseIsBad: true },
    },
  ];
  const rate = (id, label, r, sub) => {
    if (!r || r.value === null || r.value === undefined) return;
    tiles.push({ id, label, value: fmt.pct(r.value), raw: r.value, sub, title: rateText(r) });
  };
  const conv = kpis.conversion_rate;
  rate("conversion", "Conversion", conv, conv ? `${fmt.count(conv.count)} of ${fmt.count(conv.of)} bought` : "");
  rate("retention", "Retention", kpis.retention_rate, `buyers active ${params.retention_days ?? 90} days ago, still active`);
  rate("repeat", "Repeat rate", kpis.repeat_purchase_rate, "buyers with 2+ orders");
  const csat = kpis.csat;
  if (csat && csat.count > 0 && csat.satisfied && csat.satisfied.value !== null) {
    tiles.push({
      id: "csat", label: "CSAT (satisfied)", value: fmt.pct(csat.satisfied.value), raw: csat.satisfied.value,
      sub: `satisfied · mean ${fmt.fixed(csat.mean, 2)}`,
      title: `${fmt.count(csat.satisfied.count)} of ${fmt.count(csat.count)} support ratings at or above `
        + `${params.satisfied_min ?? 4}; mean rating ${fmt.fixed(csat.mean, 2)}`,
    });
  }
  const nps = kpis.nps;
  if (nps && nps.count > 0 && nps.score !== null && nps.score !== undefined) {
    tiles.push({
      id: "nps", label: "NPS", value: fmt.signedNum(nps.score, 0), raw: nps.score,
      sub: `${fmt.count(nps.count)} answers`,
      title: `${fmt.count(nps.promoters)} promoters, ${fmt.count(nps.passives)} passives, `
        + `${fmt.count(nps.detractors)} detractors (each customer's latest answer)`,
    });
  }
  const box = $("#kpis");
  const drawn = tiles.map((t) => kpiTile(t, vs));
  box.replaceChildren(...drawn);
  // One Tab stop for the tiles, the arrow keys between them (as in a chart): ten stops before
  // the charts would be ten more presses to pass figures the eye takes in at a glance.
  rove(box, drawn, "Arrow keys move between the figures.");
}

function kpiTile(t, vs) {
  const tile = document.createElement("div");
  tile.className = `kpi kpi-${t.id}`;
  tile.dataset.testid = `kpi-${t.id}`;
  tile.id = `kpi-${t.id}`;
  // A Tab stop (tips.js) named by its own three lines: a group's name is not its text.
  tile.setAttribute("role", "group");
  tile.setAttribute("aria-labelledby", ["label", "value", "sub"].map((p) => `kpi-${t.id}-${p}`).join(" "));
  const label = document.createElement("div");
  label.className = "kpi-label";
  label.id = `kpi-${t.id}-label`;
  label.textContent = t.label;
  const value = document.createElement("div");
  value.className = "kpi-value";
  value.id = `kpi-${t.id}-value`;
  value.textContent = t.value;
  value.dataset.value = t.raw === null || t.raw === undefined ? "" : String(t.raw);
  tile.append(label, value);
  const sub = document.createElement("div");
  sub.className = "kpi-sub";
  sub.id = `kpi-${t.id}-sub`;
  if (t.delta) {
    const d = document.createElement("span");
    const shown = fmt.shown(t.delta.kind, t.delta.v); // colour and arrow: what is read
    d.className = charts.deltaClass(shown, t.delta.riseIsBad);
    d.dataset.value = String(t.delta.v);
    // The arrow repeats the sign for the eye; a screen reader reads the signed figure and
    // what it is a change of (the tile's tooltip says since when).
    const mark = document.createElement("span");
    mark.setAttribute("aria-hidden", "true");
    mark.textContent = arrow(shown);
    const since = document.createElement("span");
    since.className = "visually-hidden";
    since.textContent = " since the previous snapshot";
    d.append(mark, ` ${t.delta.text}`, since);
    sub.append(d);
    if (t.sub) sub.append(" · ", t.sub);
  } else if (t.sub) {
    sub.textContent = t.sub;
  }
  tile.append(sub);
  // The tile's explanation and, for a change, since when: one tooltip for the whole tile
  // (the change's own, on its few characters, was out of a keyboard's reach too).
  const note = [t.title, t.delta ? vs : ""].filter(Boolean).join("\n");
  if (note) tip(tile, note);
  return tile;
}

function arrow(v) {
  return !v ? "■" : v > 0 ? "▲" : "▼";
}

function renderJourneyMeta(jm) {
  const meta = $("#journey-meta");
  const drops = $("#drop-offs");
  drops.replaceChildren();
  if (!jm) {
    meta.textContent = "This snapshot has no journey map.";
    return;
  }
  const p = jm.params || {};
  meta.textContent = `${fmt.count(jm.customers)} customers with ${fmt.count(jm.events)} events before ${fmt.date(jm.as_of)}`
    + (p.drop_off_days ? ` · dropped off = no activity for ${p.drop_off_days} days` : "")
    + (jm.no_stage ? ` · ${fmt.count(jm.no_stage)} with no stage yet` : "");
  const top = (jm.drop_offs || []).slice(0, 3);
  if (top.length) {
    const head = document.createElement("li");
    head.className = "drop-head";
    head.textContent = "Biggest drop-offs";
    drops.append(head);
  }
  for (const d of top) {
    const li = document.createElement("li");
    const b = document.createElement("b");
    b.textContent = d.stage;
    li.append(b, ` ${fmt.count(d.dropped)} dropped · ${fmt.pct(d.share_of_reached)} of those who reached it`);
    drops.append(li);
  }
}

function renderTiersMeta(snap) {
  const bands = snap.risk_bands || [];
  $("#tiers-meta").textContent = bands.length === 2
    ? `Calibrated churn probability: low < ${fmt.pct(bands[0], 0)} ≤ medium < ${fmt.pct(bands[1], 0)} ≤ high`
    : "Tiers of the calibrated churn probability";
}

function renderAttributionMeta(attr, lookback, contacts) {
  const meta = $("#attribution-meta");
  if (!attr) {
    meta.textContent = "";
    return;
  }
  const window = lookback ? `the last ${lookback} days` : "the whole history";
  meta.textContent = `Markov-chain removal effect (order 1) over ${fmt.count(attr.journeys)} journeys in ${window}, `
    + `${fmt.count(attr.total_conversions)} converted (${fmt.pct(attr.journeys ? attr.total_conversions / attr.journeys : null)})`
    + (contacts ? "; marketing contacts count as touchpoints." : ".");
}

/** Every chart, sized to its container (called on load and when the window is resized), and
 * the table of its figures beside it. */
export function redrawCharts() {
  const data = state.data;
  if (!data) return;
  const jm = data.journey_map;
  if (jm) {
    charts.funnelChart($("#funnel"), jm.funnel, jm.customers);
    figures.funnelFigures($("#funnel"), jm.funnel);
    charts.sankeyChart($("#sankey"), jm.flows, state.stages);
    figures.sankeyFigures($("#sankey"), jm.flows);
    const attr = jm.attribution || {};
    const chosen = state.attrBy === "channel" ? attr.by_channel : attr.by_touchpoint;
    charts.attributionChart($("#attribution"), chosen);
    figures.attributionFigures($("#attribution"), chosen, state.attrBy === "channel" ? "Channel" : "Touchpoint");
    renderAttributionMeta(chosen, attr.lookback_days, attr.include_contacts);
  } else {
    for (const id of ["#funnel", "#sankey", "#attribution"]) {
      charts.empty($(id), "No journey map in this snapshot: score again to compute one.");
      figures.figureTable($(id), null);
    }
  }
  charts.tiersChart($("#tiers"), data.tiers, TIER_ORDER);
  figures.tiersFigures($("#tiers"), data.tiers, TIER_ORDER);
  charts.stageTiersChart($("#stage-tiers"), data.stage_tiers, state.stages, TIER_ORDER);
  figures.stageTiersFigures($("#stage-tiers"), data.stage_tiers, state.stages, TIER_ORDER);
}

export function setAttribution(by) {
  state.attrBy = by;
  $("#attr-channel").setAttribute("aria-pressed", String(by === "channel"));
  $("#attr-touchpoint").setAttribute("aria-pressed", String(by !== "channel"));
  redrawCharts();
}
