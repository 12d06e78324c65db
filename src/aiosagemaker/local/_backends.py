"""moto's server as the S3, SNS, SQS and STS backend: bind, serve in a thread, stop.

The socket is bound in the calling thread, so a bad host or a port in use raises ``OSError``
at once (moto's own ``ThreadedMotoServer`` waits forever for a ready event in that case).
moto keeps its state in process-wide backends, so two moto servers in one process share
buckets, topics and queues.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

from ._moto_tuning import tune_moto_sqs
from ._sockets import bind_socket

JOIN_TIMEOUT_SECONDS = 10.0


class MotoBackend:
    """moto's WSGI application on a threaded werkzeug server at ``host:port`` (0 = free)."""

    tune_sqs: ClassVar[bool] = True
    """Install the SQS fixes of ``_moto_tuning`` on start (off only for a benchmark baseline)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.port = 0

    def start(self) -> None:
        """Bind and start serving.

        Raises:
            BindError: The address cannot be resolved or bound.
        """
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        if self.tune_sqs:
            tune_moto_sqs()
        werkzeug_logger = logging.getLogger("werkzeug")
        if werkzeug_logger.level == logging.NOTSET:
            # werkzeug logs every request at INFO on its own handler; keep only warnings.
            werkzeug_logger.setLevel(logging.WARNING)
        app = DomainDispatcherApplication(create_backend_app)
        # make_server binds here; errors (EADDRINUSE, EADDRNOTAVAIL, gaierror) propagate.
        sock = bind_socket(self._host, self._port, "S3/SNS/SQS/STS (moto)")
        try:  # werkzeug would print and sys.exit(1) on a bind error; give it a bound socket
            server = make_server(
                self._host,
                self._port,
                app,
                threaded=True,
                request_handler=MotoRequestHandler,
                fd=sock.fileno(),
            )
        finally:
            sock.close()  # werkzeug serves a duplicate of the descriptor
        self._server = server
        self.port = int(server.server_address[1])
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever, name="aiosagemaker-local-moto", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the socket and join the server thread."""
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None:
            if thread is not None and thread.is_alive():
                server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(JOIN_TIMEOUT_SECONDS)
