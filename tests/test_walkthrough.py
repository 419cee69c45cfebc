"""docs/WALKTHROUGH.md and examples/article.py run as written.

Every ``python`` block of the walkthrough is executed in order in one namespace (each carries
its own asserts); every ``houseprice`` command in it parses with the CLI's parser; every
module it names exists. The article example prints the article's cost lines and agrees with
the library.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from model.workflow.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
WALKTHROUGH = ROOT / "docs" / "WALKTHROUGH.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", WALKTHROUGH.read_text(), re.M | re.S)


def test_the_walkthrough_python_blocks_run_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    code = blocks("python")
    assert len(code) >= 8
    namespace: dict[str, object] = {"__name__": "walkthrough"}
    for i, block in enumerate(code):
        exec(compile(block, f"{WALKTHROUGH.name} python block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Epoch 1000, Cost:" in out and "size drift (PSI):" in out


def test_the_walkthrough_commands_parse_and_its_modules_exist() -> None:
    text = WALKTHROUGH.read_text()
    lines = [line for block in blocks("bash") for line in block.splitlines()]
    commands = [line for line in lines if line.startswith("houseprice ")]
    rows = [line.split("|") for line in text.splitlines() if re.match(r"\| \d+\. ", line)]
    commands += [m for row in rows for m in re.findall(r"`(houseprice [^`]*)`", row[3])]
    assert len(commands) >= 6
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command)[1:]
        if "--help" in argv:
            assert main(argv) == 0
        else:
            parser.parse_args(argv)  # exits 2 on an unknown subcommand or flag
    modules = set(re.findall(r"`((?:model|app)/[\w/]+\.py)`", text))
    assert len(modules) >= 8
    for module in modules:
        assert (ROOT / module).is_file(), module
    written = set(re.findall(r'out / "(\w+\.png)"', (ROOT / "model/workflow/plots.py").read_text()))
    plots = {m for row in rows for m in re.findall(r"(\w+\.png)", row[4])}
    assert len(plots) >= 6 and plots <= written, plots - written
    steps = re.findall(r"^\| (\d+)\. ", text, re.M)
    assert steps == [str(k) for k in range(1, 11)]


def test_the_article_example_prints_the_article_run_and_agrees_with_the_library() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "article.py")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("Epoch ")]
    assert [line.split(",")[0] for line in epochs] == [f"Epoch {k}" for k in range(100, 1001, 100)]
    costs = [float(line.split("Cost: ")[1]) for line in epochs]
    assert costs == sorted(costs, reverse=True)
    assert "they agree to 1e-9" in lines
