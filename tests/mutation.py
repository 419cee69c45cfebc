"""Mutation testing of the core library and the request schemas, one module at a time.

``make mutation`` (or ``python tests/mutation.py [MODULE ...]``) runs mutmut 3 on each module
of ``MODULES`` with the unit tests listed for it, in its own workspace ``.mutation/<module>/``
(the repository's files linked in, a ``[tool.mutmut]`` section written for that module alone),
so one module can be rerun without the others and mutmut's cache keeps the verdicts of functions
that did not change. mutmut mutates function bodies only; the limits a module declares outside a
function (pydantic ``Field``/``ConfigDict`` arguments) are mutated by hand here
(``DECLARATIONS``), one substitution at a time, and tested the same way.

A surviving mutant is either a hole in the tests or *equivalent* (no input can tell it from the
original); the equivalent ones are listed, one by one with the changed line and a reason, in
``tests/mutation_equivalents.txt``. The score of a module is killed / (mutants - equivalent).
Workers run in a fork server (``process_isolation = "forkserver"``) with one BLAS/OpenMP thread:
forking a process whose OpenMP pool is running hangs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.txt"
LINKED = ("model", "app", "tests", "data", "configs")  # what the unit tests read
UNIT = "not e2e and not deploy and not slow and not container"
THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
ONE_THREAD = dict.fromkeys(THREADS, "1")

# Each module and the unit tests that cover it, in the order a run takes them (the ones issue 20
# names first).
MODULES: dict[str, tuple[str, ...]] = {
    "model/metrics.py": ("tests/test_metrics.py", "tests/test_mutation_holes_metrics.py"),
    "model/linear.py": ("tests/test_linear.py", "tests/test_mutation_holes_linear.py"),
    "model/drift.py": ("tests/test_drift.py", "tests/test_mutation_holes_drift.py"),
    "model/workflow/artifact.py": (
        "tests/test_artifact.py",
        "tests/test_mutation_holes_artifact.py",
    ),
    "app/schemas.py": (  # test_app_units' schema tests, not its trained-artifact ones
        "tests/test_app_units.py::test_feature_spec_reads_metadata",
        "tests/test_app_units.py::test_schema_validates_one_house_and_batches",
        "tests/test_app_units.py::test_schema_example_row_is_valid",
        "tests/test_serving_fast_paths.py",
        "tests/test_mutation_holes_schemas.py",
        # the model's own V2 validator (v2_request_of) held to the generic path
        "tests/test_v2.py::test_the_one_pass_path_takes_only_what_the_generic_path_takes",
        "tests/test_v2.py::test_errors_are_the_same_with_or_without_the_one_pass_path",
        "tests/test_v2.py::test_the_one_pass_path_refuses_what_json_cannot_price",
    ),
    "app/body.py": ("tests/test_mutation_holes_body.py",),
    "model/workflow/data.py": ("tests/test_data.py", "tests/test_mutation_holes_data.py"),
    "model/base.py": ("tests/test_base.py", "tests/test_mutation_holes_base.py"),
    "model/logistic.py": ("tests/test_logistic.py", "tests/test_mutation_holes_logistic.py"),
    "model/cluster.py": (  # not the seconds-long inertia comparisons: the holes file checks
        # k-means++'s draws and Lloyd's iterations exactly
        "tests/test_cluster.py::test_lloyd_from_given_centres_matches_sklearn",
        "tests/test_cluster.py::test_fitted_state_follows_the_definitions",
        "tests/test_cluster.py::test_seeded_runs_are_reproducible",
        "tests/test_cluster.py::test_kmeans_plus_plus_picks_distinct_data_points",
        "tests/test_cluster.py::test_empty_cluster_is_moved_onto_a_point",
        "tests/test_cluster.py::test_random_init_and_single_cluster",
        "tests/test_cluster.py::test_errors",
        "tests/test_mutation_holes_cluster.py",
    ),
    "model/robust.py": ("tests/test_robust.py", "tests/test_mutation_holes_robust.py"),
    "model/kernel.py": ("tests/test_kernel.py", "tests/test_mutation_holes_kernel.py"),
    "model/preprocessing.py": (
        "tests/test_preprocessing.py",
        "tests/test_mutation_holes_preprocessing.py",
    ),
    "model/compose.py": ("tests/test_compose.py", "tests/test_mutation_holes_compose.py"),
    "model/pipeline.py": ("tests/test_pipeline.py", "tests/test_mutation_holes_pipeline.py"),
    "model/selection.py": ("tests/test_selection.py", "tests/test_mutation_holes_selection.py"),
    "model/tree.py": ("tests/test_tree.py", "tests/test_mutation_holes_tree.py"),
    "model/hist.py": (  # test_ensemble's fast tests (not its scikit-learn score comparisons),
        # test_quickscorer's small forests and the small exact tests of the holes file
        "tests/test_ensemble.py::test_one_split_has_the_stated_gain_and_leaf_values",
        "tests/test_ensemble.py::test_best_first_growth_respects_the_size_limits",
        "tests/test_ensemble.py::test_predict_on_raw_values_matches_the_binned_training_path",
        "tests/test_ensemble.py::test_missing_values_take_the_learned_direction",
        "tests/test_ensemble.py::test_unknown_category_is_priced_as_missing",
        "tests/test_ensemble.py::test_bad_category_codes_at_fit_name_the_column",
        "tests/test_ensemble.py::test_forest_without_bootstrap_is_one_tree_repeated",
        "tests/test_ensemble.py::test_split_search_over_several_nodes_equals_one_node_at_a_time",
        "tests/test_quickscorer.py::test_boosting_predictions_equal_the_levelwise_path[8-numeric]",
        "tests/test_quickscorer.py::test_boosting_predictions_equal_the_levelwise_path[8-categorical]",
        "tests/test_quickscorer.py::test_trees_too_large_for_a_word_are_walked_level_by_level",
        "tests/test_quickscorer.py::test_trees_without_a_split",
        "tests/test_mutation_holes_hist.py",
    ),
    "model/ensemble.py": (  # the same, with the loss, parameter and combining tests; the
        # holes file replays early stopping, subsampling and stacking exactly, in less time
        "tests/test_ensemble.py::test_one_split_has_the_stated_gain_and_leaf_values",
        "tests/test_ensemble.py::test_best_first_growth_respects_the_size_limits",
        "tests/test_ensemble.py::test_missing_values_take_the_learned_direction",
        "tests/test_ensemble.py::test_bad_category_codes_at_fit_name_the_column",
        "tests/test_ensemble.py::test_invalid_hyperparameters_name_the_parameter_and_range",
        "tests/test_ensemble.py::test_forest_without_bootstrap_is_one_tree_repeated",
        "tests/test_ensemble.py::test_voting_is_the_weighted_mean",
        "tests/test_ensemble.py::test_report_trees_calls_back_after_each_tree_only_within_its_block",
        "tests/test_boosting_losses.py::test_one_tree_has_the_stated_leaf_values",
        "tests/test_boosting_losses.py::test_invalid_loss_parameters_name_the_parameter",
        "tests/test_mutation_holes_ensemble.py",
    ),
    "model/derived.py": (  # its one training test on the quick estimator, not gbdt/voting
        "tests/test_derived.py::test_arithmetic_parses_and_names_its_columns",
        "tests/test_derived.py::test_anything_but_arithmetic_is_refused",
        "tests/test_derived.py::test_derived_features_compute_in_order_with_missing_as_missing",
        "tests/test_derived.py::test_derived_features_refuse_bad_specs",
        "tests/test_derived.py::test_config_reads_derived_features",
        "tests/test_derived.py::test_config_mistakes_in_derived_are_named",
        "tests/test_derived.py::test_the_streamed_engines_refuse_derived_features",
        "tests/test_derived.py::test_derived_features_train_and_serve_from_the_declared_inputs[ridge]",
        "tests/test_mutation_holes_derived.py",
    ),
    "model/fold.py": (  # and the compiled contributions, held to the compiled sums
        "tests/test_fold.py",
        "tests/test_explain.py::test_folded_contributions_and_prices_read_the_steps_one_way",
        "tests/test_explain.py::test_folded_terms_explain_as_the_general_path",
        "tests/test_mutation_holes_fold.py",
    ),
    "model/quickscorer.py": (  # held to the level-by-level walk of the same trees
        "tests/test_quickscorer.py",
        "tests/test_mutation_holes_quickscorer.py",
    ),
    "model/explain.py": ("tests/test_explain.py", "tests/test_mutation_holes_explain.py"),
    "model/residual.py": ("tests/test_residual.py", "tests/test_mutation_holes_residual.py"),
}


@dataclass(frozen=True)
class Declaration:
    """A hand-made mutant of code outside any function: ``old`` (found once) becomes ``new``."""

    name: str
    old: str
    new: str


# The limits app/schemas.py declares in class bodies and module constants.
DECLARATIONS: dict[str, tuple[Declaration, ...]] = {
    "app/schemas.py": (
        Declaration(
            "strict-extra",
            '_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)',
            '_STRICT = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)',
        ),
        Declaration(
            "strict-strict",
            '_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)',
            '_STRICT = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False)',
        ),
        Declaration(
            "strict-inf-nan",
            '_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)',
            '_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=True)',
        ),
        Declaration(
            "reload-extra",
            'model_config = ConfigDict(extra="forbid", strict=True)\n\n    path',
            'model_config = ConfigDict(extra="ignore", strict=True)\n\n    path',
        ),
        Declaration(
            "reload-strict",
            'model_config = ConfigDict(extra="forbid", strict=True)\n\n    path',
            'model_config = ConfigDict(extra="forbid", strict=False)\n\n    path',
        ),
        Declaration(
            "reload-path-length",
            'MODEL_PATH)",\n        max_length=4096,',
            'MODEL_PATH)",\n        max_length=4097,',
        ),
        Declaration(
            "reload-path-nul",
            r'pattern=r"^[^\x00]*$",  # no NUL byte',
            r'pattern=r"^.*$",  # no NUL byte',
        ),
        Declaration(
            "feedback-extra",
            'extra="forbid",\n        strict=True,\n        allow_inf_nan=False,\n',
            'extra="ignore",\n        strict=True,\n        allow_inf_nan=False,\n',
        ),
        Declaration(
            "feedback-strict",
            'extra="forbid",\n        strict=True,\n        allow_inf_nan=False,\n',
            'extra="forbid",\n        strict=False,\n        allow_inf_nan=False,\n',
        ),
        Declaration(
            "feedback-inf-nan",
            'extra="forbid",\n        strict=True,\n        allow_inf_nan=False,\n',
            'extra="forbid",\n        strict=True,\n        allow_inf_nan=True,\n',
        ),
        Declaration(
            "feedback-request-id-length",
            'None, max_length=128, description="As /predict returned it; found',
            'None, max_length=129, description="As /predict returned it; found',
        ),
        Declaration(
            "feedback-version-length",
            "model_version: str | None = Field(None, max_length=128)",
            "model_version: str | None = Field(None, max_length=129)",
        ),
        Declaration(
            "feedback-predicted-gt",
            'None, gt=0, le=1e9, description="As /predict returned it [USD]"',
            'None, ge=0, le=1e9, description="As /predict returned it [USD]"',
        ),
        Declaration(
            "feedback-predicted-le",
            'None, gt=0, le=1e9, description="As /predict returned it [USD]"',
            'None, gt=0, lt=1e9, description="As /predict returned it [USD]"',
        ),
        Declaration(
            "feedback-actual-gt",
            "actual_price: float = Field(gt=0, le=1e9,",
            "actual_price: float = Field(ge=0, le=1e9,",
        ),
        Declaration(
            "feedback-actual-le",
            "actual_price: float = Field(gt=0, le=1e9,",
            "actual_price: float = Field(gt=0, lt=1e9,",
        ),
        Declaration(
            "v2-tensor-extra",
            '__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]\n\n'
            "    name: str\n    shape",
            '__pydantic_config__ = ConfigDict(extra="ignore")  # type: ignore[misc]\n\n'
            "    name: str\n    shape",
        ),
        Declaration(
            "v2-request-extra",
            '__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]\n\n    id:',
            '__pydantic_config__ = ConfigDict(extra="ignore")  # type: ignore[misc]\n\n    id:',
        ),
        Declaration(
            "v2-id-length",
            "V2Id = Annotated[str, Field(max_length=128)]",
            "V2Id = Annotated[str, Field(max_length=129)]",
        ),
        Declaration(
            "v2-inputs-min-length",
            "inputs: Annotated[list[V2Tensor], Field(min_length=1)]",
            "inputs: Annotated[list[V2Tensor], Field(min_length=0)]",
        ),
    ),
}

PYTEST = (sys.executable, "-m", "pytest", "-x", "-q", "--rootdir=.", "-p", "no:cacheprovider")
KILLED = {1, 3}  # mutmut's exit codes for a failing test run
TIMEOUT = {-24, 24, 152, 255, 36}
SURVIVED = 0
NO_TESTS = {5, 33}


@dataclass(frozen=True)
class Equivalent:
    """One reviewed line of the equivalents file."""

    mutant: str
    line: str  # the mutated line as ``mutmut show`` prints it, without the leading '+'
    reason: str


def read_equivalents(path: Path = EQUIVALENTS) -> dict[str, Equivalent]:
    """``mutant | mutated line | reason`` per line; '#' starts a comment line."""
    out: dict[str, Equivalent] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        name, _, rest = raw.partition(" | ")
        line, _, reason = rest.rpartition(" | ")  # the line itself may hold " | "
        parts = [name.strip(), line.strip(), reason.strip()]
        if not all(parts):
            raise SystemExit(f"{path}:{number}: expected 'mutant | mutated line | reason'")
        if parts[0] in out:
            raise SystemExit(f"{path}:{number}: {parts[0]} is listed twice")
        out[parts[0]] = Equivalent(*parts)
    return out


@dataclass
class Result:
    module: str
    killed: int = 0
    timeout: int = 0
    survived: list[str] = field(default_factory=list)
    equivalent: list[str] = field(default_factory=list)
    no_tests: list[str] = field(default_factory=list)
    # mutant -> exit code (None: not run)
    other: dict[str, int | None] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)  # equivalents file lines that no longer hold
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return (
            self.killed
            + self.timeout
            + len(self.survived)
            + len(self.equivalent)
            + len(self.no_tests)
            + len(self.other)
        )

    @property
    def detected(self) -> int:
        return self.killed + self.timeout

    @property
    def counted(self) -> int:
        return self.total - len(self.equivalent)

    def line(self) -> str:
        score = 100.0 * self.detected / self.counted if self.counted else 100.0
        extra = f", timeout {self.timeout}" if self.timeout else ""
        if self.no_tests:
            extra += f", no tests {len(self.no_tests)}"
        if self.other:
            extra += f", other {len(self.other)}"
        return (
            f"{self.module}: {score:.1f}% (killed {self.detected} of {self.counted}, "
            f"equivalent {len(self.equivalent)}, survived {len(self.survived)}{extra}) "
            f"in {_minutes(self.seconds)}"
        )


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def workspace(module: str) -> Path:
    """``.mutation/<module>/``: the repository's files linked in and a pyproject for mutmut."""
    ws = WORK / slug(module)
    ws.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = ws / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name)
    settings = {
        "source_paths": ["model", "app"],
        "only_mutate": [module],
        "also_copy": ["data", "configs"],
        "pytest_add_cli_args_test_selection": list(MODULES[module]),
        "pytest_add_cli_args": ["-m", UNIT, "-p", "no:cacheprovider"],
        "process_isolation": "forkserver",
    }
    section = "\n[tool.mutmut]\n" + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in settings.items()
    )
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8") + section
    target = ws / "pyproject.toml"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return ws


def environment() -> dict[str, str]:
    env = dict(os.environ, **ONE_THREAD)
    env.pop("CI", None)  # a missing tool skips here: no unit test listed needs one
    return env


def verdicts(ws: Path, module: str) -> dict[str, int | None]:
    """mutmut's exit code per mutant of ``module`` (``{}`` before the first run)."""
    meta = ws / "mutants" / (module + ".meta")
    if not meta.exists():
        return {}
    codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return codes


def run_mutmut(module: str, ws: Path, jobs: int, log: Path, equivalent: Iterable[str]) -> None:
    """``mutmut run`` in the module's workspace; its output goes to ``log``.

    mutmut keeps a verdict until the function it mutates changes, so a mutant that survived
    an earlier run is tested again by name (the tests may have changed since), unless it is
    listed as equivalent.
    """
    mutmut = Path(sys.executable).with_name("mutmut")
    skip = set(equivalent)
    earlier = [
        name for name, code in verdicts(ws, module).items() if code == SURVIVED and name not in skip
    ]
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.call(
            [str(mutmut), "run", "--max-children", str(jobs)],
            cwd=ws,
            env=environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        now = verdicts(ws, module)
        retest = [name for name in earlier if now.get(name) == SURVIVED]
        if code == 0 and retest:
            code = subprocess.call(
                [str(mutmut), "run", "--max-children", str(jobs), *retest],
                cwd=ws,
                env=environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    if code != 0:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-30:])
        raise SystemExit(f"{module}: mutmut run failed with exit code {code}; see {log}\n{tail}")


def mutant_diff(ws: Path, module: str, mutant: str) -> str:
    """What ``mutmut show`` prints for ``mutant``, read from the workspace's mutants/."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = os.getcwd()
    os.chdir(ws)
    try:
        return get_diff_for_mutant(mutant, path=module)
    finally:
        os.chdir(cwd)


def added_lines(diff: str) -> list[str]:
    return [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]


def run_declarations(module: str, ws: Path, result: Result) -> list[str]:
    """Each hand-made mutant applied to the workspace's copy of ``module`` and tested; the
    copy is restored, bytes and time stamp, whatever happens."""
    target = ws / "mutants" / module
    original = target.read_bytes()
    stamp = target.stat()
    survivors = []
    try:
        for decl in DECLARATIONS.get(module, ()):
            text = original.decode("utf-8")
            if text.count(decl.old) != 1:
                raise SystemExit(f"{module}: declaration {decl.name!r}: its text is not found once")
            target.write_text(text.replace(decl.old, decl.new), encoding="utf-8")
            code = subprocess.call(
                [*PYTEST, "-m", UNIT, *MODULES[module]],
                cwd=ws / "mutants",
                env=dict(environment(), MUTANT_UNDER_TEST=""),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            name = f"{slug(module)}.decl:{decl.name}"
            if code in KILLED:
                result.killed += 1
            elif code == SURVIVED:
                survivors.append(name)
            else:
                result.other[name] = code
    finally:
        target.write_bytes(original)
        os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    return survivors


def run_module(module: str, jobs: int, equivalents: dict[str, Equivalent]) -> Result:
    ws = workspace(module)
    result = Result(module)
    start = time.monotonic()
    run_mutmut(module, ws, jobs, ws / "mutmut.log", equivalents)
    survivors = []
    for mutant, code in sorted(verdicts(ws, module).items()):
        if code in KILLED:
            result.killed += 1
        elif code in TIMEOUT:
            result.timeout += 1
        elif code == SURVIVED:
            survivors.append(mutant)
        elif code in NO_TESTS:
            result.no_tests.append(mutant)
        else:
            result.other[mutant] = code
    declared = run_declarations(module, ws, result)
    result.seconds = time.monotonic() - start
    prefix = slug(module) + "."
    mine = {name: eq for name, eq in equivalents.items() if name.startswith(prefix)}
    report = []
    for mutant in survivors:
        diff = mutant_diff(ws, module, mutant)
        eq = mine.pop(mutant, None)
        if eq is not None and eq.line in added_lines(diff):
            result.equivalent.append(mutant)
            continue
        if eq is not None:
            result.stale.append(f"{mutant}: the listed line is no longer what it changes")
        result.survived.append(mutant)
        report.append(f"# {mutant}\n{diff}\n")
    for name in declared:
        result.survived.append(name)
        report.append(f"# {name}\n")
    for name in mine:
        result.stale.append(f"{name}: listed as equivalent but not a surviving mutant")
    (ws / "survivors.txt").write_text("".join(report), encoding="utf-8")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to run (default: all, in order)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--fresh", action="store_true", help="forget earlier verdicts first")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {', '.join(MODULES)}")
    equivalents = read_equivalents()
    known = tuple(slug(m) + "." for m in MODULES)
    strays = [name for name in equivalents if not name.startswith(known)]
    if strays:
        parser.error(f"{EQUIVALENTS.name} lists mutants of no module: {strays}")
    results = []
    for module in args.modules or list(MODULES):
        if args.fresh:
            shutil.rmtree(WORK / slug(module), ignore_errors=True)
        result = run_module(module, args.jobs, equivalents)
        print(result.line(), flush=True)
        for problem in result.stale:
            print(f"  stale equivalent: {problem}", flush=True)
        if result.survived:
            ws = WORK / slug(module)
            print(f"  survivors and their diffs: {(ws / 'survivors.txt').relative_to(ROOT)}")
        results.append(result)
    detected = sum(r.detected for r in results)
    counted = sum(r.counted for r in results)
    equivalent = sum(len(r.equivalent) for r in results)
    score = 100.0 * detected / counted if counted else 100.0
    print(f"mutation score: {score:.1f}% (killed {detected} of {counted}, equivalent {equivalent})")
    return 1 if any(r.stale or r.other for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
