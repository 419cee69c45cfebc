"""The ``stream`` training engine: a linear model from sums over chunks, never the whole file.

A linear model sees its data only through sufficient statistics (:mod:`model.linear`), and
every preprocessing step in front of it (imputation, ``log1p``, standardisation, one-hot) is
per column and affine once its fill value is fixed. So the rows are seen in chunks of
``chunk_rows`` rows (memory: one chunk), in three passes; only the first parses the file, the
others read its parsed columns back from a temporary binary cache (:mod:`.cache`):

1. **statistics**: rows read and kept (the filters), the config's promises checked with the
   memory engine's messages (:mod:`model.workflow.checks`), categories, centring shifts. A bad
   row fails here, after at most this one pass, before anything is written.
2. **sums**: each kept row gets its part from its index alone (the test part and the CV fold of
   :func:`model.selection.train_test_split` and :class:`model.selection.KFold` with the config's
   seed, which need only the row count: one byte per row), and each part accumulates
   ``S = Σ u uᵀ`` of the row's *augmented* vector ``u = [t(x) - c, missing indicators,
   raw x - r (logged columns), one-hot, f(y) - c_y, 1]``. With the fill value ``v`` of a
   column chosen later, the imputed, transformed value is ``t(x) - c`` where present and
   ``t(v) - c`` where missing, i.e. ``u_x + (t(v) - c)·u_missing``: linear in ``u``. So any
   fold's preprocessing (its own fill values, means and scales, its own categories) and its
   ``XᵀX``, ``Xᵀy`` follow from the sum of the other folds' ``S`` by a matrix product, the
   whole alpha grid from the same sums, and the solver is the estimators' own
   (:meth:`model.linear.LinearRegression.fit_stats`). The shifts ``c`` (pass 1 means) keep
   the moments free of cancellation.
3. **predictions**: every fold model and the final one are linear maps of ``u``, so one matrix
   product per chunk gives the CV metrics in dollars (MAE, MAPE, R²...), the test metrics (also
   per segment, for the card), the drift reference's bin counts and samples of the
   predictions.

The median needs more than sums. Each part keeps a *bottom-k sample*: the ``SAMPLE_ROWS``
rows whose seeded hash of the row index is smallest, a uniform sample without replacement
that merges exactly (the union's k smallest hashes). Medians (``impute = "median"``), the
drift reference's quantile edges and the numeric ``example`` come from it: exact while a
part holds at most ``SAMPLE_ROWS`` rows; beyond, the rank error of a sample quantile is at
most ``sqrt(ln(2/δ) / 2k)`` with probability ``1 - δ`` (Dvoretzky–Kiefer–Wolfowitz): 0.0076
for k = 65,536 and δ = 0.001, typically ``0.5/√k`` = 0.002 for the median. With ``mean``
imputation nothing is sampled for the model: its coefficients equal the memory engine's to
rounding.

The result is the memory engine's artifact: a fitted :class:`model.pipeline.Pipeline` of the
same classes, built from the statistics (``from_statistics``, ``from_moments``,
``from_categories``, ``ColumnTransformer.from_fitted``), with the same metadata; what the
stream engine cannot give without holding rows (the learning curve; plots of every test
row) it replaces by nothing and by a sample, and the metadata says which engine ran.

The modules, in the order of a run: :mod:`.reading` (chunks of the file or of one partition,
parsed), :mod:`.statistics` (pass 1), :mod:`.sums` (the split, ``u`` and pass 2),
:mod:`.sample` (the bottom-k sample), :mod:`.cache` (pass 1's columns for the later passes),
:mod:`.solve` (a fold's model from its sums, and the fitted pipeline), :mod:`.evaluation`
(pass 3: metrics, drift bins), :mod:`.segments` (the card's per-segment errors) and
:mod:`.engine` (the passes put together: :func:`fit_stream`).
"""

from model.workflow.stream.engine import (
    ENGINES,
    StreamFit,
    check_engine,
    engine_metadata,
    fit_stream,
)
from model.workflow.stream.reading import Reader, Runner, Span, default_chunk_rows
from model.workflow.stream.sample import SAMPLE_ROWS, Sample, row_hash
from model.workflow.stream.sums import assign_parts, permutation

__all__ = [
    "ENGINES",
    "SAMPLE_ROWS",
    "Reader",
    "Runner",
    "Sample",
    "Span",
    "StreamFit",
    "assign_parts",
    "check_engine",
    "default_chunk_rows",
    "engine_metadata",
    "fit_stream",
    "permutation",
    "row_hash",
]
