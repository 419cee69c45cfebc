"""model.workflow.artifact: round trip, every refusal, failed writes that leave the old one."""

from __future__ import annotations

import errno
import hashlib
import hmac
import io
import json
import os
from pathlib import Path
from typing import Any, Self

import joblib
import numpy as np
import pytest

import model.workflow.artifact as artifact_module
from model.base import BaseEstimator, check_X_y
from model.workflow.artifact import (
    FORMAT_VERSION,
    ArtifactError,
    load_artifact,
    save_artifact,
    verify_artifact,
)

KEY = b"test-signing-key"


class MeanRegressor(BaseEstimator):
    """Predicts the training mean plus ``shift``: a small real fitted object to pickle."""

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift

    def fit(self, X: Any, y: Any) -> Self:
        _, ya = check_X_y(X, y)
        self.mean_ = float(ya.mean())
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.mean_ + self.shift)


def fitted() -> MeanRegressor:
    return MeanRegressor(shift=1.0).fit(np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0, 6.0]))


META: dict[str, Any] = {
    "format_version": FORMAT_VERSION,
    "model_version": "test-1",
    "test": {"rmse": np.float64(12.5), "r2": float("nan")},
    "features": [{"name": "area", "min": np.int64(3), "categories": np.array(["a", "b"])}],
}


def listing(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


def test_round_trip_and_sidecars(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    digest = save_artifact(path, fitted(), META)
    data = path.read_bytes()
    assert digest == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "model.joblib.sha256").read_text() == f"{digest}  model.joblib\n"
    assert not (tmp_path / "model.joblib.sig").exists()
    meta_json = json.loads((tmp_path / "model.json").read_text())
    assert meta_json["test"] == {"rmse": 12.5, "r2": None}
    assert meta_json["features"][0] == {"name": "area", "min": 3, "categories": ["a", "b"]}
    assert listing(tmp_path) == {"model.joblib", "model.joblib.sha256", "model.json"}
    for f in tmp_path.iterdir():  # readable by a server running as another user
        assert f.stat().st_mode & 0o777 == 0o644, f.name

    art = load_artifact(path)
    assert art.sha256 == digest and art.path == str(path) and not art.signed
    assert art.metadata == meta_json  # plain JSON values in both places
    assert type(art.metadata["test"]["rmse"]) is float
    assert art.metadata["model_version"] == "test-1"
    assert art.pipeline.get_params() == {"shift": 1.0}
    np.testing.assert_allclose(art.pipeline.predict([[0, 0], [1, 1]]), [4.0, 4.0])
    payload = joblib.load(io.BytesIO(data))  # the documented layout, readable by joblib alone
    assert payload["format_version"] == FORMAT_VERSION
    assert verify_artifact(path) == digest


def test_signed_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, fitted(), META, signing_key=KEY)
    sig = (tmp_path / "model.joblib.sig").read_text().strip()
    assert sig == hmac.new(KEY, path.read_bytes(), hashlib.sha256).hexdigest()
    assert load_artifact(path, signing_key=KEY).signed
    assert load_artifact(path).pipeline.mean_ == 3.0  # no key: the signature is not required
    with pytest.raises(ArtifactError, match="signature mismatch"):
        load_artifact(path, signing_key=b"another key")


def test_tampered_bytes_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    digest = save_artifact(path, fitted(), META)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    new = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(ArtifactError) as info:
        load_artifact(path)
    msg = str(info.value)
    assert f"checksum mismatch: expected {digest[:12]}…, file has {new[:12]}…" in msg
    assert "\n" not in msg
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        verify_artifact(path)


def test_tampered_bytes_with_recomputed_checksum_refused_with_key(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, fitted(), META, signing_key=KEY)
    # An attacker swaps in another valid artifact and rewrites the checksum to match.
    evil = io.BytesIO()
    payload = {
        "format_version": FORMAT_VERSION,
        "pipeline": MeanRegressor(shift=1e6),
        "metadata": {},
    }
    joblib.dump(payload, evil)
    path.write_bytes(evil.getvalue())
    digest = hashlib.sha256(evil.getvalue()).hexdigest()
    (tmp_path / "model.joblib.sha256").write_text(f"{digest}  model.joblib\n")
    assert load_artifact(path).pipeline.shift == 1e6  # the checksum alone cannot tell
    with pytest.raises(ArtifactError, match="signature mismatch"):
        load_artifact(path, signing_key=KEY)
    with pytest.raises(ArtifactError, match="signature mismatch"):
        verify_artifact(path, signing_key=KEY)


def test_unpickling_happens_only_after_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, fitted(), META)
    path.write_bytes(path.read_bytes() + b"x")
    calls: list[Any] = []
    monkeypatch.setattr(artifact_module.joblib, "load", lambda f: calls.append(f))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(path)
    assert calls == []


def test_missing_sidecars_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, fitted(), META, signing_key=KEY)
    (tmp_path / "model.joblib.sig").unlink()
    with pytest.raises(ArtifactError, match=r"signing key is set but signature .*\.sig is missing"):
        load_artifact(path, signing_key=KEY)
    (tmp_path / "model.joblib.sha256").unlink()
    with pytest.raises(ArtifactError, match=r"checksum file model\.joblib\.sha256 is missing"):
        load_artifact(path)
    (tmp_path / "model.joblib.sha256").write_text("not a digest\n")
    with pytest.raises(ArtifactError, match="does not hold a sha256"):
        verify_artifact(path)
    with pytest.raises(ArtifactError, match="no such artifact"):
        load_artifact(tmp_path / "other.joblib")


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, fitted(), META)
    cut = path.read_bytes()[:100]
    path.write_bytes(cut)
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(path)
    # Even with a matching checksum, a truncated pickle is an ArtifactError, not a crash.
    digest = hashlib.sha256(cut).hexdigest()
    (tmp_path / "model.joblib.sha256").write_text(f"{digest}  model.joblib\n")
    with pytest.raises(ArtifactError, match="cannot unpickle"):
        load_artifact(path)


def _write_raw(path: Path, payload: Any) -> None:
    buf = io.BytesIO()
    joblib.dump(payload, buf)
    path.write_bytes(buf.getvalue())
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")


def test_incompatible_format_version_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    _write_raw(path, {"format_version": FORMAT_VERSION + 1, "pipeline": fitted(), "metadata": {}})
    with pytest.raises(ArtifactError, match=rf"incompatible format_version {FORMAT_VERSION + 1}"):
        load_artifact(path)
    assert verify_artifact(path)  # the bytes are intact; only the layout is refused
    _write_raw(path, fitted())
    with pytest.raises(ArtifactError, match="not a houseprice artifact"):
        load_artifact(path)


def test_failed_replace_leaves_old_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.joblib"
    old = save_artifact(path, fitted(), META, signing_key=KEY)
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}

    def read_only(src: Any, dst: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(artifact_module.os, "replace", read_only)
    with pytest.raises(
        ArtifactError, match=r"Read-only file system.*previous artifact is unchanged"
    ):
        save_artifact(path, MeanRegressor(shift=2.0).fit([[1.0]], [5.0]), META, signing_key=KEY)
    monkeypatch.undo()
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before
    assert load_artifact(path, signing_key=KEY).sha256 == old


def test_disk_full_leaves_old_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.joblib"
    old = save_artifact(path, fitted(), META)
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    real_fsync = os.fsync
    calls = {"n": 0}

    def full_on_second(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the artifact's temp file is written; the next one fails
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(artifact_module.os, "fsync", full_on_second)
    with pytest.raises(ArtifactError, match="No space left on device"):
        save_artifact(path, MeanRegressor(shift=2.0).fit([[1.0]], [5.0]), {"model_version": "2"})
    monkeypatch.undo()
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before
    assert load_artifact(path).sha256 == old


def test_crash_between_renames_is_refused_not_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented trade-off: a half-installed artifact is refused, never mis-verified."""
    path = tmp_path / "model.joblib"
    save_artifact(path, fitted(), META)
    real_replace = os.replace

    def fail_after_first(src: Any, dst: Any) -> None:
        if str(dst).endswith(".joblib"):
            real_replace(src, dst)
        else:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(artifact_module.os, "replace", fail_after_first)
    with pytest.raises(ArtifactError, match="refused until it is written again"):
        save_artifact(path, MeanRegressor(shift=2.0).fit([[1.0]], [5.0]), META)
    monkeypatch.undo()
    assert not [n for n in listing(tmp_path) if n.endswith(".tmp")]
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(path)
    save_artifact(path, fitted(), META)  # writing again repairs it
    assert load_artifact(path).pipeline.shift == 1.0


def test_resave_without_key_removes_stale_signature(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, fitted(), META, signing_key=KEY)
    save_artifact(path, fitted(), META)
    assert not (tmp_path / "model.joblib.sig").exists()
    with pytest.raises(ArtifactError, match=r"signature .* is missing"):
        load_artifact(path, signing_key=KEY)


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not JSON serialisable"):
        save_artifact(tmp_path / "m.joblib", fitted(), {"x": object()})
    with pytest.raises(ArtifactError, match=r"must not end in \.json"):
        save_artifact(tmp_path / "m.json", fitted(), {})
    with pytest.raises(ArtifactError, match="signing key is empty"):
        save_artifact(tmp_path / "m.joblib", fitted(), {}, signing_key=b"")
    with pytest.raises(TypeError, match="signing_key must be bytes"):
        save_artifact(tmp_path / "m.joblib", fitted(), {}, signing_key="text")  # type: ignore[arg-type]
    assert listing(tmp_path) == set()
    save_artifact(tmp_path / "new" / "dir" / "m.joblib", fitted(), {})  # parents are created
    assert load_artifact(tmp_path / "new" / "dir" / "m.joblib").metadata == {}
