"""Memory sizes a user sets for DuckDB ("4GB", "512 MiB"), checked before they reach SQL."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from features.errors import ConfigError

# A floor well above what staging a load needs (1.6M events staged within 128MB in 5.5 s
# against 4.8 s at 4GB); at 1 KiB DuckDB fails its first allocation.
MIN_MEMORY_BYTES = 128 * 10**6
MEMORY_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B)", re.IGNORECASE)


def memory_setting(text: str) -> str:
    """A memory size as DuckDB reads it ("4GB", "512 MiB"), checked before it reaches SQL."""
    found = MEMORY_SIZE.fullmatch(text.strip())
    if found is None:
        raise ConfigError(f"store memory limit {text!r} is not a size such as 4GB or 512MB")
    unit = found[2].upper()
    size = float(found[1]) * (1024 if "I" in unit else 1000) ** ("KMGT".index(unit[0]) + 1)
    if size < MIN_MEMORY_BYTES:
        raise ConfigError(f"store memory limit {text!r} is below {MIN_MEMORY_BYTES // 10**6} "
                          "MB, too little for DuckDB to stage a load")
    return f"{found[1]}{found[2]}"


def _checked(text: str) -> str:
    try:
        return memory_setting(text)
    except ConfigError as exc:  # pydantic reports a ValueError as the setting's error
        raise ValueError(str(exc)) from exc


# A settings field holding such a size: the CLI's and the service's settings share the check.
MemorySize = Annotated[str, AfterValidator(_checked)]
