// CSV written in the browser (the segment table's export) and saving a file the page holds.
// Same conventions as the service's customer export (GET segments/export), so both files open
// alike: UTF-8 with a byte-order mark (without it Excel reads non-ASCII persona or region names
// in the machine's code page), a header of snake_case names, every text quoted, numbers with a
// dot and a fixed number of decimals (no float noise such as 0.30000000000000004), empty cells
// for missing values.

const BOM = "\ufeff";

/** One cell: a number to `digits` decimals (trailing zeros dropped), text quoted. */
export function csvCell(v, digits) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return "";
    return digits === undefined ? String(v) : String(Number(v.toFixed(digits)));
  }
  return `"${defused(String(v)).replace(/"/g, '""')}"`;
}

// Text a spreadsheet would run as a formula (=, +, @, a tab or return, or - before anything but
// a number) gets a leading apostrophe: segment values come from ingested data, and a customer
// attribute such as =HYPERLINK(...) must stay text. The service's export does the same.
const FORMULA = /^([=+@\t\r]|-(?![0-9.]))/;

export function defused(text) {
  return FORMULA.test(text) ? `'${text}` : text;
}

/** The file's text: `columns` are {name, get(row), digits?}, one line per row. */
export function csvText(columns, rows) {
  const lines = [columns.map((c) => csvCell(c.name)).join(",")];
  for (const row of rows) lines.push(columns.map((c) => csvCell(c.get(row), c.digits)).join(","));
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
