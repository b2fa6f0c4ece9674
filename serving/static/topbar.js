// The sticky top bar covers the top of the viewport: scroll-padding-top (topbar.css) keeps what
// a fragment, an in-page link or the keyboard's focus scrolls into view below it. The bar's
// height is measured, not assumed: it wraps onto two or three lines in a narrow window, at a
// large zoom or with a long snapshot line, and grows when its "Change key" button appears.

const bar = document.querySelector(".topbar");
if (bar) {
  const root = document.documentElement.style;
  const measure = () => root.setProperty("--topbar-height", `${Math.ceil(bar.getBoundingClientRect().height)}px`);
  new ResizeObserver(measure).observe(bar);
  measure();
}
