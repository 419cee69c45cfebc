"""The Dockerfile: hadolint clean, and consistent with the service it packages.

Checked statically here: the instructions are read back and compared with the app (routes,
port), the settings module, the dependency lock and the build context that .dockerignore
leaves. test_container_image.py builds and runs it with podman.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest
import yaml

from .helpers import ROOT, exec_form, option, run, stages, values, venv_tool

pytestmark = pytest.mark.deploy


def test_hadolint_reports_nothing() -> None:
    proc = run([venv_tool("hadolint"), "--no-color", "--failure-threshold", "style", "Dockerfile"])
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_hadolint_ignores_are_explained() -> None:
    # No blanket config file; an inline ignore needs a reason in the comment line above it.
    assert not (ROOT / ".hadolint.yaml").exists() and not (ROOT / ".hadolint.yml").exists()
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            above = lines[i - 1].strip() if i else ""
            assert above.startswith("#") and len(above) > 10, f"Dockerfile:{i + 1}: no reason"


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    # The tool really lints (a wrapper that always exits 0 would pass the test above).
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install numpy\n")
    proc = run([venv_tool("hadolint"), "--no-color", str(bad)])
    assert proc.returncode != 0 and "DL3006" in proc.stdout, proc.stdout


def test_two_stages_on_one_pinned_base_image(dockerfile: list[tuple[str, str]]) -> None:
    froms = values(dockerfile, "FROM")
    assert len(froms) == 2, froms
    images = [f.split()[0] for f in froms]
    assert images[0] == images[1], "the venv is copied across stages: same interpreter needed"
    # One build argument names the base (CI passes a Debian-built one); its default is pinned.
    assert images[0] == "${BASE_IMAGE}", images[0]
    first_from = next(i for i, (ins, _) in enumerate(dockerfile) if ins == "FROM")
    args = dict(a.split("=", 1) for a in values(dockerfile[:first_from], "ARG"))
    name, _, tag = args["BASE_IMAGE"].partition(":")
    assert name == "python" and re.fullmatch(r"3\.11\.\d+-slim-bookworm", tag), images[0]
    assert [f.split()[-1] for f in froms] == ["build", "runtime"]


def test_build_stage_trains_the_default_model(dockerfile: list[tuple[str, str]]) -> None:
    build = stages(dockerfile)[0]
    train = [r for r in values(build, "RUN") if "houseprice train" in r]
    assert len(train) == 1, "the build stage must train the default model"
    argv = train[0].split("&&")[0].split()
    config = option(argv, "--config")
    assert (ROOT / config).is_file(), config
    copies = " ".join(values(build, "COPY"))
    assert "data/ames.csv" in copies and "configs/" in copies


def test_runtime_stage_is_slim_non_root_and_serves_one_worker(
    dockerfile: list[tuple[str, str]], settings_port: int, app_get: Callable[[str], int]
) -> None:
    runtime = stages(dockerfile)[-1]
    copies = values(runtime, "COPY")
    # Only the virtualenv and the trained artifact come from the build stage; no sources,
    # no data, no tests (the wheel is installed in the venv).
    assert all(c.startswith("--from=build ") for c in copies), copies

    user = values(runtime, "USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 10000, f"USER {user}: numeric, not root"
    assert gid == "" or gid.isdigit()

    env = " ".join(values(runtime, "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env

    assert values(runtime, "EXPOSE") == [str(settings_port)]

    entry = exec_form(values(runtime, "ENTRYPOINT")[-1])
    # the serve entry (app/serve.py): one uvicorn worker, SIGTERM drain, GC policy
    assert entry[:3] == ["python", "-m", "app"], entry
    assert option(entry, "--host") == "0.0.0.0"
    assert option(entry, "--port") == str(settings_port)
    assert not values(runtime, "CMD") or exec_form(values(runtime, "CMD")[-1])

    health = values(runtime, "HEALTHCHECK")[-1]
    check = exec_form(health[health.index("CMD ") + 4 :])
    assert check[0] == "python", "no curl in the slim image"
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]+)", check[-1])
    assert url is not None, check
    assert int(url.group(1)) == settings_port
    assert url.group(2) == "/health/live" and app_get(url.group(2)) == 200


def test_model_path_points_at_the_baked_artifact(dockerfile: list[tuple[str, str]]) -> None:
    build, runtime = stages(dockerfile)
    train = next(r for r in values(build, "RUN") if "houseprice train" in r)
    out = PurePosixPath(option(train.split(), "--out"))
    copy = next(c for c in values(runtime, "COPY") if c.split()[1] == str(out.parent))
    env = " ".join(values(runtime, "ENV"))
    model_path = re.search(r"MODEL_PATH=(\S+)", env)
    assert model_path is not None
    assert PurePosixPath(model_path.group(1)) == PurePosixPath(copy.split()[2]) / out.name


def test_runtime_dependencies_come_from_the_lock(dockerfile: list[tuple[str, str]]) -> None:
    build = stages(dockerfile)[0]
    install = " ".join(values(build, "RUN"))
    assert "--requirement requirements/runtime.txt" in install and "--no-deps" in install
    assert "--require-hashes" in install
    lines = (ROOT / "requirements" / "runtime.txt").read_text().splitlines()
    pins = [line for line in lines if re.match(r"[A-Za-z0-9_.-]+==", line)]
    assert pins and all(line.endswith(" \\") for line in pins), "every pin carries hashes"
    hashes = [line.strip() for line in lines if line.strip().startswith("--hash=")]
    assert len(hashes) >= len(pins)
    assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}( \\)?", h) for h in hashes)
    assert "pip check" in install
    # The wheel is installed without extras (no "[plots]"/"[dev]").
    wheel = re.search(r"/wheels/houseprice-[\w.]+-py3-none-any\.whl(\[[^\]]*\])?", install)
    assert wheel is not None and wheel.group(1) is None
    lock = (ROOT / "requirements" / "runtime.txt").read_text().lower()
    for dev_only in ("matplotlib", "pytest", "scikit-learn", "pandas", "hypothesis", "ruff"):
        assert f"\n{dev_only}==" not in lock, f"{dev_only} must not reach the runtime image"
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None and f"houseprice-{version.group(1)}-py3" in install


def test_dockerignore_admits_exactly_what_is_copied(dockerfile: list[tuple[str, str]]) -> None:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    assert patterns[0] == "*", "allow-list: exclude everything, then admit the build inputs"
    admitted = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    sources = []
    for args in values(stages(dockerfile)[0], "COPY"):
        if not args.startswith("--from"):
            sources += args.split()[:-1]
    for src in sources:
        src = src.rstrip("/").removeprefix("./")
        assert any(src == a or src.startswith(a + "/") for a in admitted), src
        assert (ROOT / src).exists(), src
    for kept_out in (".venv", ".git", "tests", "runs", "artifacts", "k8s", "benchmarks"):
        assert not any(kept_out == a or a.startswith(kept_out + "/") for a in admitted)


def test_training_command_lines_parse_with_the_real_cli(dockerfile: list[tuple[str, str]]) -> None:
    # The image build and the compose `train` service call the CLI; a renamed flag would only
    # show at `docker build` time, so parse both with the CLI's own parser here.
    from model.workflow.cli import build_parser

    build = stages(dockerfile)[0]
    run_line = next(r for r in values(build, "RUN") if "houseprice train" in r)
    argv = run_line.split("&&")[0].split()
    image_args = build_parser().parse_args(argv[argv.index("train") :])
    assert image_args.no_plots, "matplotlib is not in the image"

    train = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["train"]
    assert train["entrypoint"][-1] == "train"
    compose_args = build_parser().parse_args(["train", *train["command"]])
    assert compose_args.config == image_args.config and compose_args.no_plots
