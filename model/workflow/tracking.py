"""Logging a finished run to MLflow (``houseprice train --mlflow URI``): the optional extra.

MLflow is imported here only, and only when :class:`MlflowLogger` is built, so training
without the flag never imports it. The URI is checked before any fitting (a typo costs no
training time); the run is logged after the run directory is complete and before the model
is served: parameters, CV and test metrics, and the run directory as artifacts (plots,
``MODEL_CARD.md``, ``metrics.json``, the config and the artifact with its sidecars), tagged
with the houseprice run id. A logging failure marks the MLflow run FAILED and fails training.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any


class TrackingError(Exception):
    """MLflow is missing, or the tracking store cannot be reached or written."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def run_params(metadata: dict[str, Any]) -> dict[str, str]:
    """MLflow parameters (strings) from Contract 1's metadata."""
    split = metadata.get("split", {})
    params: dict[str, Any] = {
        "estimator": metadata["model"]["estimator"],
        "data.path": metadata["data"]["path"],
        "data.sha256": metadata["data"]["sha256"],
        "data.rows": metadata["data"]["rows"],
        "target.transform": metadata["target"]["transform"],
        "n_features": len(metadata["features"]),
        "features": ",".join(f["name"] for f in metadata["features"]),
        "scoring": metadata["search"]["scoring"],
        "folds": split.get("folds"),
        "seed": split.get("seed"),
        "test_size": split.get("test_size"),
    }
    params.update({f"param.{k}": v for k, v in metadata["search"]["best_params"].items()})
    return {k: str(v)[:6000] for k, v in params.items()}


def run_metrics(metadata: dict[str, Any]) -> dict[str, float]:
    """``cv_<m>_mean``, ``cv_<m>_std`` and ``test_<m>``; non-finite values are left out."""
    out: dict[str, float] = {}
    for m, v in metadata["cv"].items():
        out[f"cv_{m}_mean"] = v["mean"]
        out[f"cv_{m}_std"] = v["std"]
    out.update({f"test_{m}": v for m, v in metadata["test"].items()})
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}


class MlflowLogger:
    """Logs runs to one MLflow tracking store and experiment (``file:``, ``sqlite:``, http)."""

    def __init__(self, uri: str, experiment: str = "houseprice") -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise TrackingError("--mlflow needs MLflow: pip install 'houseprice[mlflow]'") from None
        self.uri = uri
        scheme = uri.split(":", 1)[0] if ":" in uri else "file"
        if scheme == "file":
            # MLflow 3 keeps its file store in maintenance mode and refuses it unless this is
            # set; naming a file: URI on the command line is that opt-in.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        if (
            scheme.startswith("sqlite")
            or scheme.startswith("postgresql")
            or scheme.startswith("mysql")
        ):
            try:
                import alembic  # noqa: F401
                import sqlalchemy  # noqa: F401
            except ImportError:
                raise TrackingError(
                    f"--mlflow {uri}: a database store needs SQLAlchemy and Alembic, which "
                    "mlflow-skinny leaves out: pip install sqlalchemy alembic (or mlflow)"
                ) from None
        try:
            # The registry URI is the tracking URI's: runs are logged, no model is registered.
            self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = (
                found.experiment_id if found else self.client.create_experiment(experiment)
            )
        except Exception as exc:  # MLflow raises many kinds; all mean "cannot use this store"
            raise TrackingError(f"--mlflow {uri}: {_one_line(exc)}") from None

    def __call__(self, run_dir: Path, metadata: dict[str, Any]) -> str:
        """Log one finished houseprice run; return the MLflow run id."""
        from mlflow.entities import Metric, Param, RunTag

        run_id = metadata["run_id"]
        tags = {
            "houseprice.run_id": run_id,
            "houseprice.model_version": metadata["model_version"],
            "mlflow.runName": run_id,
        }
        try:
            run = self.client.create_run(self.experiment_id, tags=tags, run_name=run_id)
        except Exception as exc:
            raise TrackingError(f"--mlflow {self.uri}: {_one_line(exc)}") from None
        mlflow_id = run.info.run_id
        try:
            params = [Param(k, v) for k, v in run_params(metadata).items()]
            step_ms = run.info.start_time
            metrics = [Metric(k, v, step_ms, 0) for k, v in run_metrics(metadata).items()]
            sha = (run_dir / "model.joblib.sha256").read_text(encoding="utf-8").split()[0]
            self.client.log_batch(
                mlflow_id,
                metrics=metrics,
                params=params,
                tags=[RunTag("houseprice.artifact_sha256", sha)],
            )
            self.client.log_artifacts(mlflow_id, str(run_dir))
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.client.set_terminated(mlflow_id, "FAILED")
            raise TrackingError(f"--mlflow {self.uri}: {_one_line(exc)}") from None
        self.client.set_terminated(mlflow_id, "FINISHED")
        return str(mlflow_id)
