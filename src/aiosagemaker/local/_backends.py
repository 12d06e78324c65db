"""moto's server as the S3, SNS, SQS and STS backend: start on a free loopback port, stop.

moto keeps its state in process-wide backends, so two moto servers in one process share
buckets, topics and queues.
"""

from __future__ import annotations

import logging
from typing import Any


class MotoBackend:
    """A :class:`moto.server.ThreadedMotoServer` on ``host`` and a free port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._server: Any = None
        self.url = ""

    def start(self) -> None:
        """Start serving (blocks until the socket is bound)."""
        from moto.server import ThreadedMotoServer

        werkzeug_logger = logging.getLogger("werkzeug")
        if werkzeug_logger.level == logging.NOTSET:
            # werkzeug logs every request at INFO on its own handler; keep only warnings.
            werkzeug_logger.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self._host, port=0, verbose=False)
        server.start()
        self._server = server
        host, port = server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and join the server thread."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
