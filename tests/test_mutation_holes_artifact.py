"""model.workflow.artifact: the rules mutation testing found unchecked (issue 20).

Every refusal and failed write is one line that names the file and the reason (the OS's own
words, not its ``[Errno N]`` form) and, for a failed save, what state the files are left in;
these tests pin each message whole. They also cover sidecars that are not text, metadata
that holds ``None`` or a value JSON cannot hold, and the exact ``model.json`` a tool reads.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import joblib
import pytest

import model.workflow.artifact as artifact_module
from model.workflow.artifact import (
    FORMAT_VERSION,
    ArtifactError,
    _jsonable,
    load_artifact,
    save_artifact,
    verify_artifact,
)

KEY = b"holes-signing-key"
PIPELINE = {"weights": [1.0, 2.0]}  # any picklable object stands for a fitted pipeline


def exact(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern for the whole message, nothing more."""
    return "^" + re.escape(message) + "$"


def write_raw(path: Path, payload: Any) -> None:
    """Pickle ``payload`` to ``path`` with a checksum that matches, as a foreign tool might."""
    buffer = io.BytesIO()
    joblib.dump(payload, buffer)
    path.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")


# --- metadata -------------------------------------------------------------------------------


def test_none_in_metadata_is_kept_as_null(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, PIPELINE, {"note": None, "values": [None, 1]})
    assert load_artifact(path).metadata == {"note": None, "values": [None, 1]}
    assert json.loads((tmp_path / "model.json").read_text()) == {"note": None, "values": [None, 1]}


def test_a_value_json_cannot_hold_is_named_by_its_type() -> None:
    with pytest.raises(TypeError, match=exact("set is not JSON serialisable")):
        _jsonable({"tags": {1, 2}})


def test_model_json_is_indented_json_ending_in_a_newline(tmp_path: Path) -> None:
    """model.json is read by people and diffed between runs: two-space indents, one per line."""
    path = tmp_path / "model.joblib"
    metadata = {"model_version": "v1", "test": {"rmse": 1.5, "r2": float("nan")}}
    save_artifact(path, PIPELINE, metadata)
    plain = {"model_version": "v1", "test": {"rmse": 1.5, "r2": None}}
    assert (tmp_path / "model.json").read_text() == json.dumps(plain, indent=2) + "\n"


# --- save: bad arguments and failed writes ---------------------------------------------------


def test_bad_signing_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=exact("signing_key must be bytes or None, got str")):
        save_artifact(tmp_path / "m.joblib", PIPELINE, {}, signing_key="text")  # type: ignore[arg-type]
    with pytest.raises(
        ArtifactError, match=exact("the signing key is empty; pass None to write no signature")
    ):
        save_artifact(tmp_path / "m.joblib", PIPELINE, {}, signing_key=b"")


def test_unpicklable_pipeline_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.joblib"
    with pytest.raises(
        ArtifactError, match="^" + re.escape(f"{path}: cannot serialise the pipeline: ")
    ):
        save_artifact(path, lambda x: x, {})
    assert not path.exists()


def _fail_fsync_on_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """The artifact's temporary file is written; the next one finds the disk full."""
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(artifact_module.os, "fsync", fsync)


def _temp_unlink_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Removing a temporary file fails too (a second error while cleaning up)."""
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.name.endswith(".tmp"):
            raise OSError(errno.EIO, "Input/output error")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)


def test_disk_full_message_states_the_old_artifact_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.joblib"
    _fail_fsync_on_second(monkeypatch)
    message = (
        f"{path}: cannot write the artifact (No space left on device); "
        "the previous artifact is unchanged"
    )
    with pytest.raises(ArtifactError, match=exact(message)):
        save_artifact(path, PIPELINE, {})


def test_a_temp_file_that_cannot_be_removed_does_not_hide_the_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_fsync_on_second(monkeypatch)
    _temp_unlink_fails(monkeypatch)
    with pytest.raises(ArtifactError, match="No space left on device"):
        save_artifact(tmp_path / "model.joblib", PIPELINE, {})


def test_failed_first_rename_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.joblib"

    def read_only(src: Any, dst: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(artifact_module.os, "replace", read_only)
    message = (
        f"{path}: cannot install the artifact (Read-only file system); "
        "the previous artifact is unchanged"
    )
    with pytest.raises(ArtifactError, match=exact(message)):
        save_artifact(path, PIPELINE, {})


def test_failed_later_rename_message_and_leftovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.joblib"
    real_replace = os.replace

    def fail_after_first(src: Any, dst: Any) -> None:
        if str(dst).endswith(".joblib"):
            real_replace(src, dst)
        else:
            raise OSError(errno.EIO, "Input/output error", str(dst))

    monkeypatch.setattr(artifact_module.os, "replace", fail_after_first)
    message = (
        f"{path}: cannot install the artifact (Input/output error); the artifact was replaced "
        "but not all its sidecars, so loading it is refused until it is written again"
    )
    with pytest.raises(ArtifactError, match=exact(message)):
        save_artifact(path, PIPELINE, {})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.joblib"]  # temps removed


def test_failed_later_rename_with_a_temp_that_cannot_be_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def fail_after_first(src: Any, dst: Any) -> None:
        if str(dst).endswith(".joblib"):
            real_replace(src, dst)
        else:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(artifact_module.os, "replace", fail_after_first)
    _temp_unlink_fails(monkeypatch)
    with pytest.raises(ArtifactError, match="refused until it is written again"):
        save_artifact(tmp_path / "model.joblib", PIPELINE, {})


def test_failed_directory_fsync_says_all_files_are_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.joblib"

    def fsync_dir(directory: Path) -> None:
        raise OSError(errno.EIO, "Input/output error", str(directory))

    monkeypatch.setattr(artifact_module, "fsync_dir", fsync_dir)
    message = (
        f"{path}: cannot install the artifact (Input/output error); "
        "all files are in place but may not be durable"
    )
    with pytest.raises(ArtifactError, match=exact(message)):
        save_artifact(path, PIPELINE, {"model_version": "v2"}, signing_key=KEY)
    monkeypatch.undo()
    loaded = load_artifact(path, signing_key=KEY)  # every file was renamed into place
    assert loaded.metadata == {"model_version": "v2"} and loaded.signed


# --- load: unreadable files and sidecars -----------------------------------------------------


def test_unreadable_artifact_names_the_os_reason(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.mkdir()
    with pytest.raises(ArtifactError, match=exact(f"{path}: cannot read: Is a directory")):
        load_artifact(path)


def test_unreadable_checksum_file_names_the_os_reason(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, PIPELINE, {})
    side = tmp_path / "model.joblib.sha256"
    side.unlink()
    side.mkdir()
    message = f"{path}: cannot read model.joblib.sha256: Is a directory"
    with pytest.raises(ArtifactError, match=exact(message)):
        verify_artifact(path)


def test_unreadable_signature_file_names_the_os_reason(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, PIPELINE, {}, signing_key=KEY)
    sig = tmp_path / "model.joblib.sig"
    sig.unlink()
    sig.mkdir()
    message = f"{path}: cannot read model.joblib.sig: Is a directory"
    with pytest.raises(ArtifactError, match=exact(message)):
        load_artifact(path, signing_key=KEY)


def test_sidecars_that_are_not_text_are_refused_not_crashed_on(tmp_path: Path) -> None:
    """A garbled sidecar (bytes that are not UTF-8) is a refusal, not a UnicodeDecodeError."""
    path = tmp_path / "model.joblib"
    save_artifact(path, PIPELINE, {}, signing_key=KEY)
    (tmp_path / "model.joblib.sig").write_bytes(b"\xff\xfe\x00garbage\n")
    message = f"{path}: refused: signature mismatch (tampered artifact or wrong signing key)"
    with pytest.raises(ArtifactError, match=exact(message)):
        load_artifact(path, signing_key=KEY)
    (tmp_path / "model.joblib.sha256").write_bytes(b"\xff\xfe\x00garbage  model.joblib\n")
    message = f"{path}: refused: model.joblib.sha256 does not hold a sha256 hex digest"
    with pytest.raises(ArtifactError, match=exact(message)):
        verify_artifact(path)


# --- load: what the verified bytes hold ------------------------------------------------------


def test_unpickling_error_is_its_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, PIPELINE, {})

    def load(f: Any) -> Any:
        raise ValueError("bad opcode\nsecond line of detail")

    monkeypatch.setattr(artifact_module.joblib, "load", load)
    message = f"{path}: cannot unpickle the artifact: bad opcode"
    with pytest.raises(ArtifactError, match=exact(message)):
        load_artifact(path)


def test_unpickling_error_without_a_message_is_named_by_its_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, PIPELINE, {})

    def load(f: Any) -> Any:
        raise EOFError

    monkeypatch.setattr(artifact_module.joblib, "load", load)
    with pytest.raises(
        ArtifactError, match=exact(f"{path}: cannot unpickle the artifact: EOFError")
    ):
        load_artifact(path)


def test_not_an_artifact_layout_message(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    write_raw(path, {"format_version": FORMAT_VERSION, "pipeline": PIPELINE})  # no metadata
    message = (
        f"{path}: not a houseprice artifact (expected a dict with format_version, "
        "pipeline and metadata)"
    )
    with pytest.raises(ArtifactError, match=exact(message)):
        load_artifact(path)


def test_metadata_that_is_not_a_dict_is_refused_naming_its_type(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    write_raw(path, {"format_version": FORMAT_VERSION, "pipeline": PIPELINE, "metadata": [1]})
    message = f"{path}: metadata is a list, expected a dict"
    with pytest.raises(ArtifactError, match=exact(message)):
        load_artifact(path)
