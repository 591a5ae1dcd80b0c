"""``python -m service.runtime.healthcheck``: the container check follows IMGFILTER_HOST/PORT."""

from __future__ import annotations

import pytest

from service.runtime.healthcheck import healthz_url, main
from tests.servers import free_port, running_server


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8000/healthz"),
        ({"IMGFILTER_HOST": "0.0.0.0", "IMGFILTER_PORT": "9000"}, "http://127.0.0.1:9000/healthz"),
        ({"IMGFILTER_HOST": "::"}, "http://[::1]:8000/healthz"),
        ({"IMGFILTER_HOST": "10.1.2.3", "IMGFILTER_PORT": " 81 "}, "http://10.1.2.3:81/healthz"),
        ({"IMGFILTER_HOST": "fd00::5"}, "http://[fd00::5]:8000/healthz"),
    ],
)
def test_url_follows_the_server_settings(env: dict[str, str], url: str) -> None:
    assert healthz_url(env) == url


def test_exit_code_says_whether_the_server_answers(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    env = {"IMGFILTER_HOST": "0.0.0.0", "IMGFILTER_PORT": str(port)}
    assert main(env, timeout=1) == 1
    assert "unhealthy" in capsys.readouterr().err
    with running_server(
        ["-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        port=port,
    ):
        assert main(env, timeout=5) == 0
