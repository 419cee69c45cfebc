"""The model card of a run: what the model is for, what it saw, how well it does, how to redo it.

A model card (Mitchell et al., 2019) is written next to every run because numbers without
their conditions mislead: an RMSE means little without the rows it was measured on, the
spread across folds, and the population the model was never shown.
"""

from __future__ import annotations

import math
import shlex
from typing import Any

from model.workflow.config import Config

_LABELS = {
    "rmse_log": "RMSE of log price",
    "rmse": "RMSE ($)",
    "mae": "MAE ($)",
    "r2": "R²",
    "mape": "MAPE",
    "mse": "MSE ($²)",
}


def _num(m: str, v: float) -> str:
    if math.isnan(v):
        return "—"
    if m in ("rmse", "mae"):
        return f"{v:,.0f}"
    if m == "mse":
        return f"{v:.3e}"
    if m == "mape":
        return f"{v:.2%}"
    return f"{v:.4f}"


def _plain(x: float) -> str:
    """1000000.0 -> "1,000,000", 0.5 -> "0.5": bounds are read by people, not parsers."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,g}"


def render_model_card(
    cfg: Config, meta: dict[str, Any], plots: list[str], plots_note: str = ""
) -> str:
    """The Markdown model card for the run described by ``meta`` (Contract 1's record)."""
    data, cv, test = meta["data"], meta["cv"], meta["test"]
    lines = [
        f"# Model card: `{meta['model_version']}`",
        "",
        f"Run `{meta['run_id']}`, created {meta['created_at']}; estimator "
        f"`{meta['model']['estimator']}` with {meta['search']['best_params']} on "
        f"{len(meta['features'])} features; target `{meta['target']['column']}` fitted on the "
        f"{meta['target']['transform'] or 'original'} scale.",
        "",
        "## Intended use",
        "",
        "An estimate of the sale price of a residential property in Ames, Iowa, of the kind",
        "sold in 2006-2010, from facts an owner or agent can type. It is a starting point for",
        "a conversation, not an appraisal: it knows nothing of the house's state beyond these",
        "fields, of the market after 2010, or of any other city. Not for lending, tax or",
        "insurance decisions about a particular person.",
        "",
        "## Data and its limits",
        "",
        f"- File `{data['path']}` (sha256 `{data['sha256']}`), {data['rows_read']:,} sales read, "
        f"{data['rows']:,} kept; {data['rows_train']:,} for training and cross-validation, "
        f"{data['rows_test']:,} held out for the test figures.",
    ]
    for rule in cfg.filters:
        dropped = data.get("dropped", {}).get(f"{rule.column} {rule.op} {rule.value}", 0)
        why = f" — {rule.reason}" if rule.reason else ""
        lines.append(
            f"- Kept rows with `{rule.column} {rule.op} {rule.value}` ({dropped} dropped){why}."
        )
    lines += [
        "- Ames assessor's sales 2006-2010 (De Cock, 2011): one small Midwestern city, before",
        "  and during the 2008 crisis; prices are not adjusted for inflation or for the date.",
        "- Houses unlike the training rows (observed min/max below) are extrapolations; the",
        "  service refuses values outside the hard bounds and counts the rest as drift.",
        "",
        "## Features",
        "",
        "| name | source column | kind | unit | required | bounds | seen in training |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in meta["features"]:
        if f["kind"] == "numeric":
            seen = f"{_plain(f['min'])} … {_plain(f['max'])}" if f["min"] is not None else "—"
        else:
            cats = f["categories"] or []
            seen = ", ".join(cats[:8]) + (f" (+{len(cats) - 8})" if len(cats) > 8 else "")
        bounds = f"[{_plain(f['bounds'][0])}, {_plain(f['bounds'][1])}]" if f["bounds"] else "—"
        lines.append(
            f"| `{f['name']}` | `{f['column']}` | {f['kind']} | {f['unit'] or '—'} | "
            f"{'yes' if f['required'] else 'no'} | {bounds} | {seen} |"
        )
    lines += [
        "",
        "## Metrics",
        "",
        f"{len(next(iter(cv.values()))['folds'])}-fold cross-validation on the training part "
        "(mean ± standard deviation across folds, with each fold's value), and the held-out test "
        "part, scored once:",
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
            f"{_num(m, test[m])} |"
        )
    lines += ["", "Grid search candidates (CV mean ± sd of the selection metric):", ""]
    for cand in meta["search"]["candidates"]:
        lines.append(f"- {cand['params']}: {cand['mean']:.4f} ± {cand['std']:.4f}")
    lines += [
        "",
        "## Assumptions and decisions",
        "",
        "- log(price) is modelled, so effects are multiplicative and errors relative; the",
        "  prediction is exp of the predicted log, i.e. closer to a median than a mean price.",
        f"- Missing numeric fields are filled with the training {cfg.impute}; missing or unseen",
        "  categories are encoded as all zeros (the baseline), not refused.",
        "- Sizes marked `log` are log1p-transformed; all numeric inputs are standardised so a",
        "  single penalty treats them alike.",
        "- Hyperparameters were chosen by CV on the training part only; the test part was used",
        "  once, after the choice.",
        "",
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
