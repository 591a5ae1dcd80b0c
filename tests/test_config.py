"""Settings: env prefix, defaults, parsing of lists, and clear start-up failures."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from service.config import Settings, available_cpus, get_settings
from tests.conftest import ROOT, make_settings


def test_defaults_match_the_contract() -> None:
    settings = make_settings()
    assert settings.max_upload_bytes == 20 * 1024 * 1024
    assert settings.max_pixels == 40_000_000
    assert settings.max_kernel_side == 63
    assert settings.max_pipeline_steps == 16
    assert settings.api_keys == []
    assert settings.cors_origins == []


def test_env_prefix_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGFILTER_MAX_KERNEL_SIDE", "31")
    monkeypatch.setenv("IMGFILTER_LOG_LEVEL", "WARNING")
    settings = Settings(_env_file=None)
    assert settings.max_kernel_side == 31
    assert settings.log_level == "warning"


def test_csv_lists_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGFILTER_CORS_ORIGINS", "http://a.test, http://b.test")
    monkeypatch.setenv("IMGFILTER_API_KEYS", '["0123456789abcdef0123"]')
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ["http://a.test", "http://b.test"]
    assert settings.api_keys == ["0123456789abcdef0123"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_kernel_side": 0}, "max_kernel_side"),
        ({"png_compress_level": 10}, "png_compress_level"),
        ({"max_pixels": 100, "max_kernel_side": 11}, "max_kernel_side squared"),
        ({"api_keys": ["short"]}, "at least 16 characters"),
        ({"api_keys": ["k" * 16, "k" * 15]}, "at least 16 characters"),
        ({"max_pixels": 100, "max_kernel_side": 9, "max_pool_size": 11}, "max_pool_size squared"),
        ({"max_upload_bytes": 1023}, "max_upload_bytes"),
        ({"max_queue": -1}, "max_queue"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"queue_timeout_s": 0}, "queue_timeout_s"),
        ({"processing_timeout_s": 0}, "processing_timeout_s"),
        ({"log_level": "loud"}, "log_level"),
    ],
)
def test_bad_values_fail_with_clear_message(overrides: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_settings(**overrides)


def test_limits_at_their_bounds_are_accepted() -> None:
    settings = make_settings(
        api_keys=["k" * 16],
        max_pixels=100,
        max_kernel_side=10,
        max_pool_size=10,
        max_upload_bytes=1024,
        max_queue=0,
    )
    assert settings.api_keys == ["k" * 16]
    assert (settings.max_kernel_side, settings.max_pool_size) == (10, 10)


def test_empty_env_value_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty ``IMGFILTER_X=`` (a blank ``.env`` line or export) leaves the default."""
    monkeypatch.setenv("IMGFILTER_MAX_PIXELS", "")
    monkeypatch.setenv("IMGFILTER_PNG_STRATEGY", "")
    settings = Settings(_env_file=None)
    assert settings.max_pixels == 40_000_000
    assert settings.png_strategy == "huffman"


def test_bad_env_value_fails_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGFILTER_MAX_UPLOAD_BYTES", "lots")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValidationError, match="max_upload_bytes"):
            get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("cpu_max", "cap"),
    [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000\n", 1), ("garbage", None)],
)
def test_available_cpus_honours_cgroup_v2_quota(tmp_path, cpu_max: str, cap: int | None) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    expected = affinity if cap is None else min(affinity, cap)
    assert available_cpus(tmp_path) == expected


@pytest.mark.parametrize(
    ("quota", "period", "cap"),
    [("-1", "100000", None), ("150000", "100000", 2), ("50000", "100000", 1), ("x", "1", None)],
)
def test_available_cpus_honours_cgroup_v1_quota(tmp_path, quota, period, cap) -> None:
    """``docker run --cpus 1`` on a cgroup v1 host sets ``cpu.cfs_quota_us`` (issue 14)."""
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(period + "\n")
    affinity = len(os.sched_getaffinity(0))
    expected = affinity if cap is None else min(affinity, cap)
    assert available_cpus(tmp_path) == expected


def test_available_cpus_without_cgroup_files(tmp_path) -> None:
    assert available_cpus(tmp_path / "missing") == len(os.sched_getaffinity(0))


def test_operations_doc_documents_every_setting() -> None:
    table = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [
        f"IMGFILTER_{name.upper()}"
        for name in Settings.model_fields
        if f"`IMGFILTER_{name.upper()}`" not in table
    ]
    assert not missing, f"add these to the settings table of docs/operations.md: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    assert "make run" in first_block
    assert "make test" in first_block
