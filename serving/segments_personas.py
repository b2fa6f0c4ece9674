"""A score snapshot's personas by id, under the names they have now.

A scoring run writes each customer's persona id (``persona_id``: 0..k-1, -1 unassigned, null
without a persona model) beside its name at the time (``persona``), and the names of every id
in the snapshot's meta (``persona_names``). A marketer may rename a persona afterwards
(``journey personas --rename``, ``<home>/personas/names.json``): segments, filters, KPIs,
exports and the persona cards read the ids and show the current names, so a rename shows at
once, everywhere, and a persona keeps its history (changes since the previous snapshot) under
its new name.

Snapshots scored before ids were written hold only names; their persona column's dictionary
is the names in id order, the unassigned customers' last (as the scorer wrote it), which gives
the ids back. Anything else (a foreign file) keeps the names it holds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from features.errors import ConfigError
from models.persona_params import REGISTERED_NAME as PERSONAS
from models.persona_words import UNASSIGNED_NAME, read_names

log = logging.getLogger("journey.serving")
PERSONA_ID = "persona_id"
NAMES_META = "persona_names"  # the names of ids 0..k-1 then the unassigned's, as scored
NAMES_FILE_META = "persona_names_file"  # where renames are read (a reader given none uses it)
NO_PERSONA = -2  # a customer without a persona value (no persona model scored it)
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SnapshotPersonas:
    """Per customer, a persona id (-1 unassigned, ``NO_PERSONA`` none), and each id's name."""

    version: str  # the persona model the snapshot was scored with
    ids: I64
    stored: tuple[str, ...]  # by id as scored, then the unassigned's
    names: tuple[str, ...]  # the same, with the renames made since

    def column(self) -> pa.DictionaryArray:
        """The persona column under the current names (indices are ids; unassigned last)."""
        k = len(self.names) - 1
        codes = np.where(self.ids >= 0, self.ids, k).astype(np.int32)
        return pa.DictionaryArray.from_arrays(
            pa.array(codes, pa.int32(), mask=self.ids == NO_PERSONA),
            pa.array(self.names, pa.string()))

    def name_of(self, pid: int) -> str:
        return self.names[pid] if 0 <= pid < len(self.names) - 1 else self.names[-1]

    def renamed(self, label: str) -> str:
        """The current name of a persona named ``label`` when the snapshot was scored."""
        return self.names[self.stored.index(label)] if label in self.stored else label

    def means(self, churn: pa.ChunkedArray | pa.Array, value: pa.ChunkedArray | pa.Array
              ) -> dict[int, dict[str, float | None]]:
        """Each persona id's mean churn probability and expected value (ids with customers;
        None when no customer has one: no conversion in the store carried a value)."""
        k = len(self.names) - 1
        mine = (self.ids >= 0) & (self.ids < k)
        ids = self.ids[mine]
        n = np.bincount(ids, minlength=k)
        out: dict[int, dict[str, float | None]] = {}
        for name, col in (("churn_mean", churn), ("expected_value_mean", value)):
            x = np.nan_to_num(_floats(col)[mine])
            total = np.bincount(ids, weights=x, minlength=k)
            known = not len(col) or col.null_count < len(col)  # all null: no value known
            for pid in np.flatnonzero(n).tolist():
                out.setdefault(pid, {})[name] = float(total[pid] / n[pid]) if known else None
        return out


def snapshot_personas(meta: Mapping[str, Any], table: pa.Table, names_file: Path | None
                      ) -> SnapshotPersonas | None:
    """The snapshot's personas (None: no persona model scored it, or its ids cannot be told)."""
    version = meta.get("models", {}).get(PERSONAS)
    if version is None or "persona" not in table.column_names:
        return None
    stored = meta.get(NAMES_META)
    if PERSONA_ID in table.column_names and stored:
        filled = pc.fill_null(table[PERSONA_ID], NO_PERSONA)
        ids = np.asarray(filled.to_numpy(zero_copy_only=False), np.int64)
        names = tuple(str(n) for n in stored)
    else:
        found = _ids_from_dictionary(table["persona"])
        if found is None:
            return None
        ids, names = found
    return SnapshotPersonas(str(version), ids, names, current_names(str(version), names,
                                                                    names_file))


def current_names(version: str, stored: Sequence[str], names_file: Path | None
                  ) -> tuple[str, ...]:
    """``stored`` (names by id, then the unassigned's) with the renames of ``names_file``: a
    persona not renamed there still has the name it was scored under (its default)."""
    given: dict[int, str] = {}
    if names_file is not None:
        try:
            given = read_names(names_file, version)
        except ConfigError as exc:  # a damaged names file: the scored names are still right
            log.warning("persona names not read: %s", exc)
    k = len(stored) - 1
    return (*(given.get(i, stored[i]) for i in range(k)), *stored[k:])


def stored_names(meta: Mapping[str, Any], persona: pa.ChunkedArray | pa.Array | None
                 ) -> tuple[str, ...] | None:
    """The names a snapshot was scored with, by id (then the unassigned's)."""
    if meta.get(NAMES_META):
        return tuple(str(n) for n in meta[NAMES_META])
    found = _ids_from_dictionary(persona) if persona is not None else None
    return found[1] if found else None


def scored_and_current(meta: Mapping[str, Any], persona: pa.ChunkedArray | pa.Array | None,
                       names_file: Path | None
                       ) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """A snapshot's persona names as scored and as named now (None: no persona model);
    ``persona``: its persona column as stored (read only when the meta lacks the names)."""
    version = meta.get("models", {}).get(PERSONAS)
    stored = stored_names(meta, persona)
    if version is None or stored is None:
        return None
    return stored, current_names(str(version), stored, names_file)


def relabel_kpis(data: dict[str, Any], stored: Sequence[str], names: Sequence[str]
                 ) -> dict[str, Any]:
    """KPIs with each persona group under its current name (a copy; ``data`` is unchanged):
    ``stored`` and ``names`` are the names by id as scored and now. A row names its persona
    id (snapshots since ids were written) or its scored name."""
    rows = data.get("by", {}).get("persona")
    if not rows:
        return data
    k = len(stored) - 1

    def name(row: dict[str, Any]) -> str:
        pid = row.get("id")
        if isinstance(pid, int):
            return names[pid] if 0 <= pid < k else names[-1]
        label = str(row["group"])
        return names[list(stored).index(label)] if label in stored else label

    return {**data, "by": {**data["by"], "persona": [{**r, "group": name(r)} for r in rows]}}


def _ids_from_dictionary(column: pa.ChunkedArray | pa.Array
                         ) -> tuple[I64, tuple[str, ...]] | None:
    """Ids from an id-ordered names dictionary (unassigned last), as scoring runs wrote it."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(arr.type):
        return None
    names = tuple(str(v) for v in arr.dictionary.to_pylist())
    if len(names) < 2 or names[-1] != UNASSIGNED_NAME or len(set(names)) != len(names):
        return None
    codes = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    k = len(names) - 1
    ids = np.where(codes < 0, NO_PERSONA, np.where(codes == k, -1, codes))
    return ids.astype(np.int64), names


def _floats(col: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.float64]:
    return np.asarray(col.to_numpy(zero_copy_only=False), np.float64)
