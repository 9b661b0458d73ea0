"""Freeze the test split of the text corpus: `python scripts/freeze_text_split.py [--check]`.

Writes scripts/text_split/test_ids.txt (every test id of scripts/corpus/*.tsv under the rule
of detectors/text_corpus.py: sha256 of `lang-template`, 70 / 15 / 15) and its sha256 in
scripts/text_split/test_ids.sha256. The rule never changes; corpus files that arrive later add
their own test ids, and an id once frozen is never dropped. `--check`
only verifies that the manifest matches the corpus and its hash.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.text_corpus import manifest, read_many, sha256_text  # noqa: E402

CORPUS = ROOT / "scripts" / "corpus"
OUT = ROOT / "scripts" / "text_split"
IDS = OUT / "test_ids.txt"
SUM = OUT / "test_ids.sha256"


def main(argv: list[str]) -> int:
    lines = read_many(sorted(CORPUS.glob("*.tsv")))
    text = manifest(lines, "test")
    frozen = set(IDS.read_text("utf-8").split()) if IDS.exists() else set()
    dropped = frozen - set(text.split())
    if dropped:  # a corpus author removed or renamed lines: say so, keep them out of training
        print(
            f"note: {len(dropped)} frozen test ids are gone from the corpus "
            f"(e.g. {sorted(dropped)[:3]}); they stay listed",
            file=sys.stderr,
        )
        text = "".join(f"{i}\n" for i in sorted(set(text.split()) | frozen))
    if "--check" in argv:
        ok = (
            IDS.exists()
            and IDS.read_text("utf-8") == text
            and SUM.read_text("utf-8").split()[0] == sha256_text(text)
        )
        print("test manifest matches the corpus" if ok else "test manifest is stale")
        return 0 if ok else 1
    OUT.mkdir(parents=True, exist_ok=True)
    IDS.write_text(text, "utf-8")
    SUM.write_text(f"{sha256_text(text)}  test_ids.txt\n", "utf-8")
    n_test = len(text.split())
    print(f"{n_test} test ids of {len(lines)} lines; sha256 {sha256_text(text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
