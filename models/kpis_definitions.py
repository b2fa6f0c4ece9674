"""The words of each journey KPI, as ``kpis.json`` and ``GET /v1/kpis`` give them
(``models.kpis`` computes them)."""

from __future__ import annotations

DEFINITIONS = {
    "customers": "customers with any event in the period (the whole history before as_of; "
                 "for months, the month)",
    "conversion_rate": "customers with a purchase in the period / the period's customers "
                       "(Wilson 95 %)",
    "retention_rate": "the period's customers with a purchase before its end who were active "
                      "in the retention_days before the end / the period's customers with a "
                      "purchase before its end (Wilson 95 %)",
    "repeat_purchase_rate": "the period's buyers who bought at 2+ different times before its "
                            "end / the period's buyers (Wilson 95 %)",
    "funnel": "customers reaching stage k or later in the period / those reaching k-1 (Wilson)",
    "clv": "V x L: V = revenue per customer-year in the period; L = (retention_days/365) / "
           "(1 - retention rate), capped at clv_years. V and the CLV are null when no "
           "conversion before as_of carries a value (no revenue known)",
    "csat": "every scored support ticket in the period: mean (normal approx. 95 %) and share "
            ">= satisfied_min (Wilson)",
    "nps": "latest answer per customer in the period: 100 x (promoters 9-10 - detractors 0-6) "
           "/ answers; 95 %: 100 x 1.96 x sqrt((p + d - (p - d)^2) / n)",
    "month": "the same definitions with the period [month start, min(month end, as_of))",
}
