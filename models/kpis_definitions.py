"""The words of each journey KPI, as ``kpis.json`` and ``GET /v1/kpis`` give them
(``models.kpis`` computes them)."""

from __future__ import annotations

DEFINITIONS = {
    "customers": "customers with any event in the period (the whole history before as_of; "
                 "for months, the month)",
    "conversion_rate": "customers with a purchase in the period / the period's customers "
                       "(Wilson 95 %)",
    "retention_rate": "survival over a window: buyers active at its start (a purchase before "
                      "it and activity in the retention_days before it) who are still active "
                      "at its end (activity in the retention_days before the end) / the "
                      "buyers active at its start (Wilson 95 %). Window: the last "
                      "retention_days before as_of (groups: customers as labelled now); for "
                      "a month, the month. Null when no buyer was active at its start",
    "repeat_purchase_rate": "the period's buyers who bought at 2+ different times before its "
                            "end / the period's buyers (Wilson 95 %)",
    "funnel": "customers reaching stage k or later in the period / those reaching k-1 (Wilson)",
    "clv": "V x L: what an active buyer is expected to spend over the rest of their "
           "lifetime. V = revenue per active buyer-year: the group's revenue in the period / "
           "the time its buyers were active in the period (active as for the retention rate: "
           "a purchase before and activity in the retention_days before; a lapsed buyer's "
           "time counts again only once they come back). L = an active buyer's expected "
           "lifetime, (window/365) / (1 - retention rate) years, capped at clv_years, the "
           "window being the retention's (retention_days; a month's length for a month). V "
           "and the CLV are null when no conversion before as_of carries a value (no revenue "
           "known) or when the group had no active buyer in the period; L and the CLV when "
           "the retention rate is",
    "csat": "every scored support ticket in the period: mean (normal approx. 95 %) and share "
            ">= satisfied_min (Wilson)",
    "nps": "latest answer per customer in the period: 100 x (promoters 9-10 - detractors 0-6) "
           "/ answers; 95 %: 100 x 1.96 x sqrt((p + d - (p - d)^2) / n)",
    "month": "the same definitions with the period [month start, min(month end, as_of)); a "
             "month without events has a row when buyers were active at its start",
}
