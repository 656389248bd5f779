"""nats-server for the bridge tests (tools/nats_server.py starts and stops them by PID).

``require_nats_server()`` skips a test when nats-server is not installed -- except under CI
(``ALPHAPULSE_CI`` set by .ci/run), where that is a failure: CI installs it.
"""

from __future__ import annotations

import os

import pytest

from tools.nats_server import INSTALL_HINT, NatsCluster, NatsServer, find_nats_server


def require_nats_server() -> str:
    path = find_nats_server()
    if path:
        return path
    if os.environ.get("ALPHAPULSE_CI"):
        pytest.fail(INSTALL_HINT + " (CI installs it: .ci/run)")
    pytest.skip(INSTALL_HINT)


__all__ = ["NatsCluster", "NatsServer", "require_nats_server"]
