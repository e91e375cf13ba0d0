"""A real `ml-platform serve` application on 127.0.0.1 (uvicorn in a thread, a free port), for tests."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn

from ml_platform.project import Project
from ml_platform.serving.app import create_app
from ml_platform.serving.state import ServedState


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Client:
    """A tiny HTTP client to the server (standard library, one connection per call)."""

    def __init__(self, port: int):
        self.port = port

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def predict(self, model: str, body) -> tuple[int, dict]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.request("POST", f"/v1/models/{model}/predict", raw)


@contextmanager
def serving(project: Project, poll_seconds: float = 0.2) -> Iterator[tuple[Client, ServedState]]:
    """The server on a free port for the duration of the block."""
    state = ServedState(project, poll_seconds=poll_seconds)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield Client(port), state
    finally:
        server.should_exit = True
        thread.join(timeout=30)
