"""tests/mutation.py, the `make mutation` runner: its files and its arithmetic (mutmut not run)."""

from __future__ import annotations

import re
from pathlib import Path

import mutation as runner  # tests/mutation.py
import pytest


def test_the_equivalents_file_parses_and_names_known_modules() -> None:
    entries = runner.read_equivalents()
    assert entries
    prefixes = tuple(runner.slug(m) + "." for m in runner.MODULES)
    for name, entry in entries.items():
        assert name.startswith(prefixes), name
        assert "__mutmut_" in name, name
        assert entry.line and entry.reason, name


def test_a_malformed_or_repeated_equivalent_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "eq.txt"
    bad.write_text("model.metrics.x_f__mutmut_1 | y = 1\n")  # no reason
    with pytest.raises(SystemExit, match=re.escape("expected 'mutant | mutated line | reason'")):
        runner.read_equivalents(bad)
    bad.write_text("m.x__mutmut_1 | a | b | why\nm.x__mutmut_1 | a | why\n")
    with pytest.raises(SystemExit, match="listed twice"):
        runner.read_equivalents(bad)
    good = tmp_path / "ok.txt"
    good.write_text("# comment\n\nm.x__mutmut_1 | t: int | None = None | why\n")
    assert runner.read_equivalents(good)["m.x__mutmut_1"].line == "t: int | None = None"


def test_every_declaration_matches_its_module_once() -> None:
    for module, declarations in runner.DECLARATIONS.items():
        assert module in runner.MODULES
        source = (runner.ROOT / module).read_text(encoding="utf-8")
        names = [d.name for d in declarations]
        assert len(set(names)) == len(names)
        for d in declarations:
            assert source.count(d.old) == 1, d.name
            assert d.new != d.old, d.name


def test_every_listed_test_file_exists() -> None:
    for module, tests in runner.MODULES.items():
        assert (runner.ROOT / module).is_file(), module
        for test in tests:
            assert (runner.ROOT / test.partition("::")[0]).is_file(), test


def test_score_line_counts_equivalents_out() -> None:
    result = runner.Result("model/x.py", killed=90, timeout=5, seconds=125.0)
    result.survived = ["a", "b", "c", "d", "e"]
    result.equivalent = ["f", "g"]
    assert result.line() == (
        "model/x.py: 95.0% (killed 95 of 100, equivalent 2, survived 5, timeout 5) in 2m05s"
    )


def test_added_lines_of_a_diff() -> None:
    diff = "--- a.py\n+++ a.py\n@@ -1 +1 @@\n-    x = 1\n+    x = 2\n"
    assert runner.added_lines(diff) == ["x = 2"]
