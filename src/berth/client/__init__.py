"""The Python SDK of berth: a thin typed client over the REST API."""

from berth.client.client import BerthClient
from berth.client.transport import ApiError

__all__ = ["ApiError", "BerthClient"]
