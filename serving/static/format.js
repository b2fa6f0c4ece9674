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

function moneyOptions(digits) {
  return { maximumFractionDigits: digits, minimumFractionDigits: 0 };
}

/** Rounded to `digits` decimals, halves away from zero (as Intl rounds what it shows). */
function rounded(v, digits) {
  const m = 10 ** digits;
  return (Math.sign(v) * Math.round(Math.abs(v) * m)) / m;
}

// Short money by our own thresholds, not Intl's compact notation: that one does not shorten
// thousands in every locale (de-DE wrote 260.028,6, wider than its tile). Digits and separators
// stay the browser's locale; the unit letters are K, M and B in every one. Three significant
// digits at most: 36.7K, 260K, 4.8M.
const UNITS = [[1e3, "K"], [1e6, "M"], [1e9, "B"]];
const SHORT_FROM = 10000; // below it, whole units fit a tile: 9,876

function shortParts(v) {
  if (Math.abs(v) < SHORT_FROM) return { value: rounded(v, 0), digits: 0, unit: 1, suffix: "" };
  for (let i = 0; ; i++) {
    const [unit, suffix] = UNITS[i];
    const scaled = v / unit;
    const digits = Math.abs(scaled) < 99.95 ? 1 : 0;
    const value = rounded(scaled, digits);
    // 999,960 is "1M", not "1000K"
    if (Math.abs(value) < 1000 || i === UNITS.length - 1) return { value, digits, unit, suffix };
  }
}

function short(v, signed) {
  const p = shortParts(v);
  const options = { ...moneyOptions(p.digits), ...(signed ? { signDisplay: "exceptZero" } : {}) };
  return `${nf(`short${p.digits}${signed}`, options).format(p.value)}${p.suffix}`;
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
  /** 3.70 (exactly `digits` decimals: the ends of an interval read alike, 3.63–3.70) */
  fixed(v, digits = 2) {
    return isNum(v)
      ? nf(`fixed${digits}`, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v)
      : DASH;
  },
  /** 1,234,567 (money, whole units) */
  money(v) {
    return isNum(v) ? nf("money", moneyOptions(0)).format(v) : DASH;
  },
  /** 9,876 / 36.7K / 260K / 4.8M (money, short in every locale) */
  moneyShort(v) {
    return isNum(v) ? short(v, false) : DASH;
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
    return isNum(v) ? nf("smoney", { ...moneyOptions(0), signDisplay: "exceptZero" }).format(v) : DASH;
  },
  signedMoneyShort(v) {
    return isNum(v) ? short(v, true) : DASH;
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
  /** The value a change shows, rounded as its format rounds it (`kind`: count, money,
   * moneyShort or pp): its colour and arrow follow what is read, so a "0.0 pp" is neither
   * good nor bad news whatever the unrounded change. */
  shown(kind, v) {
    if (!isNum(v)) return v;
    if (kind === "pp") return rounded(v * 100, 1) / 100;
    if (kind === "moneyShort") {
      const p = shortParts(v);
      return p.value * p.unit;
    }
    return rounded(v, 0);
  },
  /** "acquisition_channel" -> "Acquisition channel" */
  label(name) {
    const s = String(name).replace(/_/g, " ");
    return s.charAt(0).toUpperCase() + s.slice(1);
  },
};
