"""The touchpoint event contract (DESIGN.md, "Data contract")."""

from __future__ import annotations

import pyarrow as pa

# Canonical fields in storage order.
EVENT_FIELDS: tuple[str, ...] = (
    "event_id",
    "customer_id",
    "ts",
    "event_type",
    "channel",
    "value",
    "action",
    "properties",
)
REQUIRED_FIELDS: tuple[str, ...] = ("customer_id", "ts", "event_type")
OPTIONAL_FIELDS: tuple[str, ...] = ("event_id", "channel", "value", "action", "properties")

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("action", pa.string()),
        pa.field("properties", pa.string()),  # a JSON object as text
    ]
)


def events_table(records: list[dict[str, object]]) -> pa.Table:
    """Events given as dicts (missing fields null) as a table in the event schema. Built column
    by column: ``Table.from_pylist`` gives up the GIL on the way (0.6 ms for one event behind a
    busy event loop, against 0.09 ms this way)."""
    return pa.Table.from_arrays(
        [pa.array([r.get(f.name) for r in records], f.type) for f in EVENT_SCHEMA],
        schema=EVENT_SCHEMA)


# Bounds that keep one hostile row from bloating the store or the service's memory.
MAX_ID_CHARS = 256
MAX_LABEL_CHARS = 128  # event_type, channel, action
MAX_PROPERTIES_CHARS = 65_536
DEFAULT_CHANNEL = "unknown"
# Timestamps the store accepts (ISO dates, the lower bound included), and the largest value of
# one touchpoint: beyond it a value is a unit or parsing error, and a few of them overflow every
# revenue sum they enter (segments, KPIs) to infinity.
MIN_TS, MAX_TS = "1970-01-01", "2100-01-01"
MAX_VALUE = 1e12

# The store's table holds the contract's fields plus integer codes assigned at ingest (a customer
# key and vocabulary codes), so feature scans read integers, never strings (DESIGN.md, Scale).
EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS events (
    event_id    VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    event_type  VARCHAR NOT NULL,
    channel     VARCHAR NOT NULL,
    value       DOUBLE,
    action      VARCHAR,
    properties  VARCHAR,
    customer_key    INTEGER NOT NULL,
    event_type_code INTEGER NOT NULL,
    channel_code    INTEGER NOT NULL,
    action_code     INTEGER,
    load_id         INTEGER,
    id_hash         UBIGINT NOT NULL
)
"""
# What every insert supplies, in storage order: the contract's fields and their codes. The
# load that stored an event (``load_id``, the ingest log's number, for `journey unload`) is
# set by file loads only: an event sent to the API, or stored before loads were numbered,
# has none. A store made before it gains the column when opened for writing.
CODE_COLUMNS: tuple[str, ...] = ("customer_key", "event_type_code", "channel_code",
                                 "action_code")
STORED_COLUMNS = ", ".join((*EVENT_FIELDS, *CODE_COLUMNS))
ADD_LOAD_ID = "ALTER TABLE events ADD COLUMN IF NOT EXISTS load_id INTEGER"
# The first 8 bytes of the event id's MD5, stored with the event so that the writer's picture
# of the stored ids (features/event_ids.py) is read, not computed, at start: 2.4-2.9 s at
# 32.7M events where hashing every id took 10.5-11.9 s, for 8 bytes an event on disk. Every
# insert sets it from this expression (or from ``event_ids.id_hashes``, its equal in Python).
ID_HASH = "md5_number_upper(event_id)"
KEYS_DDL = (
    "CREATE TABLE IF NOT EXISTS customers "
    "(customer_key INTEGER NOT NULL, customer_id VARCHAR NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS customers_id ON customers(customer_id)",
    "CREATE TABLE IF NOT EXISTS vocab "
    "(kind VARCHAR NOT NULL, name VARCHAR NOT NULL, code INTEGER NOT NULL)",
)
ATTRIBUTES_DDL = (
    "CREATE TABLE IF NOT EXISTS attributes "
    "(customer_id VARCHAR NOT NULL, name VARCHAR NOT NULL, value VARCHAR)"
)
CODED_FIELDS: dict[str, str] = {"event_type": "event_type_code", "channel": "channel_code",
                                "action": "action_code"}
