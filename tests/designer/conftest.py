"""Fixtures of the conversation designer's checks: the trained model and a knowledge-folder copy."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from support.paths import vignettes_dir

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "bot" / "triage" / "knowledge"


def trained_model() -> Path:
    """As tests/conftest.py finds it: HSG_MODEL (make test), else the newest models/hsg-*.tar.gz."""
    if os.environ.get("HSG_MODEL"):
        path = ROOT / os.environ["HSG_MODEL"]
        if not path.exists():
            pytest.fail(f"HSG_MODEL={path} does not exist")
        return path
    models = sorted((ROOT / "models").glob("hsg-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        pytest.skip("no trained model: run `make test` (it trains one) or `make train`")
    return models[-1]


@pytest.fixture(scope="session")
def dev_vignettes_path() -> Path:
    found = vignettes_dir()
    if found is None:
        pytest.skip("the shared dev vignettes are not on this machine")
    return found / "dev.jsonl"


@pytest.fixture
def knowledge_copy(tmp_path) -> Path:
    """A scratch copy of bot/triage/knowledge to break on purpose."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target

