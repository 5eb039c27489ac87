"""tests/nlu/holdout.yml stays a real held-out set: every intent and FAQ answer covered, nothing
copied (exactly or nearly) from the training data in data/nlu/.

If this fails after you added training examples: you wrote one too close to a held-out example.
Reword the training example (or move the held-out one out of holdout.yml and write a new one).
"""
from __future__ import annotations

import difflib
import re
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HOLDOUT = ROOT / "tests" / "nlu" / "holdout.yml"
BASE_INTENTS = {"greet", "goodbye", "thanks", "affirm", "deny", "dont_know", "bot_challenge", "out_of_scope",
                "inform", "report_symptom"}
NEAR = 0.85          # difflib ratio on normalised text at or above which two examples are near duplicates
SAME_WORDS = 0.8     # Jaccard overlap of the word sets at or above which they are near duplicates


def examples(path: Path):
    doc = yaml.safe_load(path.read_text()) or {}
    out = []
    for block in doc.get("nlu") or []:
        if "intent" not in block:
            continue
        for line in str(block.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                out.append((block["intent"], line[2:].strip()))
    return out


def norm(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)        # entity annotations, if any
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def near_duplicate(a: str, b: str) -> bool:
    if a == b or a.replace(" ", "") == b.replace(" ", ""):
        return True
    wa, wb = set(a.split()), set(b.split())
    if wa and wb and len(wa & wb) / len(wa | wb) >= SAME_WORDS:
        return True
    m = difflib.SequenceMatcher(None, a, b)
    return m.real_quick_ratio() >= NEAR and m.quick_ratio() >= NEAR and m.ratio() >= NEAR


def test_every_intent_and_faq_answer_has_6_to_10_examples():
    held = Counter(intent for intent, _ in examples(HOLDOUT))
    faq = {intent for intent, _ in examples(ROOT / "data" / "nlu" / "faq.yml")}
    assert faq and all(i.startswith("faq/") for i in faq)
    assert set(held) == BASE_INTENTS | faq, set(held) ^ (BASE_INTENTS | faq)
    wrong = {i: n for i, n in held.items() if not 6 <= n <= 10}
    assert not wrong, wrong


def test_no_example_is_copied_from_the_training_data():
    train = [(i, t, norm(t)) for p in sorted((ROOT / "data" / "nlu").glob("*.yml")) for i, t in examples(p)]
    held = examples(HOLDOUT)
    clashes = []
    for intent, text in held:
        n = norm(text)
        for t_intent, t_text, t_norm in train:
            if near_duplicate(n, t_norm):
                clashes.append(f"[{intent}] {text!r} ~ data/nlu [{t_intent}] {t_text!r}")
    assert not clashes, "held-out examples too close to training data:\n" + "\n".join(clashes)


def test_no_duplicates_inside_the_held_out_set():
    seen = {}
    for intent, text in examples(HOLDOUT):
        key = norm(text)
        assert key not in seen, f"{text!r} twice ({seen.get(key)} and {intent})"
        seen[key] = intent
