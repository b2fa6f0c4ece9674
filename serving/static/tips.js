// The page's explanations for a keyboard and a screen reader too. They were `title`
// attributes (what a KPI tile counts, what a segment's top-action share is of, which test gave a
// p-value), and a browser shows those on a mouse's hover only: the keyboard never reaches a
// tile or a cell, so neither a sighted keyboard user nor a screen reader heard them.
//
// Each is now a role=tooltip element (WAI-ARIA tooltip pattern) that describes the element the
// keyboard focuses (aria-describedby), shown at its anchor while the pointer is over the anchor
// or the keyboard is on the element, and hidden with Escape. WCAG 1.4.13: dismissable (Escape),
// hoverable (the pointer may move onto it) and persistent (until then). Where many elements
// have one (a table's cells, the KPI tiles) they share one Tab stop, a roving tabindex whose
// arrow keys move between them, as the charts' marks do (chart-focus.js): the keyboard is not
// walked through dozens of stops to pass a table.

const GAP = 6; // px between a tooltip and its anchor, or the viewport's edge
const HIDE_MS = 300; // the pointer's time to cross the gap onto the tooltip (hoverable)
// Elements the keyboard reaches already: they are described, not made a Tab stop.
const REACHABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
const STEP = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };

let count = 0;
let layer = null; // the tooltips' box: outside every card, so no overflow cuts them
let shown = null; // one tooltip at a time
let hideTimer = 0;
let sweeping = false;
const owners = new WeakMap(); // tooltip -> { trigger, anchor }
const groups = new WeakMap(); // roving container -> its items, in reading order

/** Give `trigger` the explanation `text`: a tooltip describing it, shown at `anchor` (default:
 * the trigger) while the trigger has the keyboard's focus or, with `hover`, while the pointer
 * is over the anchor. A trigger the keyboard cannot reach becomes a Tab stop. Call it and put
 * the trigger in the page in the same task: tooltips of triggers no longer in it are dropped
 * when the task ends. */
export function tip(trigger, text, { anchor = trigger, hover = true } = {}) {
  if (!layer) {
    layer = document.createElement("div");
    layer.className = "tips";
    document.body.append(layer);
  }
  const el = document.createElement("div");
  el.id = `tip-${++count}`;
  el.className = "tip";
  el.setAttribute("role", "tooltip");
  el.hidden = true;
  el.textContent = text;
  layer.append(el);
  owners.set(el, { trigger, anchor });
  if (hover) anchor.dataset.tip = el.id;
  // The tooltip first (what this element is), then any description it had (what to do).
  const others = (trigger.getAttribute("aria-describedby") || "").split(/\s+/)
    .filter((id) => id && !id.startsWith("tip-"));
  trigger.setAttribute("aria-describedby", [el.id, ...others].join(" "));
  if (!trigger.matches(REACHABLE)) {
    trigger.tabIndex = 0;
    trigger.classList.add("tip-stop");
  }
  if (!sweeping) {
    sweeping = true;
    queueMicrotask(sweep);
  }
  return el;
}

/** Turn every `title` under `root` into a tooltip (see `tip`). With `hint`, the elements that
 * had to become Tab stops for it (a table's cells) share one instead, and `hint` tells a
 * screen reader how to move between them. */
export function tipTitles(root, hint = "") {
  for (const el of root.querySelectorAll("[title]")) {
    if (!(el instanceof HTMLElement)) continue; // an SVG's <title>s are chart-focus.js's
    const text = el.title;
    el.removeAttribute("title"); // else the browser's own tooltip doubles ours on hover
    tip(el, text);
  }
  if (hint) rove(root, [...root.querySelectorAll(".tip-stop")], hint);
}

/** One Tab stop for `items` (inside `container`), the arrow keys, Home and End moving between
 * them: in a table, up and down keep the column. Called again when the items are drawn anew. */
export function rove(container, items, hint = "") {
  if (!items.length) return;
  const active = items.find((el) => el === document.activeElement) || items[0];
  for (const el of items) {
    el.tabIndex = el === active ? 0 : -1;
    el.classList.add("tip-stop"); // its focus ring; an item without a tooltip too
  }
  if (hint) container.setAttribute("aria-description", hint);
  if (!groups.has(container)) {
    container.addEventListener("keydown", onRoveKey);
    container.addEventListener("focusin", (e) => {
      const list = groups.get(container);
      // Tab comes back to the item last read, not to the first.
      if (list.includes(e.target)) for (const el of list) el.tabIndex = el === e.target ? 0 : -1;
    });
  }
  groups.set(container, items);
}

function onRoveKey(e) {
  const items = groups.get(e.currentTarget) || [];
  const i = items.indexOf(e.target);
  if (i < 0 || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
  let next;
  if (e.key === "Home") next = 0;
  else if (e.key === "End") next = items.length - 1;
  else if (!(e.key in STEP)) return;
  else if ((e.key === "ArrowUp" || e.key === "ArrowDown") && e.target instanceof HTMLTableCellElement) {
    next = sameColumn(items, i, STEP[e.key]);
  } else next = Math.min(items.length - 1, Math.max(0, i + STEP[e.key]));
  e.preventDefault(); // no page scroll
  if (next === i) showFor(e.target); // at an end: the tooltip again (after Escape, say)
  else items[next].focus();
}

/** The item in the nearest row above (step -1) or below (+1) in the same column, else `i`. */
function sameColumn(items, i, step) {
  const cell = items[i];
  for (let j = i + step; j >= 0 && j < items.length; j += step) {
    const c = items[j];
    if (c.parentElement !== cell.parentElement && c.cellIndex === cell.cellIndex) return j;
  }
  return i;
}

/** Drop the tooltips of triggers no longer in the page (a table drawn anew). */
function sweep() {
  sweeping = false;
  for (const el of [...layer.children]) {
    if (owners.get(el)?.trigger.isConnected) continue;
    if (el === shown) hide();
    el.remove();
  }
}

function tipOf(trigger) {
  const id = (trigger.getAttribute?.("aria-describedby") || "").split(/\s+/)
    .find((x) => x.startsWith("tip-"));
  return id ? document.getElementById(id) : null;
}

function showFor(trigger) {
  const el = tipOf(trigger);
  if (el) show(el);
}

function show(el) {
  clearTimeout(hideTimer);
  if (shown && shown !== el) shown.hidden = true;
  shown = el;
  el.hidden = false;
  // Below the anchor, from its left edge, inside the viewport's width; above it when the
  // viewport's bottom would cut it (and the sticky top bar would not). In the document's
  // coordinates: it stays with its anchor on a scrolling page.
  const r = owners.get(el).anchor.getBoundingClientRect();
  const w = el.offsetWidth, h = el.offsetHeight;
  const left = Math.max(GAP, Math.min(document.documentElement.clientWidth - w - GAP, r.left));
  const ceiling = Math.max(0, document.querySelector(".topbar")?.getBoundingClientRect().bottom ?? 0);
  const below = r.bottom + GAP + h <= window.innerHeight - GAP || r.top - GAP - h < ceiling;
  const top = below ? r.bottom + GAP : r.top - GAP - h;
  el.style.left = `${Math.round(left + window.scrollX)}px`;
  el.style.top = `${Math.round(top + window.scrollY)}px`;
}

function hide() {
  clearTimeout(hideTimer);
  if (shown) shown.hidden = true;
  shown = null;
}

function hideSoon() {
  clearTimeout(hideTimer);
  hideTimer = setTimeout(hide, HIDE_MS);
}

// Listened to on the document, once: triggers come and go with every table drawn.
document.addEventListener("focusin", (e) => {
  // :focus-visible, not any focus: a click focuses a tile too, and the pointer has its
  // tooltip by hovering (one left behind after a click would cover the page).
  const el = tipOf(e.target);
  if (el && e.target.matches(":focus-visible")) show(el);
});
document.addEventListener("focusout", (e) => {
  if (shown && owners.get(shown)?.trigger === e.target) hide();
});
document.addEventListener("mouseover", (e) => {
  const t = e.target;
  if (!(t instanceof Element)) return;
  if (shown && shown.contains(t)) clearTimeout(hideTimer); // onto the tooltip: it stays
  const anchor = t.closest("[data-tip]");
  const el = anchor && document.getElementById(anchor.dataset.tip);
  if (el) show(el);
});
document.addEventListener("mouseout", (e) => {
  if (!shown) return;
  const to = e.relatedTarget;
  const anchor = owners.get(shown)?.anchor;
  const from = e.target instanceof Element ? e.target : null;
  const inside = (n) => n instanceof Node && (shown.contains(n) || anchor?.contains(n));
  // Only the pointer leaving the anchor or the tooltip hides it; not the keyboard's tooltip.
  if (from && inside(from) && !inside(to) && anchor?.dataset.tip === shown.id) hideSoon();
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && shown) hide(); // the focus stays where it is
});
window.addEventListener("resize", hide);
