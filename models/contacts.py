"""A customer's past contacts (the marketing actions in their history), as the contact policy
of ``models.arbitration`` reads them: the same for the service and for offline evaluation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from features.events import EventArrays
from features.spec import FeatureSpec
from models.arbitration_batch import Sent
from models.recommendation import Contact


def contacts_from_arrays(arrays: EventArrays | None, spec: FeatureSpec) -> list[Contact]:
    """Every event with an action counts toward caps; an action outside the spec's vocabulary
    (encoded as "other") counts only as a contact on its channel."""
    if arrays is None:
        return []
    return _sent(arrays, spec, np.flatnonzero(arrays.action >= 0)).contacts()


def sent_after(arrays: EventArrays, spec: FeatureSpec, after_us: int) -> Sent:
    """The contacts of customer-sorted arrays (a contact's row is its customer code) sent
    after ``after_us``, in one pass over the events with an action, for deciding a whole batch
    at once (``models.arbitration_batch``). With ``after_us`` the decision time minus the
    catalog's longest window (``Catalog.horizon_us``), every contact the policy counts is
    kept."""
    return _sent(arrays, spec, np.flatnonzero((arrays.action >= 0) & (arrays.ts > after_us)))


def _sent(arrays: EventArrays, spec: FeatureSpec, at: npt.NDArray[np.int64]) -> Sent:
    """The contacts of the events at ``at`` (events with an action), in that order."""
    known = set(spec.actions)
    return Sent(arrays.cust[at].astype(np.int64), arrays.action[at].astype(np.int64),
                arrays.channel[at].astype(np.int64), arrays.ts[at].astype(np.int64),
                tuple(a if a in known else None for a in spec.action_vocab),
                tuple(spec.channel_vocab))
