"""Inference tables: each request and response of an endpoint captured to Parquet.

The gateway offers records on its request path (`CaptureWriter.offer`, no I/O); a thread writes
them to ``$BERTH_HOME/inference/<endpoint>/date=YYYY-MM-DD/``, which `read_payloads`, DuckDB,
pandas or pyarrow.dataset read back. Imports nothing of berth but `core`.
"""

from berth.inference.reader import read_payloads, schema_description
from berth.inference.schema import PayloadRecord
from berth.inference.writer import CaptureCounts, CaptureWriter, sampled

__all__ = [
    "CaptureCounts",
    "CaptureWriter",
    "PayloadRecord",
    "read_payloads",
    "sampled",
    "schema_description",
]
