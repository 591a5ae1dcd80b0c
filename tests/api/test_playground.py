"""The playground page at ``GET /`` and its static files (the browser test is tests/e2e)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_playground_served_at_root(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Image filter playground</title>" in response.text
    assert 'href="docs"' in response.text


def test_playground_assets_all_served_locally(client: TestClient) -> None:
    html = client.get("/").text
    references = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert "static/playground/app.js" in references
    assert "static/playground/style.css" in references
    for reference in references:
        assert "//" not in reference, f"{reference} is not a relative URL"
        response = client.get(f"/{reference}")
        assert response.status_code == 200, reference


def test_playground_script_calls_only_relative_urls(client: TestClient) -> None:
    script = client.get("/static/playground/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "http://" not in script.text
    assert "https://" not in script.text
    assert ".innerHTML" not in script.text


def test_playground_not_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
