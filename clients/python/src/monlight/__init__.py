"""Monlight client: error reports, metrics and a logging handler.

FastAPI integration: ``monlight.integrations.fastapi`` (extra ``fastapi``).
"""

from ._common import SENSITIVE_HEADERS, filter_headers
from ._errors import ErrorClient, RequestContext
from ._logging import MonlightHandler
from ._metrics import MAX_BATCH, MetricsClient

__version__ = "0.1.0"

__all__ = [
    "ErrorClient",
    "MetricsClient",
    "MonlightHandler",
    "RequestContext",
    "SENSITIVE_HEADERS",
    "MAX_BATCH",
    "filter_headers",
    "__version__",
]
