"""Where the tests find things outside the code: the shared vignettes, the trained model."""
import os
from pathlib import Path

import pytest

from bot.tools.gates import vignettes_dir  # noqa: F401  (one search, shared with the gate)

ROOT = Path(__file__).resolve().parents[2]


def trained_model() -> Path:
    """HSG_MODEL (set by make test), else the newest models/hsg-*.tar.gz."""
    if os.environ.get("HSG_MODEL"):
        path = ROOT / os.environ["HSG_MODEL"]
        if not path.exists():
            pytest.fail(f"HSG_MODEL={path} does not exist")
        return path
    models = sorted((ROOT / "models").glob("hsg-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        pytest.skip("no trained model: run `make test` (it trains one) or `make train`")
    return models[-1]
