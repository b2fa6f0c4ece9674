"""The local Spark session Journey starts, with quiet logs, and Spark failures told in one line.

A local-mode job that fails raises its error to the caller (there are no retries that could
recover), so the JVM's own log of it — executor and scheduler stack traces, PySpark's JSON
record of the exception — only repeats, at great length, what the caller gets anyway.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from features.errors import ConfigError, JourneyError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Spark's default console log (org/apache/spark/log4j2-defaults.properties) at WARN, without
# the warnings that say nothing about the job, and without the duplicate logs of a failed task.
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
# "Unable to load native-hadoop library": Hadoop's pure-Java code is used, as it should be.
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
# A failed task's stack trace, logged before the same error is raised to the caller.
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = fatal
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = fatal
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
logger.parquet.name = org.apache.parquet.CorruptStatistics
logger.parquet.level = error
"""
# PySpark's Python loggers that record every captured JVM exception (as JSON, with the Java
# stack trace) when it is created, before it is raised to the caller.
EXCEPTION_LOGGERS = ("DataFrameQueryContextLogger", "SQLQueryContextLogger")


def _log_config() -> Path:
    """The log4j2 file, written atomically (several processes may start Spark at once)."""
    path = Path(tempfile.gettempdir()) / f"journey-spark-log4j2-{os.getuid()}.properties"
    if not path.is_file() or path.read_text(encoding="utf-8") != LOG4J2:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".journey-log4j2-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(LOG4J2)
        os.replace(tmp, path)
    return path


def local_session(app: str = "journey", cores: int = 2,
                  java_options: Sequence[str] = ()) -> SparkSession:
    """A local-mode session bound to 127.0.0.1 with no UI (tests, one-machine runs).

    ``java_options``: more options for the JVM, read only when this process starts one (a
    process that already runs Spark keeps its JVM and options)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # an extra: 468 MB that only the Spark engine needs
        raise ConfigError("the Spark engine needs PySpark, which this installation lacks: "
                          "install Journey with its spark extra (pip install 'journey[spark]'; "
                          "`make setup` does) and a Java 17 runtime, or use the default "
                          "engine") from exc

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    for name in EXCEPTION_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(max(2, cores * 2)))
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        # Read when the JVM starts (PySpark passes it to spark-submit): a session in a process
        # that already runs Spark keeps that JVM's logging.
        .config("spark.driver.extraJavaOptions",
                " ".join((f"-Dlog4j2.configurationFile={_log_config()}", *java_options)))
        # The feature query has a few hundred columns: printed plans (errors, explain) are
        # whole instead of truncated with a warning.
        .config("spark.sql.debug.maxToStringFields", "10000")
        .getOrCreate()
    )


class SparkJobError(JourneyError):
    """A Spark job failed; the message is one line of it and what to check."""


# The start of a Spark error's condition -> what the user should check.
_HINTS = {
    "JAVA_GATEWAY_EXITED": "Spark could not start Java: is a Java 17 or later runtime installed "
                           "(java on PATH, or JAVA_HOME)?",
    "CAST_INVALID_INPUT": "a value in the events does not fit its column's type",
    "AMBIGUOUS_REFERENCE": "two feature columns share a name: check the feature spec",
    "UNRESOLVED_COLUMN": "the event log lacks a column of the event contract "
                         "(docs/features.md)",
    "PATH_NOT_FOUND": "the event log's path does not exist",
}
_DEFAULT_HINT = ("check the feature spec and the events; `--engine duckdb` computes the same "
                 "features and reports bad data by file and line")


def spark_failure(exc: BaseException) -> SparkJobError | None:
    """A short error for a failure of Spark itself (PySpark, Py4J), else None: the first line
    of the Java error, without its stack trace, and what to check."""
    try:
        from py4j.protocol import Py4JError, Py4JJavaError
        from pyspark.errors import PySparkException
    except ImportError:  # no Spark installed: this was not a Spark error
        return None
    if isinstance(exc, PySparkException):
        condition = exc.getCondition() or ""
        text = exc.getMessage() or condition
    elif isinstance(exc, Py4JJavaError):
        condition, text = "", str(exc.java_exception.toString())
    elif isinstance(exc, Py4JError):  # the gateway to the JVM itself failed
        condition, text = "", f"the connection to Spark's JVM failed: {exc}"
    else:
        return None
    first = next((line.strip() for line in text.splitlines() if line.strip()), repr(exc))
    hint = next((h for key, h in _HINTS.items() if key in condition or key in first),
                _DEFAULT_HINT)
    return SparkJobError(f"the Spark job failed: {first}\n  {hint}")
