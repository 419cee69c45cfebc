"""The model artifact on disk: atomic save, integrity checks before unpickling, load.

Unpickling runs arbitrary code, so a loader must know the bytes are the ones training wrote
**before** it calls ``joblib.load``. Two checks, on the same bytes that are then unpickled
(read once, so a file swapped between check and load cannot slip through):

* ``<path>.sha256`` (``"<hex>  <name>\\n"``, the ``sha256sum`` format): catches a truncated
  or corrupted file. The bytes must match one of its lines: only a promotion in progress
  writes two (the outgoing and the incoming digest, see :mod:`model.workflow.registry`).
  Anyone who can write the artifact can also rewrite this file, so it is not a defence
  against tampering;
* ``<path>.sig``: ``HMAC-SHA256(key, bytes)`` in hex, written when a signing key is given and
  required when the loader is given one (one per line, like the checksum, during a
  promotion). Without the key a tampered file cannot be re-signed.

Crash safety. Every file is first written in full to a temporary file in the same directory
and fsynced; a failure there (disk full, read-only directory) removes the temporary files and
leaves the previous artifact and its sidecars exactly as they were. Only then are the files
renamed into place, in the order artifact, ``.sig``, ``.sha256``, ``.json``, and the directory
is fsynced. Renames within a directory are atomic but there are several, so a crash between two
of them leaves a new artifact next to an old checksum (or signature). We accept that the
reader then **refuses** ("checksum mismatch") rather than try to make the pair atomic: a
refusal is safe (a running server keeps its current model; a restart fails loudly until
training is re-run), whereas any scheme that lets a reader accept a pair it cannot verify is
not. The ``.sha256`` is renamed last among the checked files, so it is the commit point: once
it is in place, the artifact and its checksum (and signature) agree. A reader running during a
save can likewise pair old bytes with a new checksum; it refuses too, and a retry succeeds.
``model.json`` is a copy of the metadata for tools that must not unpickle; the loader never
trusts it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from model.workflow.atomic import fsync_dir, write_temp

#: Version of the ``{"format_version", "pipeline", "metadata"}`` layout; bump on any change
#: a previous loader could not read, so that it refuses instead of half-working.
FORMAT_VERSION = 1

_HEX64 = re.compile(r"[0-9a-f]{64}")


class ArtifactError(Exception):
    """An artifact that cannot be saved or must not be loaded; the message is one line."""


@dataclass(frozen=True)
class Artifact:
    """A verified, loaded artifact: the fitted pipeline, its metadata and the bytes' digest."""

    pipeline: Any
    metadata: dict[str, Any]
    sha256: str
    path: str
    signed: bool = False


def sidecar_paths(path: str | Path) -> dict[str, Path]:
    """Where the checksum, signature and metadata JSON of the artifact ``path`` live."""
    p = Path(path)
    return {
        "sha256": p.with_name(p.name + ".sha256"),
        "sig": p.with_name(p.name + ".sig"),
        "json": p.with_suffix(".json"),
    }


def _short(hex_digest: str) -> str:
    return hex_digest[:12] + "…"


def hmac_sha256(key: bytes, data: bytes) -> str:
    """``HMAC-SHA256(key, data)`` in hex."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _jsonable(value: Any) -> Any:
    """Plain JSON values: NumPy scalars and arrays to Python, NaN/inf to null (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save_artifact(
    path: str | Path,
    pipeline: Any,
    metadata: dict[str, Any],
    signing_key: bytes | None = None,
) -> str:
    """Write the artifact and its sidecars (see the module docstring); return its sha256 hex."""
    p = Path(path)
    if p.suffix == ".json":
        raise ArtifactError(f"{p}: an artifact path must not end in .json (used for metadata)")
    if signing_key is not None and not isinstance(signing_key, bytes):
        raise TypeError(f"signing_key must be bytes or None, got {type(signing_key).__name__}")
    if signing_key is not None and not signing_key:
        raise ArtifactError("the signing key is empty; pass None to write no signature")
    try:
        # The pickled metadata is this same plain-JSON form, so the loaded metadata equals
        # model.json and serving can return it without meeting a NumPy scalar.
        plain = _jsonable(metadata)
        meta_json = json.dumps(plain, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{p}: metadata is not JSON serialisable: {exc}") from None
    buffer = io.BytesIO()
    payload = {"format_version": FORMAT_VERSION, "pipeline": pipeline, "metadata": plain}
    try:
        joblib.dump(payload, buffer)
    except Exception as exc:
        raise ArtifactError(f"{p}: cannot serialise the pipeline: {exc}") from exc
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()

    side = sidecar_paths(p)
    contents: list[tuple[Path, bytes]] = [(p, data)]
    if signing_key is not None:
        contents.append((side["sig"], (hmac_sha256(signing_key, data) + "\n").encode()))
    contents.append((side["sha256"], f"{digest}  {p.name}\n".encode()))
    contents.append((side["json"], meta_json.encode()))

    temps: list[tuple[Path, Path]] = []
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        for target, content in contents:
            temps.append((write_temp(p.parent, target.name, content), target))
    except OSError as exc:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise ArtifactError(
            f"{p}: cannot write the artifact ({exc.strerror or exc}); "
            "the previous artifact is unchanged"
        ) from exc

    done = 0
    try:
        for tmp, target in temps:
            os.replace(tmp, target)
            done += 1
        if signing_key is None:
            # A stale signature would pair an old HMAC with new bytes; "missing" is clearer.
            side["sig"].unlink(missing_ok=True)
        fsync_dir(p.parent)
    except OSError as exc:
        for tmp, _ in temps[done:]:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if done == 0:
            state = "the previous artifact is unchanged"
        elif done < len(temps):
            state = (
                "the artifact was replaced but not all its sidecars, so loading it is "
                "refused until it is written again"
            )
        else:
            state = "all files are in place but may not be durable"
        raise ArtifactError(
            f"{p}: cannot install the artifact ({exc.strerror or exc}); {state}"
        ) from exc
    return digest


def read_checksums(path: str | Path) -> list[str]:
    """The sha256 hex digests listed in ``<path>.sha256``, one per line.

    Normally one. A promotion (:mod:`model.workflow.registry`) briefly lists the outgoing and
    the incoming digest while it swaps the artifact, so that either file verifies.
    """
    p = Path(path)
    side = sidecar_paths(p)["sha256"]
    try:
        # Bytes that are not UTF-8 cannot spell a digest: the check below refuses them.
        text = side.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise ArtifactError(f"{p}: refused: checksum file {side.name} is missing") from None
    except OSError as exc:
        raise ArtifactError(f"{p}: cannot read {side.name}: {exc.strerror or exc}") from None
    digests = [line.split()[0].lower() for line in text.splitlines() if line.strip()]
    if not digests or not all(_HEX64.fullmatch(d) for d in digests):
        raise ArtifactError(f"{p}: refused: {side.name} does not hold a sha256 hex digest")
    return digests


def _read_verified(path: Path, signing_key: bytes | None) -> tuple[bytes, str, bool]:
    """The artifact's bytes, read once, after the checksum (and the HMAC, with a key) match."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such artifact") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read: {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    expected = read_checksums(path)
    if not any(hmac.compare_digest(digest, e) for e in expected):
        raise ArtifactError(
            f"{path}: refused: checksum mismatch: expected {_short(expected[-1])}, "
            f"file has {_short(digest)}"
        )
    if signing_key is None:
        return data, digest, False
    sig_path = sidecar_paths(path)["sig"]
    try:
        signatures = sig_path.read_bytes().lower().split()  # bytes: any byte compares
    except FileNotFoundError:
        raise ArtifactError(
            f"{path}: refused: a signing key is set but signature {sig_path.name} is missing"
        ) from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read {sig_path.name}: {exc.strerror or exc}") from None
    mac = hmac_sha256(signing_key, data).encode()
    if not any(hmac.compare_digest(mac, s) for s in signatures):
        raise ArtifactError(
            f"{path}: refused: signature mismatch (tampered artifact or wrong signing key)"
        )
    return data, digest, True


def verify_artifact(path: str | Path, signing_key: bytes | None = None) -> str:
    """Check the checksum (and signature) without unpickling; return the sha256 hex."""
    _, digest, _ = _read_verified(Path(path), signing_key)
    return digest


def load_artifact(path: str | Path, signing_key: bytes | None = None) -> Artifact:
    """Verify, then unpickle the same bytes, then check the layout and ``format_version``."""
    p = Path(path)
    data, digest, signed = _read_verified(p, signing_key)
    try:
        payload = joblib.load(io.BytesIO(data))
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtifactError(f"{p}: cannot unpickle the artifact: {reason}") from exc
    if not isinstance(payload, dict) or not {"format_version", "pipeline", "metadata"} <= set(
        payload
    ):
        raise ArtifactError(
            f"{p}: not a houseprice artifact (expected a dict with format_version, "
            "pipeline and metadata)"
        )
    version = payload["format_version"]
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{p}: incompatible format_version {version!r}; this code reads "
            f"{FORMAT_VERSION}: retrain the model with this version"
        )
    metadata = payload["metadata"]
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{p}: metadata is a {type(metadata).__name__}, expected a dict")
    return Artifact(
        pipeline=payload["pipeline"], metadata=metadata, sha256=digest, path=str(p), signed=signed
    )
