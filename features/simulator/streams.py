"""Named random streams of the simulator: one number per (customer, day, replica, stream).

They live in one place so that no two draws share a stream by accident: renumbering any of
them changes every simulation, and the oracle replays old simulations by these numbers.
"""

from __future__ import annotations

(
    S_CONTACT,
    S_ACTION,
    S_SESSION,
    S_CHANNEL,
    S_ADS,
    S_CLICK,
    S_LOGIN,
    S_PRODUCTS,
    S_CART,
    S_CHECKOUT,
    S_BUY,
    S_VALUE,
    _S_VALUE2,
    S_TICKET,
    S_CSAT,
    S_REVIEW,
    S_REFERRAL,
    S_SURVEY,
    S_NPS,
    S_CHURN,
    S_TIME,
    S_GAP,
    S_OPEN,
    S_EMAIL_CLICK,
    S_TICKET_CHANNEL,
    S_ACTION_TIME,
    S_RATING,
) = range(27)
# Static streams drawn once per customer.
(P_TYPE, P_REGION, P_DEVICE, P_ACQ, P_ARRIVAL, P_ENGAGE, _P_ENGAGE2) = range(7)
