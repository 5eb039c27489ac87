"""The clinician review sheet: docs/clinician-review.md, generated from the knowledge files.

    python -m bot.tools.review_sheet            # (re)write docs/clinician-review.md
    python -m bot.tools.review_sheet --check    # exit 1 when the file is not current (make validate)

The sheet shows everything the triage engine knows, in tables a clinician can review and sign
without reading YAML or Python: the symptom concepts (class, normal window, what escalates them,
how patients say them, the source), the thresholds, the combinations, the ConText cues and the
spelling help. Its header carries a content hash of the knowledge files, so a signature always
names the exact knowledge it approved. The output is deterministic (no dates), so `--check` can
compare it byte for byte.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

from bot.triage.knowledge_base import CLASS_LEVEL, KNOWLEDGE_DIR

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "docs" / "clinician-review.md"
FILES = ("concepts.yml", "values.yml", "context.yml", "spelling.yml", "learned.yml")
LEVEL_WORDS = {
    "self_care": "self-care advice",
    "routine": "call the clinic in office hours",
    "urgent": "contact the clinic now",
    "emergency": "call the emergency number now",
    "info": "no symptom",
}
CATEGORY_MEANING = {
    "negated": "The patient says she does not have it (\"no fever\"): it does not count.",
    "hypothetical": "A question or a possibility (\"what if I get a fever?\"): it does not count.",
    "other_person": "About someone else; their past experience does not count, a report about the patient now does.",
    "someone_else": "Clearly not the patient (a man, \"people\", something read online): it does not count.",
    "proxy": "A partner or relative writing about the patient: it counts, marked as a proxy report.",
    "ongoing": "Tense and time words, used with other_person (now, today, still).",
    "past": "Tense and time words, used with other_person (had, was, after hers).",
    "historical": "Before the procedure or long ago: it does not count.",
    "severe": "Raises an expected effect to a warning sign when the concept escalates on 'severe'.",
    "worsening": "Raises an expected effect to a warning sign when the concept escalates on 'worsening'.",
    "mild": "Recorded for the nurse; never lowers a warning sign.",
    "during_procedure": "Happened during the test at the clinic (fainting there, seen by staff, is "
    "urgent rather than emergency).",
    "terminate": "Ends the reach of other cues (\"no chills, but my temperature is up\").",
    "pseudo": "Looks like a cue but is not one; blocks the shorter cue inside it.",
}
KNOWN_CONCEPT_KEYS = {
    "id",
    "name",
    "class",
    "normal_window_days",
    "escalates_when",
    "escalates_to",
    "defers_to_reading",
    "yields_to",
    "reads",
    "during_procedure_level",
    "phrasings",
    "source",
}
ESCALATOR_WORDS = {
    "severe": "severe",
    "worsening": "worsening",
    "not_relieved": "not relieved by painkillers",
    "pain_score": "pain score at or above {severe_pain_score}/10",
    "pads_per_hour": "{heavy_bleeding_pads_per_hour} pad(s) an hour or more",
}


# ------------------------------------------------------------------------------------ Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")


def md(text) -> str:
    """Plain text for a table cell: Markdown characters and pipes escaped, on one line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def code(text) -> str:
    """A code span for a table cell (pipes escaped, as GitHub-flavoured Markdown tables need)."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def codes(items: Iterable) -> str:
    return " · ".join(code(i) + (" ⚠" if isinstance(i, bool) else "") for i in items)


def yaml_booleans(docs: dict[str, dict]) -> list[str]:
    """Where YAML turned an unquoted word (yes, no, on, off, true, false) into a boolean: the engine
    then sees "True"/"False", not the word. Each one should be quoted in the knowledge file."""
    found: list[str] = []

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, bool):
                    found.append(f"{where}: the key {k} (an unquoted yes/no/on/off?)")
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, bool):
                    found.append(f"{where}[{i}]: the word {v} (an unquoted yes/no/on/off?)")
                else:
                    walk(v, f"{where}[{i}]")

    for name, doc in docs.items():
        walk(doc, name)
    return found


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell if cell else " " for cell in row) + " |" for row in rows]
    return out


def _number(value) -> str:
    return str(value)


# ------------------------------------------------------------------------------------ reading


def content_hash(directory: Path = KNOWLEDGE_DIR) -> str:
    """SHA-256 over the knowledge files (name and bytes, in a fixed order)."""
    h = hashlib.sha256()
    for name in FILES:
        h.update(name.encode() + b"\0" + (directory / name).read_bytes() + b"\0")
    return h.hexdigest()


def _threshold_notes(values_text: str) -> dict[str, str]:
    """The comment after each threshold in values.yml (the reason a clinician checks)."""
    notes, inside = {}, False
    for line in values_text.splitlines():
        if re.match(r"^thresholds:\s*$", line):
            inside = True
            continue
        if inside and line and not line[0].isspace():
            break
        m = re.match(r"^\s+(\w+):[^#]*#\s*(.*)$", line)
        if inside and m:
            notes[m.group(1)] = m.group(2).strip()
    return notes


def _load(directory: Path) -> dict[str, dict]:
    return {name: yaml.safe_load((directory / name).read_text(encoding="utf-8")) or {} for name in FILES}


# ------------------------------------------------------------------------------------ sections


def _concepts(docs: dict[str, dict]) -> list[str]:
    concepts = docs["concepts.yml"].get("concepts") or []
    thresholds = docs["values.yml"].get("thresholds") or {}
    fmt = {k: _number(v) for k, v in thresholds.items() if not isinstance(v, list)}
    rows = []
    for c in concepts:
        klass = c.get("class", "")
        level = CLASS_LEVEL.get(klass, "?")
        window = c.get("normal_window_days")
        window_text = f"{_number(window)} day{'' if window == 1 else 's'}" if window is not None else ""
        esc = []
        if c.get("escalates_when"):
            words = [ESCALATOR_WORDS.get(e, e).format(**fmt) for e in c["escalates_when"]]
            esc.append("when: " + md(", ".join(words)))
        if c.get("escalates_to"):
            esc.append("to: " + code(c["escalates_to"]) + " (urgent)")
        reading = c.get("defers_to_reading")
        if reading:
            what = {
                "temperature": f"a thermometer reading (under {fmt.get('fever_celsius', '?')} C / "
                f"{fmt.get('fever_fahrenheit', '?')} F)",
                "pads_per_hour": f"a pads-an-hour count (under {fmt.get('heavy_bleeding_pads_per_hour', '?')})",
            }.get(reading.get("value"), str(reading.get("value")))
            esc.append(md(f"a number decides: {what} gives {reading.get('below_threshold')}"))
        if c.get("yields_to"):
            esc.append("yields to: " + ", ".join(code(y) for y in c["yields_to"]))
        if c.get("reads"):
            esc.append(
                "takes a reading: " + md(", ".join(str(r) for r in c["reads"])) + " (the bot asks for a missing one)"
            )
        if c.get("during_procedure_level"):
            esc.append(md(f"during the test, seen by staff: {c['during_procedure_level']}"))
        for key in sorted(set(c) - KNOWN_CONCEPT_KEYS):  # a new field still reaches the reviewer
            esc.append(md(f"{key}: {c[key]}"))
        phrasings = c.get("phrasings") or []
        rows.append(
            [
                code(c.get("id", "")),
                md(c.get("name", "")),
                f"{md(klass)} → **{level}**",
                window_text,
                "<br>".join(esc),
                f"({len(phrasings)}) " + codes(phrasings),
                md(c.get("source", "")),
            ]
        )
    lines = [
        "## Concepts",
        "",
        "Class → the level it calls for on its own: expected_effect → self_care ("
        + LEVEL_WORDS["self_care"]
        + "), other_symptom → routine ("
        + LEVEL_WORDS["routine"]
        + "), warning_sign → urgent ("
        + LEVEL_WORDS["urgent"]
        + "), emergency_sign → emergency ("
        + LEVEL_WORDS["emergency"]
        + "), not_a_symptom → info (never raises the level). The most "
        "urgent finding in a message wins. An expected effect lasting longer than its normal "
        "window, or starting later than that after the test, is routine.",
        "",
        "Phrasing syntax: `word*` any word starting so · `#` any number · `(a|b)` one of these "
        "words · `x?` x may be left out · `...` up to 3 other words in between · `{list}` one word "
        "of a word list (below). Matching ignores case and fixes small misspellings.",
        "",
    ]
    lines += table(
        [
            "Concept id",
            "Name",
            "Class → level",
            "Normal window",
            "Escalates when / to, other rules",
            "Phrasings (count)",
            "Source",
        ],
        rows,
    )
    word_lists = docs["concepts.yml"].get("word_lists") or {}
    if word_lists:
        lines += ["", "### Word lists used in the phrasings", ""]
        lines += table(
            ["List", "Words"], [[code("{" + name + "}"), codes(words)] for name, words in word_lists.items()]
        )
    return lines


def _thresholds(docs: dict[str, dict], values_text: str) -> list[str]:
    values = docs["values.yml"]
    notes = _threshold_notes(values_text)
    rows = []
    for key, value in (values.get("thresholds") or {}).items():
        shown = " to ".join(_number(v) for v in value) if isinstance(value, list) else _number(value)
        rows.append([code(key), md(shown), md(notes.get(key, ""))])
    lines = [
        "## Thresholds",
        "",
        "From `values.yml`. A reading at or above a threshold is a warning "
        "sign (urgent); readings outside the plausible ranges are not read as temperatures.",
        "",
    ]
    lines += table(["Threshold", "Value", "Meaning and source"], rows)
    other = []
    labels = {
        "temperature_cues": "Words that introduce a temperature",
        "pain_cues": "Words that introduce a pain score",
        "pain_cues_digits_only": "Words after which only a written digit is a pain score",
        "procedure_words": "Words that name the procedure (for \"3 days after the test\")",
    }
    for key, label in labels.items():
        if values.get(key):
            other.append([md(label), codes(values[key])])
    for value, concept in (values.get("implies") or {}).items():
        other.append([md(f"A {value.replace('_', ' ')} on its own implies"), code(concept)])
    for answer, words in (values.get("answers") or {}).items():
        flag = " ⚠" if isinstance(answer, bool) else ""
        other.append([md(f"Answers read as \"{answer}\" to \"do the painkillers help?\"") + flag, codes(words)])
    if other:
        lines += ["", "### How numbers and short answers are read", ""]
        lines += table(["Rule", "Words"], other)
    return lines


def _combinations(docs: dict[str, dict]) -> list[str]:
    rows = []
    for c in docs["concepts.yml"].get("combinations") or []:
        rows.append(
            [
                md(c.get("name", "")),
                ", ".join(code(x) for x in c.get("all_of") or []),
                ", ".join(code(x) for x in c.get("any_of") or []),
                ", ".join(code(x) for x in c.get("and_any_of") or []),
                f"**{md(c.get('level', ''))}**",
                md(c.get("source", "")),
            ]
        )
    lines = [
        "## Combinations",
        "",
        "Findings that together call for more than either alone; checked "
        "across the whole conversation (a positive test mentioned earlier still counts).",
        "",
    ]
    return lines + table(["Combination", "All of", "Any of", "And any of (another finding)", "Level", "Source"], rows)


def _context(docs: dict[str, dict]) -> list[str]:
    rows = []
    for category, rules in (docs["context.yml"].get("categories") or {}).items():
        cues = []
        for r in rules or []:
            reach = r.get("direction", "")
            if r.get("max_words"):
                reach += f", {r['max_words']} words"
            cues.append(f"{code(r.get('cue', ''))} ({md(reach)})")
        rows.append([code(category), md(CATEGORY_MEANING.get(category, "")), str(len(cues)), "<br>".join(cues)])
    lines = [
        "## ConText cues (context.yml)",
        "",
        "A cue changes the meaning of the symptoms near it in the same sentence: forward = the "
        "symptoms after it, backward = before it, both = either side; the number of words is "
        "how far it reaches (default: the rest of the sentence).",
        "",
    ]
    return lines + table(["Category", "What it does", "Cues", "Cues (reach)"], rows)


def _spelling(docs: dict[str, dict]) -> list[str]:
    doc = docs["spelling.yml"]
    abbreviations = doc.get("abbreviations") or {}
    lines = [
        "## Spelling help (spelling.yml)",
        "",
        "Words one or two letters away from a knowledge word are corrected when they are not "
        "common English. Listed by hand:",
        "",
    ]
    rows = [
        ["Text-speak replaced before matching", " · ".join(f"{code(k)} → {code(v)}" for k, v in abbreviations.items())],
        ["Never corrected into a symptom word", codes(doc.get("never_correct") or [])],
    ]
    return lines + table(["Rule", "Words"], rows)


def _learned(docs: dict[str, dict]) -> list[str]:
    doc = docs["learned.yml"]
    lines = [
        "## The learned second opinion (learned.yml)",
        "",
        "A text classifier trained on the project's labelled messages (never on the dev vignettes). "
        f"It may only **raise** the level the rules give, never lower it, never above "
        f"**{md(str(doc.get('max_level', 'urgent')))}** (an emergency only on a red flag already found), and it is not consulted when the message "  # noqa: E501
        "gives a reading (temperature, pain score, pads), is a bare answer, or names a symptom the "
        "rules set aside (negated, hypothetical, someone else's).",
        "",
    ]
    rows = [
        [
            code(name),
            f"**{md(str(h.get('raise_to')))}**",
            f"{md(str(h.get('applies_from', 'info')))} to below {md(str(h.get('applies_below', h.get('raise_to'))))}",
            md(str(h.get("threshold"))),
        ]
        for name, h in (doc.get("heads") or {}).items()
    ]
    lines += table(["Head", "Raises to", "Only when the rules found", "Probability at or above"], rows)
    return lines + ["", "Trained from: " + ", ".join(code(t) for t in doc.get("training") or [])]


def render(directory: Path = KNOWLEDGE_DIR) -> str:
    directory = Path(directory)
    docs = _load(directory)
    values_text = (directory / "values.yml").read_text(encoding="utf-8")
    digest = content_hash(directory)
    try:
        shown_dir = directory.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        shown_dir = directory.as_posix()
    concepts = docs["concepts.yml"].get("concepts") or []
    n_phrasings = sum(len(c.get("phrasings") or []) for c in concepts)
    n_cues = sum(len(r or []) for r in (docs["context.yml"].get("categories") or {}).values())
    lines = [
        "<!-- GENERATED FILE: do not edit by hand. Change the knowledge files, then run "
        "`make review-sheet` (python -m bot.tools.review_sheet). -->",
        "# Clinician review sheet: HSG aftercare triage knowledge",
        "",
        "Generated by `python -m bot.tools.review_sheet` from "
        + ", ".join(f"`{shown_dir}/{name}`" for name in FILES)
        + ". Do not edit this file: change the "
        "knowledge files and regenerate it (`make validate` fails while it is out of date).",
        "",
        f"**Knowledge content hash (SHA-256 of the {len(FILES)} files): `{digest}`**",
        "",
        f"{len(concepts)} concepts, {n_phrasings} phrasings, "
        f"{len(docs['concepts.yml'].get('combinations') or [])} combinations, {n_cues} context cues.",
        "",
    ]
    booleans = yaml_booleans(docs)
    if booleans:
        lines += [
            "> **⚠ Check: YAML read these unquoted words as true/false, so the engine does not see "
            "the word itself (marked ⚠ below). Quote them in the knowledge file "
            "(\"off\", \"yes\", \"no\").**",
            ">",
        ]
        lines += [f"> - {md(b)}" for b in booleans]
        lines += [""]
    lines += [
        "Levels, least to most urgent: info (no symptom), self_care (" + LEVEL_WORDS["self_care"] + "), "
        "routine ("
        + LEVEL_WORDS["routine"]
        + "), urgent ("
        + LEVEL_WORDS["urgent"]
        + "), emergency ("
        + LEVEL_WORDS["emergency"]
        + ").",
        "",
    ]
    lines += _concepts(docs) + [""] + _thresholds(docs, values_text) + [""] + _combinations(docs)
    lines += [""] + _context(docs) + [""] + _spelling(docs) + [""] + _learned(docs) + [""]
    lines += [
        "## Sign-off",
        "",
        f"I have reviewed the clinical knowledge above, content hash `{digest[:16]}…` (in full in the "
        "header), and approve it for use in the HSG aftercare assistant, except as noted.",
        "",
    ]
    lines += table(
        ["", ""],
        [
            ["Reviewer (name, role)", ""],
            ["Registration number", ""],
            ["Date", ""],
            ["Signature", ""],
            ["Changes requested / notes", ""],
        ],
    )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.tools.review_sheet", description="Generate the clinician review sheet."
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when the sheet is not current")
    parser.add_argument("--knowledge", type=Path, default=KNOWLEDGE_DIR, help="knowledge folder")
    parser.add_argument("--out", type=Path, default=OUTPUT, help="the sheet (default docs/clinician-review.md)")
    args = parser.parse_args(argv)
    text = render(args.knowledge)
    for problem in yaml_booleans(_load(args.knowledge)):
        print(f"warning: knowledge files: YAML read as a boolean: {problem}", file=sys.stderr)
    shown = args.out.resolve().relative_to(ROOT) if args.out.resolve().is_relative_to(ROOT) else args.out
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current == text:
            print(f"{shown} is current (knowledge hash {content_hash(args.knowledge)[:12]})")
            return 0
        print(
            f"{shown} is out of date with the knowledge files: run `make review-sheet` "
            f"(python -m bot.tools.review_sheet) and commit it.",
            file=sys.stderr,
        )
        diff = list(
            difflib.unified_diff(current.splitlines(), text.splitlines(), "on disk", "generated", n=0, lineterm="")
        )
        for line in diff[:12]:
            print("  " + line[:200], file=sys.stderr)
        if len(diff) > 12:
            print(f"  ... ({len(diff) - 12} more diff lines)", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {shown} (knowledge hash {content_hash(args.knowledge)[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
