"""A customer's past contacts (the marketing actions in their history), as the contact policy
of ``models.arbitration`` reads them: the same for the service and for offline evaluation."""

from __future__ import annotations

import numpy as np

from features.events import EventArrays
from features.spec import FeatureSpec
from models.recommendation import Contact


def contacts_from_arrays(arrays: EventArrays | None, spec: FeatureSpec) -> list[Contact]:
    """Every event with an action counts toward caps; an action outside the spec's vocabulary
    (encoded as "other") counts only as a contact on its channel."""
    if arrays is None:
        return []
    actions, channels, known = spec.action_vocab, spec.channel_vocab, set(spec.actions)
    out = []
    for j in np.flatnonzero(arrays.action >= 0).tolist():
        name = actions[arrays.action[j]]
        out.append(Contact(name if name in known else None, channels[arrays.channel[j]],
                           int(arrays.ts[j])))
    return out
