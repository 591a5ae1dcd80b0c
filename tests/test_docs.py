"""The documentation: links resolve, the README stays short, the bench tables have a home."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# [text](target) or ![alt](target); a target may end with a #fragment
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:|#", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(page: Path) -> None:
    links = relative_links(page)
    missing = [t for t in links if not (page.parent / t.split("#")[0]).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_link_check_sees_links() -> None:
    assert "docs/api.md" in relative_links(ROOT / "README.md")
    assert "../deploy/README.md" in relative_links(ROOT / "docs" / "operations.md")


def test_the_readme_stays_short_and_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 220
    for name in ("api", "architecture", "security", "operations", "performance"):
        assert f"(docs/{name}.md)" in readme


def test_the_bench_tables_live_in_docs_performance() -> None:
    """``make bench`` (bench.core) and ``make loadbench`` (bench.load) write between these."""
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    for kind in ("core", "load"):
        start, end = f"<!-- bench:{kind}:start -->", f"<!-- bench:{kind}:end -->"
        assert page.count(start) == page.count(end) == 1
        assert page.index(start) < page.index(end)
        source = (ROOT / "bench" / f"{kind}.py").read_text(encoding="utf-8")
        assert start in source
        assert '"docs" / "performance.md"' in source
        assert '"README.md"' not in source
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "<!-- bench:" not in readme
