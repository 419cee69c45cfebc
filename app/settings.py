"""Service settings: the one place that reads the environment.

Every knob is an environment variable (twelve-factor style) so the same image runs on a laptop,
in compose and in Kubernetes. Values are parsed and checked once, at start-up, so a typo such as
``MAX_BATCH_SIZE=10k`` stops the process with a message naming the variable instead of
surfacing later as a 500.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = {"critical", "error", "warning", "info", "debug"}


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"{name}: expected a finite number > 0, got {raw!r}")
    return value


def _level(env: Mapping[str, str], name: str, default: float) -> float:
    """A probability strictly between 0 and 1 (an interval's coverage level)."""
    value = _float(env, name, default)
    if not value < 1.0:
        raise SettingsError(f"{name}: expected a level between 0 and 1 (e.g. 0.9), got {value!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise SettingsError(f"{name}: expected true/false, got {raw!r}")


def _optional(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    return raw if raw else None


def _prediction_log(env: Mapping[str, str]) -> str | None:
    """``PREDICTION_LOG``: ``None`` for off (the default), ``"stdout"``, or a file path whose
    folder exists, checked now rather than when the first line is written."""
    raw = (env.get("PREDICTION_LOG") or "").strip()
    if raw == "" or raw.lower() == "off":
        return None
    if raw.lower() == "stdout":
        return "stdout"
    path = Path(raw)
    if path.is_dir():
        raise SettingsError(
            f"PREDICTION_LOG: {raw!r} is a directory; expected off, stdout or a file"
        )
    if not path.parent.is_dir():
        raise SettingsError(f"PREDICTION_LOG: folder {str(path.parent)!r} does not exist")
    return raw


@dataclass(frozen=True)
class Settings:
    """The service configuration; defaults are the documented ones (docs/ARCHITECTURE.md)."""

    model_path: str = "artifacts/model.joblib"
    model_signing_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    max_batch_size: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    admin_token: str | None = None
    drift_window: int = 1000
    drift_min_samples: int = 200
    drift_psi_threshold: float = 0.25
    monitoring_enabled: bool = True
    body_timeout: float = 30.0
    otel_enabled: bool = False
    max_errors: int = 20
    shutdown_timeout: float = 20.0
    keep_alive_timeout: int = 5
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    max_artifact_bytes: int = 256 * 1024 * 1024
    reload_timeout: float = 60.0
    forwarded_allow_ips: str | None = None
    prediction_log: str | None = None
    prediction_log_max_bytes: int = 100 * 1024 * 1024
    prediction_log_backups: int = 5
    prediction_log_queue: int = 10_000
    feedback_index_size: int = 20_000
    shadow_model_path: str | None = None
    shadow_queue: int = 10_000
    shadow_nice: int = 10
    interval_level: float = 0.9

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the variables of ``env`` (default ``os.environ``); raise ``SettingsError``."""
        e = os.environ if env is None else env
        log_level = (e.get("LOG_LEVEL") or "info").strip().lower()
        if log_level not in _LOG_LEVELS:
            raise SettingsError(
                f"LOG_LEVEL: expected one of {sorted(_LOG_LEVELS)}, got {log_level!r}"
            )
        window = _int(e, "DRIFT_WINDOW", cls.drift_window, 1)
        min_samples = _int(e, "DRIFT_MIN_SAMPLES", cls.drift_min_samples, 1)
        if min_samples > window:
            raise SettingsError(
                f"DRIFT_MIN_SAMPLES ({min_samples}) must not exceed DRIFT_WINDOW ({window}): "
                "drift could never be reported"
            )
        return cls(
            model_path=e.get("MODEL_PATH") or cls.model_path,
            model_signing_key=_optional(e, "MODEL_SIGNING_KEY"),
            host=e.get("HOST") or cls.host,
            port=_int(e, "PORT", cls.port, 0),
            log_level=log_level,
            max_batch_size=_int(e, "MAX_BATCH_SIZE", cls.max_batch_size, 1),
            max_body_bytes=_int(e, "MAX_BODY_BYTES", cls.max_body_bytes, 1),
            admin_token=_optional(e, "ADMIN_TOKEN"),
            drift_window=window,
            drift_min_samples=min_samples,
            drift_psi_threshold=_float(e, "DRIFT_PSI_THRESHOLD", cls.drift_psi_threshold),
            monitoring_enabled=_bool(e, "MONITORING_ENABLED", cls.monitoring_enabled),
            body_timeout=_float(e, "BODY_TIMEOUT", cls.body_timeout),
            otel_enabled=_bool(e, "OTEL_ENABLED", cls.otel_enabled),
            max_errors=_int(e, "MAX_ERRORS", cls.max_errors, 1),
            shutdown_timeout=_float(e, "SHUTDOWN_TIMEOUT", cls.shutdown_timeout),
            keep_alive_timeout=_int(e, "KEEP_ALIVE_TIMEOUT", cls.keep_alive_timeout, 1),
            max_header_bytes=_int(e, "MAX_HEADER_BYTES", cls.max_header_bytes, 1024),
            max_headers=_int(e, "MAX_HEADERS", cls.max_headers, 10),
            max_artifact_bytes=_int(e, "MAX_ARTIFACT_BYTES", cls.max_artifact_bytes, 1),
            reload_timeout=_float(e, "RELOAD_TIMEOUT", cls.reload_timeout),
            forwarded_allow_ips=_optional(e, "FORWARDED_ALLOW_IPS"),
            prediction_log=_prediction_log(e),
            prediction_log_max_bytes=_int(
                e, "PREDICTION_LOG_MAX_BYTES", cls.prediction_log_max_bytes, 1024
            ),
            prediction_log_backups=_int(e, "PREDICTION_LOG_BACKUPS", cls.prediction_log_backups, 0),
            prediction_log_queue=_int(e, "PREDICTION_LOG_QUEUE", cls.prediction_log_queue, 1),
            feedback_index_size=_int(e, "FEEDBACK_INDEX_SIZE", cls.feedback_index_size, 0),
            shadow_model_path=_optional(e, "SHADOW_MODEL_PATH"),
            shadow_queue=_int(e, "SHADOW_QUEUE", cls.shadow_queue, 1),
            shadow_nice=_int(e, "SHADOW_NICE", cls.shadow_nice, 0),
            interval_level=_level(e, "INTERVAL_LEVEL", cls.interval_level),
        )

    def __repr__(self) -> str:
        # Secrets never reach a log line or a traceback through repr().
        hidden = {"model_signing_key", "admin_token"}
        parts = [f"{k}={'***' if k in hidden and v else v!r}" for k, v in self.__dict__.items()]
        return f"Settings({', '.join(parts)})"
