"""Fixtures of the conversation designer's checks: the trained model and a knowledge-folder copy."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from support.paths import trained_model, vignettes_dir  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "bot" / "triage" / "knowledge"


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

