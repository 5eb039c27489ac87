"""Where the tests find things outside this repository."""
import os
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]


def vignettes_dir() -> Optional[Path]:
    """The shared clinician vignettes: HSG_VIGNETTES_DIR, or ../shared beside this checkout or
    beside the main workspace (CI runs from a fresh clone elsewhere)."""
    candidates = [os.environ.get("HSG_VIGNETTES_DIR"), ROOT.parent / "shared" / "vignettes",
                  "/work/shared/vignettes"]
    for c in candidates:
        if c and (Path(c) / "dev.jsonl").exists():
            return Path(c)
    return None
