// The charts' figures without a mouse. A chart's tooltips are the <title>s of its marks (bars,
// points, flows, nodes), and the browser shows those on hover only. Here every such mark is
// reachable by keyboard, yet a chart is a single Tab stop (a roving tabindex: the arrow keys
// move between its marks, and Tab leaves it), shows the same text at the mark while it has the
// keyboard's focus, and is named by that text for a screen reader. Mouse users see no change:
// their tooltip stays the browser's own.

const STEP = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
const GAP = 8; // px between the tooltip and its mark, or the viewport's edge

let tip = null; // one tooltip for the page: one mark has the focus at a time
let tipMark = null;
// The chart and mark that had the keyboard: a redrawing (a resize, a zoom) replaces the marks,
// and the keyboard would otherwise drop to the page's top.
let held = null;
const charts = new WeakMap(); // <svg> -> its marks, in reading order
const wired = new WeakSet(); // chart containers listening for the keyboard

/** The text of a mark's tooltip: what a mouse reads on hover. */
function tooltipText(mark) {
  return mark.querySelector(":scope > title")?.textContent ?? "";
}

/** Make the marks of the chart drawn in `container` readable without a mouse. `summary` names
 * the chart for a screen reader (what it shows, how many marks, its headline); `order` may sort
 * the marks (default: the drawing's order). */
export function chartKeys(container, summary, order = (marks) => marks) {
  if (tipMark && !tipMark.isConnected) hide();
  const svg = container.querySelector("svg");
  const marks = svg ? order([...svg.querySelectorAll("title")].map((t) => t.parentElement)
    .filter((m) => m !== svg)) : [];
  if (!marks.length) return;
  // role=img would make the marks presentational (hidden from assistive tech): the chart is
  // a graphics document of graphics symbols instead (WAI-ARIA Graphics).
  svg.setAttribute("role", "graphics-document");
  svg.setAttribute("aria-roledescription", "chart");
  if (summary) svg.setAttribute("aria-label", summary);
  svg.setAttribute("aria-description", "Arrow keys move between its figures.");
  // Each mark is named by its <title>, the tooltip's text (SVG-AAM): an aria-label as well
  // would turn the title into its description, and a screen reader would say it twice.
  marks.forEach((mark, i) => {
    // A mark holding marks (a funnel row and its drop-off) is a group, whose children stay
    // readable; a symbol's children are presentational.
    const holds = marks.some((m) => m !== mark && mark.contains(m));
    mark.setAttribute("role", holds ? "graphics-object" : "graphics-symbol");
    mark.setAttribute("tabindex", i ? "-1" : "0");
    mark.classList.add("chart-mark");
  });
  charts.set(svg, marks);
  if (!wired.has(container)) wire(container);
  // A redrawing of the chart the keyboard was in: its focus went with the old marks, to the
  // page's body; it comes back to the mark at the same place.
  const active = document.activeElement;
  if (held && held.container === container && (!active || active === document.body)) {
    marks[Math.min(held.index, marks.length - 1)].focus({ preventScroll: true });
  }
}

// On the container, once: its drawings come and go. (Not on the <svg>: Chromium makes an SVG
// element with focus listeners a Tab stop of its own.)
function wire(container) {
  wired.add(container);
  const marksOf = (e) => charts.get(e.target.closest?.("svg")) || [];
  container.addEventListener("keydown", (e) => onKey(e, marksOf(e)));
  container.addEventListener("focusin", (e) => {
    const marks = marksOf(e);
    const i = marks.indexOf(e.target);
    if (i < 0) return;
    // Roving tabindex: Tab comes back to the mark last read, not to the first.
    marks.forEach((m) => m.setAttribute("tabindex", m === e.target ? "0" : "-1"));
    held = { container, index: i };
    // :focus-visible, not any focus: a click focuses a mark too, and a mouse has its tooltip.
    if (e.target.matches(":focus-visible")) show(e.target);
  });
  container.addEventListener("focusout", () => {
    hide();
    // Forgotten once the focus has settled outside the chart: a redrawing removes the focused
    // mark (a focusout, in Chromium) and puts the focus back within the same script.
    queueMicrotask(() => {
      if (held?.container === container && !container.contains(document.activeElement)) held = null;
    });
  });
}

function onKey(e, marks) {
  const i = marks.indexOf(e.target);
  if (i < 0 || e.altKey || e.ctrlKey || e.metaKey) return;
  let next = null;
  if (e.key in STEP) next = Math.min(marks.length - 1, Math.max(0, i + STEP[e.key]));
  else if (e.key === "Home") next = 0;
  else if (e.key === "End") next = marks.length - 1;
  else if (e.key === "Escape" && tipMark) hide(); // WCAG 1.4.13: dismissed, focus kept
  if (next === null) return;
  e.preventDefault(); // no page scroll
  if (next === i) show(marks[i]); // at an end: the tooltip again (after Escape, say)
  else marks[next].focus();
}

function show(mark) {
  if (!tip) {
    tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.setAttribute("aria-hidden", "true"); // the mark's own name says it
    document.body.append(tip);
  }
  tipMark = mark;
  tip.textContent = tooltipText(mark);
  tip.hidden = false;
  // Above the mark, centred, inside the viewport's width; below when the sticky top bar or the
  // viewport's top would cover it. In the document's coordinates: it stays on a scrolling page.
  const r = mark.getBoundingClientRect();
  const w = tip.offsetWidth, h = tip.offsetHeight;
  const right = document.documentElement.clientWidth - w - GAP;
  const left = Math.max(GAP, Math.min(right, r.left + r.width / 2 - w / 2));
  const ceiling = Math.max(0, document.querySelector(".topbar")?.getBoundingClientRect().bottom ?? 0);
  const top = r.top - h - GAP >= ceiling ? r.top - h - GAP : r.bottom + GAP;
  tip.style.left = `${Math.round(left + window.scrollX)}px`;
  tip.style.top = `${Math.round(top + window.scrollY)}px`;
}

function hide() {
  if (tip) tip.hidden = true;
  tipMark = null;
}
