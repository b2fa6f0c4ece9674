// Personas and journey KPIs: the served persona model's personas in plain words, and the
// newest snapshot's KPIs grouped by persona, stage, acquisition channel or month, each rate
// with its 95 % interval. Loaded after the first view (not part of its load time); `api` is
// the dashboard's call helper (same key, same errors).

import { fmt } from "./format.js";
import { tipTitles } from "./tips.js";

const $ = (sel) => document.querySelector(sel);
const GROUP_ORDER = ["persona", "stage", "acquisition_channel", "month"];

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// "12.3% (10.1–14.6%)": a rate and its interval; the title says how many of how many.
function rateCell(r) {
  if (!r || r.value === null || r.value === undefined) return `<td class="num">${fmt.pct(null)}</td>`;
  const ci = r.ci95 ? ` <span class="ci">${fmt.pct(r.ci95[0])}–${fmt.pct(r.ci95[1])}</span>` : "";
  return `<td class="num" title="${fmt.count(r.count)} of ${fmt.count(r.of)}">${fmt.pct(r.value)}${ci}</td>`;
}

// Two decimals throughout, so the mean and its interval's ends read alike (3.66, 3.63–3.70).
function csatCell(c) {
  if (!c || c.mean === null) return `<td class="num">${fmt.num(null)}</td>`;
  const ci = c.mean_ci95 ? ` <span class="ci">${fmt.fixed(c.mean_ci95[0], 2)}–${fmt.fixed(c.mean_ci95[1], 2)}</span>` : "";
  return `<td class="num" title="${fmt.count(c.count)} scored tickets">${fmt.fixed(c.mean, 2)}${ci}</td>`;
}

function npsCell(n) {
  if (!n || n.score === null) return `<td class="num">${fmt.num(null)}</td>`;
  const ci = n.ci95 ? ` <span class="ci">${fmt.signedNum(n.ci95[0], 0)} to ${fmt.signedNum(n.ci95[1], 0)}</span>` : "";
  const title = `${n.promoters} promoters, ${n.passives} passives, ${n.detractors} detractors`;
  return `<td class="num" title="${title}"><span class="nps-score">${fmt.signedNum(n.score, 0)}</span>${ci}</td>`;
}

function kpiRow(g, overall) {
  const name = g.partial ? `${g.group} (so far)` : g.group;
  return `<tr class="${overall ? "total" : ""}"><th scope="row">${esc(name)}</th>` +
    `<td class="num">${fmt.count(g.customers)}</td>` +
    rateCell(g.conversion_rate) + rateCell(g.retention_rate) + rateCell(g.repeat_purchase_rate) +
    `<td class="num" title="revenue per active buyer-year × an active buyer’s expected lifetime">${fmt.money(g.clv?.value)}</td>` +
    csatCell(g.csat) + npsCell(g.nps) + "</tr>";
}

function renderKpiTable(out) {
  const table = $("#kpi-table");
  table.dataset.by = out.by;
  table.querySelector("tbody").innerHTML = out.groups.map((g) => kpiRow(g, false)).join("");
  table.querySelector("tfoot").innerHTML = kpiRow({ ...out.overall, group: "All customers" }, true);
  // The cells' notes (how many of how many) and the CSAT header's: one Tab stop for the table.
  tipTitles(table, "Arrow keys move between the figures with a note.");
  const defs = out.definitions || {};
  const shown = { conversion_rate: "Conversion", retention_rate: "Retention", nps: "NPS" };
  $("#kpi-defs").textContent = Object.entries(shown)
    .filter(([k]) => defs[k]).map(([k, label]) => `${label}: ${defs[k]}`).join(" · ");
}

function renderGroupToggle(available, by, api) {
  const box = $("#kpi-by");
  const rank = (g) => (GROUP_ORDER.includes(g) ? GROUP_ORDER.indexOf(g) : GROUP_ORDER.length);
  const groups = [...available].sort((a, b) => rank(a) - rank(b));
  const hadFocus = box.contains(document.activeElement);
  box.replaceChildren(...groups.map((g) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = fmt.label(g);
    b.dataset.by = g;
    b.setAttribute("aria-pressed", String(g === by));
    b.addEventListener("click", () => loadKpis(api, g));
    return b;
  }));
  // The buttons are drawn anew: keep the keyboard on the one just pressed.
  if (hadFocus) box.querySelector(`button[data-by="${CSS.escape(by)}"]`)?.focus();
}

async function loadKpis(api, by) {
  const status = $("#kpi-status");
  status.textContent = "Loading…";
  try {
    const out = await (await api("kpis", by ? [["by", by]] : [])).json();
    renderGroupToggle(out.available, out.by, api);
    renderKpiTable(out);
    status.textContent = `Snapshot as of ${fmt.date(out.snapshot.as_of)}; 95 % intervals in grey.`;
  } catch (err) {
    status.textContent = `KPIs unavailable: ${err.message}`;
  }
}

function personaCard(p, total, windowDays) {
  const stage = p.typical_stage ? `${esc(p.typical_stage.stage)} (${fmt.pct(p.typical_stage.share, 0)})` : "—";
  const channels = p.channels.map((c) => `${esc(c.channel)} ${fmt.pct(c.share, 0)}`).join(", ") || "—";
  // The id is what `journey personas --rename ID NAME` takes (the panel's note says so).
  return `<article class="persona" data-testid="persona-${p.id}" data-id="${p.id}">` +
    `<h3><span class="persona-id" title="Persona id (journey personas --rename ${p.id} NAME)">ID ${p.id}</span> ` +
    `<span class="persona-name">${esc(p.name)}</span></h3>` +
    `<p class="persona-size">${fmt.count(p.customers)} customers · ${fmt.pct(p.customers / Math.max(total, 1))} of those assigned</p>` +
    `<ul class="persona-traits">${p.traits.map((t) => `<li>${esc(t)}</li>`).join("")}</ul>` +
    `<dl class="persona-facts"><dt>Typical stage</dt><dd>${stage}</dd>` +
    `<dt>Main channels</dt><dd>${channels}</dd>` +
    `<dt>Churn risk (mean)</dt><dd data-fact="churn">${fmt.pct(p.churn_mean)}</dd>` +
    `<dt>Expected value (per customer)</dt><dd data-fact="value">${fmt.money(p.expected_value_mean)}</dd>` +
    `<dt>Revenue, last ${windowDays} days (per customer)</dt><dd data-fact="revenue">${fmt.money(p.revenue_mean)}</dd></dl>` +
    "</article>";
}

async function loadPersonas(api) {
  const meta = $("#personas-meta");
  const box = $("#persona-cards");
  try {
    const out = await (await api("personas")).json();
    meta.textContent = `${out.k} personas (journey-personas v${out.version}, number chosen by ` +
      `${out.criterion.name || "the model's criterion"}); ${fmt.count(out.assigned)} of ` +
      `${fmt.count(out.customers)} customers assigned, the others (${esc(out.unassigned_name)}) ` +
      `have fewer than ${out.min_events} events in ${out.window_days} days. Rename one with ` +
      "journey personas --rename ID NAME. " +
      (out.scores_as_of ? `Churn risk and expected value: scores as of ${fmt.date(out.scores_as_of)}.`
        : "Churn risk and expected value: as when the personas were fitted (no score snapshot of this persona model yet).");
    box.innerHTML = out.personas.map((p) => personaCard(p, out.assigned, out.window_days)).join("");
    tipTitles(box); // each card's id: the command that renames it
  } catch (err) {
    box.replaceChildren();
    meta.textContent = err.status === 404
      ? "No persona model is served yet: fit one with journey personas; the KPIs are then grouped by persona too."
      : `Personas unavailable: ${err.message}`;
  }
}

/** Both panels; each reports its own failure in place (the rest of the page stays). */
export function loadPersonaPanels(api) {
  loadPersonas(api);
  loadKpis(api, null);
}
