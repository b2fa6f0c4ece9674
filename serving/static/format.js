// Number formatting for the dashboard: the browser's locale, one place for every format.
// Money has no currency symbol: the event log's purchase values carry none, and the service
// has no setting naming one.

const LOCALE = undefined; // the browser's

const cache = new Map();
function nf(key, options) {
  let f = cache.get(key);
  if (!f) {
    f = new Intl.NumberFormat(LOCALE, options);
    cache.set(key, f);
  }
  return f;
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const DASH = "—";

function moneyOptions(digits, compact) {
  const base = { maximumFractionDigits: digits, minimumFractionDigits: 0 };
  if (compact) Object.assign(base, { notation: "compact", compactDisplay: "short" });
  return base;
}

export const fmt = {
  /** 12,345 */
  count(v) {
    return isNum(v) ? nf("count", { maximumFractionDigits: 0 }).format(v) : DASH;
  },
  /** 12.3 (a plain number with at most `digits` decimals) */
  num(v, digits = 1) {
    return isNum(v) ? nf(`num${digits}`, { maximumFractionDigits: digits }).format(v) : DASH;
  },
  /** 12.3% from a share 0.123 */
  pct(v, digits = 1) {
    return isNum(v)
      ? nf(`pct${digits}`, { style: "percent", minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v)
      : DASH;
  },
  /** 1,234,567 (money, whole units) */
  money(v) {
    return isNum(v) ? nf("money", moneyOptions(0, false)).format(v) : DASH;
  },
  /** 1.2M (money, short) */
  moneyShort(v) {
    if (!isNum(v)) return DASH;
    return Math.abs(v) < 10000 ? fmt.money(v) : nf("moneyShort", moneyOptions(1, true)).format(v);
  },
  /** +15 / −3 / 0 (a score whose sign is the point, e.g. NPS), at most `digits` decimals */
  signedNum(v, digits = 0) {
    return isNum(v)
      ? nf(`snum${digits}`, { maximumFractionDigits: digits, signDisplay: "exceptZero" }).format(v)
      : DASH;
  },
  /** +1,234 / −1,234 */
  signedCount(v) {
    return isNum(v) ? nf("scount", { maximumFractionDigits: 0, signDisplay: "exceptZero" }).format(v) : DASH;
  },
  signedMoney(v) {
    return isNum(v) ? nf("smoney", { ...moneyOptions(0, false), signDisplay: "exceptZero" }).format(v) : DASH;
  },
  signedMoneyShort(v) {
    if (!isNum(v)) return DASH;
    return Math.abs(v) < 10000 ? fmt.signedMoney(v)
      : nf("smoneyShort", { ...moneyOptions(1, true), signDisplay: "exceptZero" }).format(v);
  },
  /** +1.2 pp from a change of shares (+0.012) */
  signedPp(v, digits = 1) {
    if (!isNum(v)) return DASH;
    const s = nf(`spp${digits}`, { minimumFractionDigits: digits, maximumFractionDigits: digits, signDisplay: "exceptZero" })
      .format(v * 100);
    return `${s} pp`;
  },
  /** 4.2 days */
  days(v) {
    if (!isNum(v)) return DASH;
    const d = v < 10 ? fmt.num(v, 1) : fmt.count(v);
    return `${d} ${v === 1 ? "day" : "days"}`;
  },
  /** 2025-11-15 from an ISO timestamp (UTC date) */
  date(iso) {
    if (!iso) return DASH;
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return d.toISOString().slice(0, 10);
  },
  /** 2025-11-15 14:03 UTC */
  dateTime(iso) {
    if (!iso) return DASH;
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  },
  /** "acquisition_channel" -> "Acquisition channel" */
  label(name) {
    const s = String(name).replace(/_/g, " ");
    return s.charAt(0).toUpperCase() + s.slice(1);
  },
};
