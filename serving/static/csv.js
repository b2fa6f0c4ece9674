// CSV written in the browser (the segment table's export) and saving a file the page holds.
// Same conventions as the service's customer export (GET segments/export), so both files open
// alike: UTF-8 with a byte-order mark (without it Excel reads non-ASCII persona or region names
// in the machine's code page), a header of snake_case names, every text quoted, numbers with a
// dot and a fixed number of decimals (no float noise such as 0.30000000000000004), a missing
// number an empty cell, a missing text "(none)" (as the filters show it).

const BOM = "\ufeff";
export const NONE = "(none)";

/** One cell. A number column (`text` false) holds numbers only: `digits` decimals (trailing
 * zeros dropped), empty when missing. A text column holds text only: quoted, "(none)" when
 * missing, defused, whatever it looks like (an id "-2" is text too). */
export function csvCell(v, digits, text = typeof v === "string") {
  if (!text) {
    if (typeof v !== "number" || !Number.isFinite(v)) return "";
    return digits === undefined ? String(v) : String(Number(v.toFixed(digits)));
  }
  const s = v === null || v === undefined ? NONE : String(v);
  return `"${defused(s).replace(/"/g, '""')}"`;
}

// Text a spreadsheet would run as a formula (=, +, -, @, a tab or a return first: OWASP's rule)
// gets a leading apostrophe: segment values come from ingested data or a marketer, and a
// persona named -1+cmd|' /C calc'!A0 must stay text. Numbers never pass here (a number column
// writes numbers), so a negative change stays a number. The service's export does the same.
const FORMULA = /^[=+\-@\t\r]/;

export function defused(text) {
  return FORMULA.test(text) ? `'${text}` : text;
}

/** The file's text: `columns` are {name, get(row), digits?, text?} (text: a text column; else
 * a number one), one line per row. */
export function csvText(columns, rows) {
  const lines = [columns.map((c) => csvCell(c.name, undefined, true)).join(",")];
  for (const row of rows) lines.push(columns.map((c) => csvCell(c.get(row), c.digits, !!c.text)).join(","));
  return `${BOM}${lines.join("\n")}\n`;
}

/** A file name part: ASCII letters, digits and -_=+. only (as the service's export names). */
export function fileSafe(text) {
  return String(text).replace(/[^A-Za-z0-9\-_=+.]/g, "_");
}

/** Let the browser save `blob` as `name` (an object URL, revoked once the download started). */
export function saveFile(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}
