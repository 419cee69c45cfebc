"""What a column is, read from its name and its values: shared by ``init`` and ``explore``.

The rules are deliberately few and stated here, because a user reads their effect in a
generated config and must be able to predict it:

- an **identifier** is a column named like one (``id``, ``pid``, ``order``, ``index``, ``row``,
  ``*_id``, ``*Id``), a numeric column that counts the rows (whole numbers stepping by one), or a
  text column whose values are unique per row; it tells rows apart and says nothing of price;
- a **constant** column holds one value (or none) in every row: nothing to learn from;
- a numeric column is an **integer** when every present value is a whole number and they span
  at most :data:`INTEGER_SPAN` units (counts, grades, years, months, codes); areas and prices
  recorded in whole units are still measurements, free to take a fraction. Small-integer codes
  stay numbers: whether a code is really a category is for the user to decide in the config,
  not for the tool to guess.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Normalised names (lower case, letters and digits only) that mark an identifier.
ID_NAMES = frozenset(
    {"id", "pid", "uid", "uuid", "order", "index", "idx", "row", "rowid", "rownum", "rownames"}
)
#: ``house_id``, ``parcel.id``, ``Sale ID``; ``HouseId``, ``ParcelID``.
_ID_SUFFIX = re.compile(r"(^|[_.\s-])id$", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z0-9](Id|ID)$")


def _normalised(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


#: Rows below which values alone never make an identifier (a few rows are unique by chance).
MIN_ROWS_BY_VALUE = 10


def identifier_reason(name: str, col: NDArray[Any]) -> str | None:
    """Why ``col`` (a loaded column) is an identifier, or ``None`` when it is not one."""
    if _normalised(name) in ID_NAMES or _ID_SUFFIX.search(name) or _CAMEL_ID.search(name):
        return f"named like an identifier ({name!r})"
    n = col.size
    if n < MIN_ROWS_BY_VALUE:
        return None
    if col.dtype == object:
        present = [v for v in col.tolist() if v is not None]
        if len(present) == n and len(set(present)) == n:
            return f"a different text in every one of the {n} rows"
        return None
    if np.isnan(col).any():
        return None
    steps = np.diff(col)
    if np.all(col == np.floor(col)) and steps.size and np.all(steps == 1):
        return f"counts the rows ({col[0]:.15g} to {col[-1]:.15g} by one)"
    return None


def is_constant(col: NDArray[Any]) -> bool:
    """One distinct present value, or none at all."""
    if col.dtype == object:
        return len({v for v in col.tolist() if v is not None}) <= 1
    present = col[~np.isnan(col)]
    return present.size == 0 or bool(np.all(present == present[0]))


#: The widest span of whole numbers read as counts, grades or years rather than measurements.
INTEGER_SPAN = 300


def is_integer(col: NDArray[Any]) -> bool:
    """A numeric column of whole numbers spanning at most :data:`INTEGER_SPAN` (see above)."""
    if col.dtype == object:
        return False
    present = col[~np.isnan(col)]
    if present.size == 0 or not np.all(present == np.floor(present)):
        return False
    return float(present.max() - present.min()) <= INTEGER_SPAN


def name_tokens(name: str) -> list[str]:
    """The words of a column name, lower case: ``GarageYrBlt`` -> garage, yr, blt;
    ``Year.Remod.Add`` -> year, remod, add; ``sqft_living15`` -> sqft, living, 15."""
    return [t.lower() for t in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]


#: Words that name a calendar year (``YearBuilt``, ``Yr.Sold``, ``yr_renovated``).
YEAR_WORDS = frozenset({"year", "yr"})
#: Where the middle of a column of recorded years lies (a stray 2207 does not move a median).
YEAR_RANGE = (1600.0, 2100.0)


def is_year(name: str, col: NDArray[Any]) -> bool:
    """A numeric column of whole numbers that is either named with a year word and has its
    median inside :data:`YEAR_RANGE` (the name says "year", the values agree, a typo such as
    2207 included), or, whatever its name (``baujahr``), has every value inside it."""
    if col.dtype == object:
        return False
    present = col[~np.isnan(col)]
    if present.size == 0 or not np.all(present == np.floor(present)):
        return False
    lo, hi = YEAR_RANGE
    if YEAR_WORDS & set(name_tokens(name)):
        return bool(lo <= float(np.median(present)) <= hi)
    return bool(lo <= float(present.min()) and float(present.max()) <= hi)
