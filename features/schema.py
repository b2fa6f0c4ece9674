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

# Bounds that keep one hostile row from bloating the store or the service's memory.
MAX_ID_CHARS = 256
MAX_LABEL_CHARS = 128  # event_type, channel, action
MAX_PROPERTIES_CHARS = 65_536
DEFAULT_CHANNEL = "unknown"

# The store's DDL mirrors EVENT_SCHEMA.
EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS events (
    event_id    VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    event_type  VARCHAR NOT NULL,
    channel     VARCHAR NOT NULL,
    value       DOUBLE,
    action      VARCHAR,
    properties  VARCHAR
)
"""
