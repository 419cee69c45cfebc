"""What an answer adds to its prices: the ``explain`` query flag and the explanations.

The maths is :mod:`model.explain`; this module only picks the path (the folded linear terms
for a few rows, as pricing does, else the pipeline's NumPy) and maps a model that cannot be
explained to a 422 naming the query parameter. Intervals are the serving model's
:class:`~model.workflow.intervals.IntervalRule` (``LoadedModel.interval``).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

import numpy as np
from starlette.types import Scope

from app.body import BodyError
from app.state import FOLD_MAX_ROWS, LoadedModel, PredictionError, Table
from model.base import Columns
from model.explain import CannotExplainError, explain, folded_records

log = logging.getLogger("houseprice")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _refused(msg: str, kind: str) -> BodyError:
    return BodyError(
        422, [{"loc": ["query", "explain"], "msg": msg, "type": kind}], "validation", 1
    )


#: The query strings that are the flag alone, as clients send it: no parsing for those.
_ALONE = {b"explain=" + v.encode(): v in _TRUE for v in (*_TRUE, *_FALSE)}


def explain_flag(scope: Scope) -> bool:
    """``?explain=true`` (or 1, yes, on); anything but a boolean is a 422 naming it."""
    query: bytes = scope.get("query_string") or b""
    if b"explain" not in query:
        return False
    alone = _ALONE.get(query)
    if alone is not None:
        return alone
    value = None
    for part in query.split(b"&"):
        key, _, v = part.partition(b"=")
        if key == b"explain":
            value = unquote_plus(v.decode("latin-1")).strip().lower()
    if value is None:
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _refused(
        f"Input should be a valid boolean (true or false), got {value[:40]!r}", "bool_parsing"
    )


def explanations(model: LoadedModel, table: Table) -> list[dict[str, Any]]:
    """One ``{space, method, baseline, contributions}`` per row of ``table``."""
    n = len(next(iter(table.values())))
    if model.folded is not None and n <= FOLD_MAX_ROWS:
        records = folded_records(model.folded, table)
        if records is not None:
            return records
    cols: Columns = {
        s.name: np.array(table[s.name], dtype=object if s.kind == "categorical" else np.float64)
        for s in model.features
    }
    try:
        return explain(model.pipeline, cols).records()
    except CannotExplainError as e:
        raise _refused(f"the serving model has no explanation: {e}", "value_error") from None
    except Exception as e:  # the model refuses a row it would refuse to price: a server fault
        log.exception("explanation failed")
        raise PredictionError("explanation failed") from e
