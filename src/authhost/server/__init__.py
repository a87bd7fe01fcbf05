"""The trio TCP server: listeners, connections, deadlines, graceful shutdown, metrics, logs.

The only dependency on the rest of authhost is the decision handler
``async (request: AuthRequest, received_at: float) -> Decision``; network management (0800),
unknown MTIs and format errors are answered here. See docs/server.md.
"""

from authhost.server.connection import DecisionHandler
from authhost.server.metrics import MetricsEndpoint, ServerMetrics
from authhost.server.server import AuthServer, ServerConfigError

__all__ = ["AuthServer", "DecisionHandler", "MetricsEndpoint", "ServerConfigError", "ServerMetrics"]
