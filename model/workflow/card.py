"""The model card of a run: what the model is for, what it saw, how well it does, how to redo it.

A model card (Mitchell et al., 2019) is written next to every run because numbers without
their conditions mislead: an RMSE means little without the rows it was measured on, the
spread across folds, and the population the model was never shown.

The layout is Hugging Face's (YAML front matter with ``license``, ``tags``, ``datasets``,
``metrics`` and a ``model-index`` of the test metrics; then the text sections). Every sentence
is built from the config (``[data]`` describes the data set), the data the run read and the
run's metadata (Contract 1): nothing here knows any particular data set. What the card
derives, and how:

- the span of the data: the target's range on the training rows and, for each feature that
  :func:`model.workflow.infer.is_year` reads as a year, the years seen;
- per-segment test errors (``segments``, computed by
  :func:`model.workflow.train.segment_metrics`);
- missing shares and category counts of the training rows, from the drift reference
  profiles (``reference``), and extrapolation risk where a feature's bounds are wider than
  the values seen.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from typing import Any

import numpy as np

from model.workflow.config import Config
from model.workflow.infer import is_year

_LABELS = {
    "rmse_log": "RMSE of log price",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
    "mape": "MAPE",
    "mse": "MSE",
}
#: model-index metric types (Hugging Face metric ids where one exists) and display names.
_INDEX_METRICS = {
    "rmse": "Test RMSE",
    "mae": "Test MAE",
    "r2": "Test R²",
    "mape": "Test MAPE",
    "rmse_log": "Test RMSE of log target",
}
#: A category with fewer training rows than this is called small: its effect rests on few rows.
SMALL_CATEGORY = 10
#: A test part smaller than this gives rough test figures (said in the card).
SMALL_TEST = 100
#: At most this many categories are listed in the per-category table.
MAX_SEGMENT_ROWS = 20
_LICENSE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _num(m: str, v: float | None) -> str:
    if _missing(v):
        return "—"
    assert v is not None
    if m in ("rmse", "mae", "bias"):  # in the target's units: whole ones unless they are small
        return f"{v:,.0f}" if abs(v) >= 10 else f"{v:.3g}"
    if m == "mse":
        return f"{v:.3e}"
    if m == "mape":
        return f"{v:.2%}"
    return f"{v:.4f}"


def _plain(x: float) -> str:
    """1000000.0 -> "1,000,000", 0.5 -> "0.5": bounds are read by people, not parsers."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,g}"


def _is_year(f: dict[str, Any]) -> bool:
    """A numeric feature whose name (API or source column) and training range read as years."""
    if f["kind"] == "categorical" or f["min"] is None:
        return False
    seen = np.array([f["min"], f["max"]], dtype=np.float64)
    return is_year(f["column"], seen) or is_year(f["name"], seen)


def _value(f: dict[str, Any], x: float) -> str:
    """A feature's value; years and integer-kind values without thousands separators."""
    whole = f["kind"] == "integer" or _is_year(f)
    return f"{x:.0f}" if whole and float(x).is_integer() else _plain(x)


def _years(meta: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in meta["features"] if _is_year(f)]


def _yaml_str(s: str) -> str:
    """A double-quoted YAML scalar: JSON's escapes, which YAML shares, plus ``\\uXXXX`` for
    the characters YAML does not allow in a document (C0/C1 controls, non-characters)."""
    body = json.dumps(s, ensure_ascii=False)
    return re.sub(
        r"[\x7f-\x9f\ufffe\uffff]",
        lambda m: f"\\u{ord(m.group()):04x}",
        body,
    )


def _license(text: str) -> list[str]:
    if not text:
        return ["license: unknown"]
    if _LICENSE_ID.fullmatch(text):
        return [f"license: {_yaml_str(text.lower())}"]
    slug = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "other"
    return ["license: other", f"license_name: {_yaml_str(slug)}"]


def _dataset_name(cfg: Config, meta: dict[str, Any]) -> str:
    return str(meta["data"].get("name") or cfg.info.name or meta["data"]["path"])


def _front_matter(cfg: Config, meta: dict[str, Any]) -> list[str]:
    """Hugging Face's model-card metadata; the model's license is the training data's, the
    terms a model derived from the data inherits (``unknown`` when the config says none)."""
    name = _dataset_name(cfg, meta)
    test = meta["test"]
    metrics = [m for m in _INDEX_METRICS if not _missing(test.get(m))]
    lines = ["---", *_license(str(meta["data"].get("license") or cfg.info.license))]
    lines += ["library_name: houseprice", "pipeline_tag: tabular-regression", "tags:"]
    lines += ["- tabular-regression", "- houseprice", f"- {meta['model']['estimator'].lower()}"]
    lines += ["datasets:", f"- {_yaml_str(name)}", "metrics:", *[f"- {m}" for m in metrics]]
    lines += [
        "model-index:",
        f"- name: {_yaml_str(meta['model_version'])}",
        "  results:",
        "  - task:",
        "      type: tabular-regression",
        "      name: Tabular Regression",
        "    dataset:",
        f"      name: {_yaml_str(name)}",
        f"      type: {_yaml_str(name)}",
        "      split: test",
        "    metrics:",
    ]
    for m in metrics:
        lines += [
            f"    - type: {m}",
            f"      value: {float(test[m])!r}",
            f"      name: {_yaml_str(_INDEX_METRICS[m])}",
        ]
    return [*lines, "---", ""]


def _intended_use(meta: dict[str, Any]) -> list[str]:
    target, data = meta["target"], meta["data"]
    col = target["column"]
    span = ""
    if target.get("min") is not None:
        span = (
            f" In training, `{col}` ranged from {_plain(target['min'])} to "
            f"{_plain(target['max'])} (median {_plain(target['median'])})."
        )
    years = _years(meta)
    if years:
        span += " Years seen: " + ", ".join(
            f"`{f['name']}` {f['min']:.0f}–{f['max']:.0f}" for f in years
        )
        span += "."
    what = f"**{data['name']}**" if data.get("name") else f"the file `{data['path']}`"
    lines = [
        "## Intended use",
        "",
        f"An estimate of `{col}` for one row described by the {len(meta['features'])} "
        f"features below, for rows like the {data['rows']:,} it was trained on: {what} "
        "(see Training data)." + span,
        "Use it as a first estimate for such rows, to compare like with like, or as a baseline",
        "for other models. It is not an appraisal: it knows nothing beyond these fields.",
        "",
        "### Out-of-scope use",
        "",
        "- Rows from another population than the training data (another place, market, period",
        "  or kind of property): nothing in the model knows where or when a row is from beyond",
        "  its features, and it returns a number anyway.",
    ]
    if years:
        last = max(f["max"] for f in years)
        lines.append(
            f"- Estimates for a later market than the data's (the latest year seen is {last:.0f}): "
            f"`{col}` is not adjusted for time."
        )
    else:
        lines.append(
            "- Estimates for another period than the data's: no feature is a date, so the model "
            "cannot tell one market from another."
        )
    lines += [
        "- Rows with values outside the ranges seen in training (the Features table): the",
        "  model extrapolates (see Limitations and risks).",
        "- Decisions about a particular person (lending, tax, insurance, eligibility): the",
        "  errors below are averages, and one estimate can be off by much more.",
        "",
    ]
    return lines


def _training_data(cfg: Config, meta: dict[str, Any]) -> list[str]:
    data = meta["data"]
    lines = ["## Training data", ""]
    if data.get("name") or data.get("description"):
        head = f"**{data['name']}**" if data.get("name") else ""
        sep = ": " if head and data.get("description") else ""
        lines += [f"{head}{sep}{data.get('description', '')}", ""]
    else:
        lines += [
            "The config gives no name or description of the data set (`[data]` `name`,",
            "`description`): only the file below identifies it.",
            "",
        ]
    for key, label in (("source", "Source"), ("citation", "Citation"), ("license", "License")):
        if data.get(key):
            lines.append(f"- {label}: {data[key]}")
    fmt = data.get("format") or {}
    how = ""
    if fmt:
        how = f" (delimiter {fmt['delimiter']!r}, encoding {fmt['encoding']})"
    lines.append(
        f"- File `{data['path']}`{how}, sha256 `{data['sha256']}`: {data['rows_read']:,} rows "
        f"read, {data['rows']:,} kept; {data['rows_train']:,} for training and "
        f"cross-validation, {data['rows_test']:,} held out for the test figures "
        f"(seed {meta['split']['seed']})."
    )
    for rule in cfg.filters:
        dropped = data.get("dropped", {}).get(f"{rule.column} {rule.op} {rule.value}", 0)
        why = f" — {rule.reason}" if rule.reason else ""
        lines.append(
            f"- Kept rows with `{rule.column} {rule.op} {rule.value}` ({dropped} dropped){why}."
        )
    if data.get("id_columns"):
        ids = ", ".join(f"`{c}`" for c in data["id_columns"])
        lines.append(f"- Identifier columns, not used as features: {ids}.")
    lines += ["", "### Features", ""]
    lines += [
        "| name | source column | kind | unit | required | bounds | seen in training | missing |",
        "|---|---|---|---|---|---|---|--:|",
    ]
    profiles = meta.get("reference", {}).get("features", {})
    for f in meta["features"]:
        if f["kind"] != "categorical":
            seen = f"{_value(f, f['min'])} … {_value(f, f['max'])}" if f["min"] is not None else "—"
            bounds = (
                f"[{_value(f, f['bounds'][0])}, {_value(f, f['bounds'][1])}]"
                if f["bounds"]
                else "—"
            )
        else:
            cats = f["categories"] or []
            seen = ", ".join(cats[:8]) + (f" (+{len(cats) - 8})" if len(cats) > 8 else "")
            bounds = "—"
        lines.append(
            f"| `{f['name']}` | `{f['column']}` | {f['kind']} | {f['unit'] or '—'} | "
            f"{'yes' if f['required'] else 'no'} | {bounds} | {seen} | "
            f"{_missing_rows(profiles.get(f['name']))} |"
        )
    if cfg.derived:
        lines += [
            "",
            "Derived by the model from the features above (clients do not send them):",
            "",
            "| name | computed as | unit | description |",
            "|---|---|---|---|",
        ]
        for d in cfg.derived:
            how = f"`{d.expr}`" + (", then log1p" if d.transform == "log" else "")
            lines.append(f"| `{d.name}` | {how} | {d.unit or '—'} | {d.description or '—'} |")
    lines.append("")
    return lines


def _missing_share(profile: dict[str, Any] | None) -> float | None:
    """The drift reference's last share is the missing one (Contract 1)."""
    if not profile or not profile.get("shares"):
        return None
    return float(profile["shares"][-1])


def _missing_rows(profile: dict[str, Any] | None) -> str:
    """``12 (0.5%)``: training rows missing the feature, with their share."""
    share = _missing_share(profile)
    if share is None or profile is None:
        return "—"
    n = round(share * profile["count"])
    pct = "<0.1%" if 0 < share < 0.001 else f"{share:.1%}"
    return f"{n:,} ({pct})" if n else "0"


def _category_counts(profile: dict[str, Any] | None) -> dict[str, int]:
    """Training rows per category, from a categorical reference profile's shares."""
    if not profile or profile.get("kind") != "categorical":
        return {}
    n = profile["count"]
    shares = profile["shares"][: len(profile["categories"])]
    return {c: round(s * n) for c, s in zip(profile["categories"], shares, strict=True)}


def _segment_row(first: str, g: dict[str, Any]) -> str:
    few = " *" if g["rows"] < SMALL_CATEGORY else ""
    return (
        f"| {first} | {g['rows']:,}{few} | {_num('rmse_log', g['rmse_log'])} | "
        f"{_num('mae', g['mae'])} | {_num('mape', g['mape'])} | {_num('bias', g['bias'])} |"
    )


def _evaluation(meta: dict[str, Any]) -> list[str]:
    cv, test, target = meta["cv"], meta["test"], meta["target"]["column"]
    lines = [
        "## Evaluation",
        "",
        f"{len(next(iter(cv.values()))['folds'])}-fold cross-validation on the training part "
        "(mean ± standard deviation across folds, with each fold's value), and the held-out test "
        f"part ({meta['data']['rows_test']:,} rows), scored once. RMSE and MAE are in the "
        f"units of `{target}`:",
        "",
        "| metric | CV mean ± sd | CV folds | test |",
        "|---|--:|---|--:|",
    ]
    for m, label in _LABELS.items():
        if m not in cv:
            continue
        c = cv[m]
        folds = ", ".join(_num(m, v) for v in c["folds"])
        lines.append(
            f"| {label} | {_num(m, c['mean'])} ± {_num(m, c['std'])} | {folds} | "
            f"{_num(m, test.get(m))} |"
        )
    lines += ["", "Grid search candidates (CV mean ± sd of the selection metric):", ""]
    for cand in meta["search"]["candidates"]:
        lines.append(f"- {cand['params']}: {cand['mean']:.4f} ± {cand['std']:.4f}")
    lines.append("")
    segments = meta.get("segments") or {}
    head = "| test rows | RMSE of log | MAE | MAPE | mean error (predicted − actual) |"
    rule = "|--:|--:|--:|--:|--:|"
    by_cat = segments.get("by_category")
    if by_cat:
        others = ", ".join(
            f"`{k}` {v:.3f}" for k, v in by_cat["signals"].items() if k != by_cat["feature"]
        )
        lines += [
            f"### Test errors by `{by_cat['feature']}`",
            "",
            f"`{by_cat['feature']}` is the categorical feature with the most signal: its "
            f"categories explain ε² = {by_cat['signal']:.3f} of the variance of "
            f"{'log ' if meta['target']['transform'] == 'log' else ''}`{target}` on the training "
            "rows (ε² is the adjusted R² of a one-way analysis of variance: the between-category "
            "share, corrected for the number of categories)"
            + (f"; the other categorical features: {others}" if others else "")
            + f". Rows marked * have fewer than {SMALL_CATEGORY} test rows: their figures are "
            "noise more than signal.",
            "",
            "| category | training rows " + head,
            "|---|--:" + rule,
        ]
        groups = by_cat["groups"]
        for g in groups[:MAX_SEGMENT_ROWS]:
            label = "(missing)" if g["category"] is None else str(g["category"])
            lines.append(_segment_row(f"{label} | {g['rows_train']:,}", g))
        if len(groups) > MAX_SEGMENT_ROWS:
            rest = groups[MAX_SEGMENT_ROWS:]
            lines += [
                "",
                f"… and {len(rest)} more categories with {sum(g['rows'] for g in rest):,} "
                "test rows in all (every category is in `metrics.json`, `segments`).",
            ]
        lines.append("")
    elif segments:
        lines += ["No categorical feature: no per-category errors.", ""]
    bands = segments.get("by_price") or []
    if bands:
        lines += [
            f"### Test errors by quintile of the actual `{target}`",
            "",
            "| quintile | actual range " + head,
            "|---|---" + rule,
        ]
        for b in bands:
            rng = f"{_plain(round(b['min']))} – {_plain(round(b['max']))}"
            lines.append(_segment_row(f"Q{b['band']} | {rng}", b))
        low, high = bands[0], bands[-1]
        if len(bands) > 1 and low["bias"] > 0 > high["bias"]:
            lines += [
                "",
                f"The cheapest fifth is over-estimated by {_num('bias', low['bias'])} on "
                f"average and the dearest under-estimated by {_num('bias', -high['bias'])}: "
                "estimates are pulled toward the middle, as a regression's are.",
            ]
        lines.append("")
    return lines + _intervals(meta)


def _intervals(meta: dict[str, Any]) -> list[str]:
    """The stored prediction intervals and how often they held on the test part."""
    rec = meta.get("intervals")
    if not rec:
        return []
    on_log = rec["space"] == "log"
    lines = [
        "### Prediction intervals",
        "",
        f"Every price comes with an interval ({rec['method']}, {rec['residuals']:,} residuals): "
        + (
            "a fixed ratio around the price, ×e^−q to ×e^q, as errors on the log scale are."
            if on_log
            else "the price ± q."
        )
        + " Coverage is the share of the held-out test rows inside their interval:",
        "",
        "| level | q | interval around a price of 100,000 | test coverage |",
        "|--:|--:|---|--:|",
    ]
    for lv in rec["levels"]:
        q = lv["halfwidth"]
        if q is None:
            lines.append(f"| {lv['level']:.0%} | — | too few training rows for this level | — |")
            continue
        lo, hi = (1e5 * math.exp(-q), 1e5 * math.exp(q)) if on_log else (1e5 - q, 1e5 + q)
        lines.append(
            f"| {lv['level']:.0%} | {q:.4g} | {_plain(round(lo))} – {_plain(round(hi))} | "
            f"{lv['coverage_test']:.1%} |"
        )
    return [*lines, ""]


def _limitations(cfg: Config, meta: dict[str, Any]) -> list[str]:
    target, col = meta["target"], meta["target"]["column"]
    profiles = meta.get("reference", {}).get("features", {})
    lines = ["## Limitations and risks", ""]
    wide = [
        f
        for f in meta["features"]
        if f["kind"] != "categorical"
        and f["bounds"]
        and f["min"] is not None
        and (f["bounds"][0] < f["min"] or f["bounds"][1] > f["max"])
    ]
    tree = "Tree" in meta["model"]["estimator"]
    how = (
        "a tree predicts as at the edge of what it saw"
        if tree
        else "a linear model extends its trend"
        + (", multiplicatively on a log target" if target["transform"] == "log" else "")
    )
    if wide:
        shown = "; ".join(
            f"`{f['name']}` seen {_value(f, f['min'])}–{_value(f, f['max'])}, accepted "
            f"{_value(f, f['bounds'][0])}–{_value(f, f['bounds'][1])}"
            for f in wide[:8]
        )
        more = f" (and {len(wide) - 8} more)" if len(wide) > 8 else ""
        lines.append(
            f"- Extrapolation: the service accepts values never seen in training for "
            f"{len(wide)} feature(s) — {shown}{more}. Beyond the values seen, {how}: "
            "treat such estimates as guesses (the drift monitor counts them)."
        )
    else:
        lines.append(
            "- Extrapolation: outside the ranges seen in training (the Features table), "
            f"{how}; treat such estimates as guesses."
        )
    if target.get("min") is not None:
        worst = ""
        bands = (meta.get("segments") or {}).get("by_price", [])
        scored = [b for b in bands if not _missing(b["rmse_log"])]
        overall = meta["test"].get("rmse_log")
        if len(scored) > 1 and not _missing(overall):
            b = max(scored, key=lambda b: b["rmse_log"])
            worst = (
                f"; on the test rows the relative error is largest in price quintile "
                f"Q{b['band']} ({_plain(round(b['min']))} – {_plain(round(b['max']))}: RMSE of "
                f"log {b['rmse_log']:.4f}, against {overall:.4f} overall)"
            )
        lines.append(
            f"- `{col}` in training: {_plain(target['min'])} to {_plain(target['max'])}; an "
            f"estimate outside that range is an extrapolation{worst}."
        )
    missing = [
        (f["name"], s, _missing_rows(profiles.get(f["name"])))
        for f in meta["features"]
        if (s := _missing_share(profiles.get(f["name"]))) is not None and s > 0
    ]
    if missing:
        missing.sort(key=lambda t: -t[1])
        shown = ", ".join(f"`{n}` {rows}" for n, _, rows in missing[:10])
        lines.append(
            f"- Training rows with a feature missing (rows, share): {shown}"
            + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
            + ". A missing number is filled with the training median and a missing category "
            "is the baseline, so such rows are priced as typical in that respect."
        )
    else:
        lines.append("- No feature had missing values in the training rows.")
    for f in meta["features"]:
        counts = _category_counts(profiles.get(f["name"]))
        small = sorted((n, c) for c, n in counts.items() if n < SMALL_CATEGORY)
        if small:
            shown = ", ".join(f"{c} ({n})" for n, c in small[:8])
            lines.append(
                f"- `{f['name']}`: categories with fewer than {SMALL_CATEGORY} training rows, "
                f"{len(small)} of {len(counts)}: {shown}"
                + (" …" if len(small) > 8 else "")
                + ". Their effects rest on few rows; a category never seen is priced as the "
                "baseline."
            )
    n_test = meta["data"]["rows_test"]
    scoring = meta["search"]["scoring"]
    cv = meta["cv"].get(scoring)
    spread = (
        f"; across the CV folds {_LABELS.get(scoring, scoring)} varied by ± "
        f"{_num(scoring, cv['std'])} (sd), a better guide to the uncertainty of one figure"
        if cv
        else ""
    )
    rough = ""
    if n_test < SMALL_TEST:
        rough = f" Fewer than {SMALL_TEST} rows: the test figures are rough."
    lines.append(f"- The test figures rest on {n_test:,} rows{spread}.{rough}")
    if cfg.filters:
        lines.append(
            "- Rows removed by the filters (Training data) were never seen: rows like them are "
            "out of scope."
        )
    lines.append(
        f"- `{col}` is taken as recorded: nothing adjusts it for inflation or for the market's "
        "moves between the dates of the rows."
    )
    lines.append("")
    return lines


def _assumptions(cfg: Config, meta: dict[str, Any]) -> list[str]:
    lines = ["## Assumptions and decisions", ""]
    if meta["target"]["transform"] == "log":
        lines += [
            f"- log(`{meta['target']['column']}`) is modelled, so effects are multiplicative and",
            "  errors relative; the estimate is exp of the predicted log, i.e. closer to a median",
            "  than a mean.",
        ]
    lines += [
        f"- Missing numeric fields are filled with the training {cfg.impute}; missing or unseen",
        "  categories are encoded as all zeros (the baseline), not refused.",
    ]
    logged = [f"`{f.name}`" for f in cfg.features if f.transform == "log"]
    if logged:
        lines.append(f"- {', '.join(logged)} are log1p-transformed before scaling.")
    ordered = [f"`{f.name}`" for f in cfg.features if f.order is not None]
    if ordered:
        lines.append(
            f"- Ordered categories ({', '.join(ordered)}): the linear models also read each one's "
            "rank on its declared order (a missing or undeclared category ranks one below the "
            "lowest)."
        )
    lines += [
        "- Numeric inputs are standardised, so a single penalty treats them alike.",
        "- Hyperparameters were chosen by CV on the training part only; the test part was used",
        "  once, after the choice.",
        "",
    ]
    return lines


def render_model_card(
    cfg: Config, meta: dict[str, Any], plots: list[str], plots_note: str = ""
) -> str:
    """The Markdown model card for the run described by ``meta`` (Contract 1's record)."""
    data = meta["data"]
    lines = _front_matter(cfg, meta)
    lines += [
        f"# Model card: `{meta['model_version']}`",
        "",
        f"Run `{meta['run_id']}`, created {meta['created_at']}; estimator "
        f"`{meta['model']['estimator']}` with {meta['search']['best_params']} on "
        f"{len(meta['features'])} features; target `{meta['target']['column']}` fitted on the "
        f"{meta['target']['transform'] or 'original'} scale.",
        "",
    ]
    lines += _intended_use(meta)
    lines += _training_data(cfg, meta)
    lines += _evaluation(meta)
    lines += _limitations(cfg, meta)
    lines += _assumptions(cfg, meta)
    lines += [
        "## How to reproduce",
        "",
        "```sh",
        f"houseprice train --config {shlex.quote(cfg.source)} "
        f"--data {shlex.quote(cfg.data_path)} --seed {cfg.seed} --folds {cfg.folds} "
        f"--test-size {cfg.test_size:g}",
        "```",
        "",
        f"with the data file of sha256 `{data['sha256'][:16]}…` and versions "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + ". The config used is saved next to this card as `config.toml`.",
        "",
    ]
    lines += ["## Plots", ""] + [f"![{p.removesuffix('.png')}]({p})" for p in plots]
    lines += [plots_note, ""] if plots_note else [""]
    return "\n".join(lines)
