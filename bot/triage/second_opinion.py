"""The learned second opinion: a text classifier that may raise the rules' level, never lower it.

Trained on every labelled message the project has (the rule-family cases and the independent
case sets listed in knowledge/learned.yml); the dev vignettes stay out so that they keep
measuring. Heads over one set of features (word n-grams of the engine's spelling-corrected
words, character n-grams of the message):
  complaint  the message reports some bodily complaint        -> may raise info to routine
  red_flag   the message reports a warning or emergency sign -> may raise to urgent
  emergency  a red flag the rules found reads as an emergency -> may raise urgent to emergency
Each head raises only above its probability threshold, and never above the cap the knowledge
file sets; the rules stay the reviewed source of truth and have the last word on a red flag.

The model is rebuilt from the data when the data change, and cached (never committed) under
~/.cache/hsg-aftercare/ by a hash of everything it is trained from.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .model import RANK

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("HSG_CACHE_DIR", Path.home() / ".cache" / "hsg-aftercare")) / "second-opinion"
VERSION = "4"  # bump when the features or the model change
_DIGITS = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass(frozen=True)
class Head:
    name: str
    raise_to: str
    threshold: float
    applies_below: str  # the head acts only when the rules' level is below this
    applies_from: str = "info"  # ... and at or above this (emergency: only on a red flag the rules found)


@dataclass(frozen=True)
class Settings:
    heads: tuple[Head, ...]
    training: tuple[str, ...]  # glob patterns relative to the project root
    max_level: str

    @classmethod
    def load(cls, path: Path) -> Settings:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        cap = str(raw.get("max_level", "urgent"))
        heads = []
        for name, h in (raw.get("heads") or {}).items():
            head = Head(
                name,
                str(h["raise_to"]),
                float(h["threshold"]),
                str(h.get("applies_below", h["raise_to"])),
                str(h.get("applies_from", "info")),
            )
            if name not in TARGETS:
                raise ValueError(f"{path}: unknown head {name}; known: {', '.join(TARGETS)}")
            if RANK[head.raise_to] > RANK[cap]:
                raise ValueError(f"{path}: head {name} raises to {head.raise_to}, above the cap {cap}")
            heads.append(head)
        return cls(tuple(heads), tuple(raw.get("training") or ()), cap)


def labelled_rows(patterns: Sequence[str], root: Path = ROOT) -> list[dict]:
    """Every labelled message ({text, accept}) in the files the patterns name."""
    rows: list[dict] = []
    for pattern in patterns:
        for path in sorted(glob.glob(str(root / pattern))):
            if path.endswith(".jsonl"):
                with open(path, encoding="utf-8") as f:
                    rows += [json.loads(line) for line in f if line.strip()]
            elif path.endswith((".yml", ".yaml")):
                rows += yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    return [r for r in rows if r.get("text") and r.get("accept")]


# What each head learns: the message's acceptable levels all at or above this level (1), all
# below it (0), or both (left out).
TARGETS = {"complaint": "self_care", "red_flag": "urgent", "emergency": "emergency"}


def targets(row: dict) -> dict[str, int | None]:
    """1/0 per head, None where the labels leave it open (accepted on both sides)."""
    lo = min(RANK[a] for a in row["accept"])
    hi = max(RANK[a] for a in row["accept"])
    return {head: 1 if lo >= RANK[level] else (0 if hi < RANK[level] else None) for head, level in TARGETS.items()}


class SecondOpinion:
    """Fitted heads over shared features; `probabilities(text, words)` per head."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # sklearn objects (FeatureUnion, LogisticRegression per head), set by fit
        self.vectorizer: Any = None
        self.models: dict[str, Any] = {}

    @staticmethod
    def _document(text: str, words: str) -> str:
        # numbers are the rules' (thresholds a clinician signed); the classifier sees only that one is there
        return _DIGITS.sub("0", f"{text.lower()} \u2502 {words}")

    def fit(self, texts: Sequence[str], words: Sequence[str], rows: Sequence[dict]) -> SecondOpinion:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion

        self.vectorizer = FeatureUnion(
            [
                (
                    "words",
                    TfidfVectorizer(
                        analyzer="word",
                        ngram_range=(1, 2),
                        min_df=1,
                        sublinear_tf=True,
                        token_pattern=r"(?u)\b\w[\w']*\b",
                    ),
                ),
                ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, sublinear_tf=True)),
            ]
        )
        docs = [self._document(t, w) for t, w in zip(texts, words)]
        X = self.vectorizer.fit_transform(docs)
        for head in self.settings.heads:
            y = [targets(r)[head.name] for r in rows]
            keep = [i for i, v in enumerate(y) if v is not None]
            model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, solver="liblinear")
            model.fit(X[keep], [y[i] for i in keep])
            self.models[head.name] = model

        self._compile()
        return self

    def _compile(self) -> None:
        """Turn the fitted pipeline into plain dictionaries: n-gram -> (idf, weight per head).

        sklearn's transform and predict_proba cost about 1.5 ms a message in checks and copies;
        the same arithmetic on dictionaries (sublinear tf x idf, l2-normalised per vectorizer,
        a dot product and the logistic function) costs a tenth of that. test_second_opinion
        checks that both give the same probabilities.
        """
        import numpy as np

        heads = list(self.models)
        self._scorer = []
        offset = 0
        for _name, vec in self.vectorizer.transformer_list:
            vocab = vec.vocabulary_
            idf = vec.idf_
            coefs = np.vstack([self.models[h].coef_[0][offset : offset + len(vocab)] for h in heads])
            table = {term: (float(idf[i]), tuple(float(c) for c in coefs[:, i])) for term, i in vocab.items()}
            self._scorer.append((vec.build_analyzer(), table))
            offset += len(vocab)
        self._intercepts = tuple(float(self.models[h].intercept_[0]) for h in heads)
        self._heads = heads

    def probabilities(self, text: str, words: str) -> dict[str, float]:
        doc = self._document(text, words)
        scores = list(self._intercepts)
        for analyzer, table in self._scorer:
            counts: dict[str, int] = {}
            for gram in analyzer(doc):
                if gram in table:
                    counts[gram] = counts.get(gram, 0) + 1
            weights = {g: (1.0 + math.log(c)) * table[g][0] for g, c in counts.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for g, w in weights.items():
                for k, c in enumerate(table[g][1]):
                    scores[k] += c * w / norm
        return {h: 1.0 / (1.0 + math.exp(-z)) for h, z in zip(self._heads, scores)}

    def sklearn_probabilities(self, text: str, words: str) -> dict[str, float]:
        """The same through sklearn (for the test that the fast path agrees)."""
        X = self.vectorizer.transform([self._document(text, words)])
        return {name: float(model.predict_proba(X)[0, 1]) for name, model in self.models.items()}

    def opinion(self, text: str, words: str, level: str) -> tuple[str, str] | None:
        """(raised level, reason) when the heads raise the rules' level, else None. Heads act in
        order of the level they raise to, so the emergency head can act on a red flag the
        red-flag head found."""
        probs = self.probabilities(text, words)
        start, reasons = level, []
        for head in sorted(self.settings.heads, key=lambda h: RANK[h.raise_to]):
            p = probs[head.name]
            if (
                p >= head.threshold
                and RANK[head.applies_from] <= RANK[level] < RANK[head.applies_below]
                and RANK[head.raise_to] > RANK[level]
            ):
                reasons.append(f"{head.name} p={p:.2f} >= {head.threshold:g}")
                level = head.raise_to
        if level == start:
            return None
        return level, f"learned second opinion ({'; '.join(reasons)}): the rules found {start}; raised to {level}"


def fingerprint(settings_path: Path, settings: Settings, knowledge_dir: Path, root: Path = ROOT) -> str:
    h = hashlib.sha256(VERSION.encode())
    files = [settings_path, Path(__file__)] + sorted(knowledge_dir.glob("*.yml"))
    for pattern in settings.training:
        files += [Path(p) for p in sorted(glob.glob(str(root / pattern)))]
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build(
    settings_path: Path,
    knowledge_dir: Path,
    words_of: Callable[[str], str],
    cache_dir: Path = CACHE_DIR,
    root: Path = ROOT,
) -> SecondOpinion | None:
    """The fitted second opinion, from the cache or trained now; None when there is no data."""
    settings = Settings.load(settings_path)
    if not settings.heads:
        return None
    key = fingerprint(settings_path, settings, knowledge_dir, root)
    cached = cache_dir / f"second-opinion-{key}.pkl"
    if cached.exists():
        try:
            with open(cached, "rb") as f:
                return pickle.load(f)
        except Exception:  # a torn or foreign file: train again
            log.warning("second opinion cache unreadable; training again")
    rows = labelled_rows(settings.training, root)
    if len(rows) < 50:
        log.warning("second opinion: only %d labelled messages found; running on the rules alone", len(rows))
        return None
    texts = [r["text"] for r in rows]
    model = SecondOpinion(settings).fit(texts, [words_of(t) for t in texts], rows)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(model, f)
        os.replace(tmp, cached)
    except OSError:
        log.warning("second opinion: could not write the cache in %s", cache_dir)
    return model
