"""Two real uvicorn servers for the generated clients: without API keys and with one key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clients.generated import KEY
from tests.servers import Server, free_port, running_server, uvicorn_args


@pytest.fixture(scope="package")
def open_server() -> Iterator[Server]:
    port = free_port()
    with running_server(uvicorn_args(port), port=port, env={"IMGFILTER_API_KEYS": ""}) as server:
        yield server


@pytest.fixture(scope="package")
def keyed_server() -> Iterator[Server]:
    port = free_port()
    with running_server(uvicorn_args(port), port=port, env={"IMGFILTER_API_KEYS": KEY}) as server:
        yield server
