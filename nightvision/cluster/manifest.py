"""The record of a batch job in its output folder, so that a rerun skips finished work and redoes the rest.

``OUTDIR/nightvision-batch.json`` holds the settings the outputs were made with and, per output (by its
path relative to OUTDIR): the input it came from (path, size, mtime), its frame count, size, mtime and
sha256; and, for a long video still in progress, the chunks already finished (each a file under
``OUTDIR/.nightvision-batch/parts/``, with the same record). Only the job's coordinator writes it, always
atomically (write-then-rename), and an entry is written *before* its output is renamed into place, so no
complete output is ever unrecorded.

An output counts as finished when it is recorded, exists with the recorded size and mtime (and sha256, when
asked to verify), and its input is unchanged. Anything else is redone: an output that is missing, replaced,
or whose input changed; a chunk whose file is gone or whose video is now cut differently.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nightvision.errors import InputError
from nightvision.io.atomic import atomic_path
from nightvision.specs import sha256_of

__all__ = ["MANIFEST_NAME", "Manifest", "Record", "chunk_suffix", "file_record", "input_stamp", "part_name"]

log = logging.getLogger(__name__)

MANIFEST_NAME = "nightvision-batch.json"
_VERSION = 1


@dataclass(frozen=True)
class Record:
    """A finished file: its frame count, size in bytes, mtime (ns) and sha256; ``source``: ``[path, size,
    mtime_ns]`` of the input it was made from (``[]`` for chunk files)."""

    frames: int
    bytes: int
    mtime_ns: int
    sha256: str
    source: tuple[Any, ...] = ()

    def matches(self, path: Path, *, verify: bool) -> bool:
        """Whether ``path`` is still this file (size and mtime; and its sha256 with ``verify``)."""
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_size != self.bytes or st.st_mtime_ns != self.mtime_ns:
            return False
        return not verify or sha256_of(path) == self.sha256


def input_stamp(path: Path) -> tuple[Any, ...]:
    """``(absolute path, size, mtime_ns)`` of an input: a rerun redoes the outputs of inputs that changed."""
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def file_record(path: Path, frames: int, source: tuple[Any, ...] = ()) -> Record:
    """The :class:`Record` of a finished file (its sha256 read here)."""
    st = path.stat()
    return Record(frames, st.st_size, st.st_mtime_ns, sha256_of(path), tuple(source))


def _looks_like_a_manifest(data: Any) -> bool:
    """The shape :meth:`Manifest.save` writes: settings, outputs and chunks, each a table."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("settings"), dict)
        and isinstance(data.get("outputs", {}), dict)
        and isinstance(data.get("chunks", {}), dict)
        and all(isinstance(r, dict) for r in data.get("outputs", {}).values())
        and all(isinstance(c, dict) for c in data.get("chunks", {}).values())
    )


class Manifest:
    """``OUTDIR/nightvision-batch.json``: see the module docstring.

    Args:
        outdir: the job's output folder.
        settings: what the outputs depend on (model, stages, crf, ...); a manifest made with other settings
            is refused unless ``overwrite`` (which starts it afresh).
        overwrite: forget what the manifest recorded.
    """

    def __init__(self, outdir: Path, settings: dict[str, Any], *, overwrite: bool = False) -> None:
        self.path = outdir / MANIFEST_NAME
        self.settings = settings
        self.outputs: dict[str, Record] = {}
        self.chunks: dict[str, dict[str, Any]] = {}  # rel -> {"plan": [[start, end], ...], "parts": {k: Record}}
        if overwrite or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read the batch manifest {self.path} ({err}); delete it to start afresh") from err
        if not _looks_like_a_manifest(data):
            raise InputError(f"{self.path} is not a batch manifest (overwritten?); delete it to start afresh")
        if data.get("settings") != settings:
            theirs = data.get("settings", {})
            diff = ", ".join(
                f"{k}: {theirs.get(k)!r} there, {v!r} now" for k, v in settings.items() if theirs.get(k) != v
            )
            raise InputError(
                f"{outdir} holds outputs made with other settings ({diff or 'unknown'}); "
                "choose another output folder, or pass overwrite (--overwrite) to redo them"
            )
        self.outputs = {rel: _record(r) for rel, r in data.get("outputs", {}).items()}
        for rel, entry in data.get("chunks", {}).items():
            parts = {int(k): _record(r) for k, r in entry.get("parts", {}).items()}
            self.chunks[rel] = {"plan": entry.get("plan", []), "parts": parts}

    # --- queries

    def finished(self, rel: str, output: Path, source: Path, *, verify: bool = False) -> Record | None:
        """The record of ``rel`` if its output is finished and made from ``source`` as it is now, else None."""
        record = self.outputs.get(rel)
        if record is None or not record.matches(output, verify=verify):
            return None
        try:
            stamp = input_stamp(source)
        except OSError:
            return None
        return record if list(record.source) == list(stamp) else None

    def finished_parts(
        self, rel: str, plan: list[list[int | None]], folder: Path, *, verify: bool = False
    ) -> dict[int, Record]:
        """The chunks of ``rel`` already finished under the same ``plan`` (files in ``folder``)."""
        entry = self.chunks.get(rel)
        if entry is None or entry["plan"] != plan:
            return {}
        suffix = Path(rel).suffix
        return {k: r for k, r in entry["parts"].items() if r.matches(folder / part_name(k, suffix), verify=verify)}

    # --- updates (each saved at once)

    def record_output(self, rel: str, record: Record) -> None:
        self.outputs[rel] = record
        self.save()

    def record_part(self, rel: str, plan: list[list[int | None]], index: int, record: Record) -> None:
        entry = self.chunks.get(rel)
        if entry is None or entry["plan"] != plan:
            entry = self.chunks[rel] = {"plan": plan, "parts": {}}
        entry["parts"][index] = record
        self.save()

    def forget_parts(self, rel: str) -> None:
        if self.chunks.pop(rel, None) is not None:
            self.save()

    def forget(self, rel: str) -> None:
        """Drop ``rel`` (its output is being redone)."""
        dropped = self.outputs.pop(rel, None) is not None
        if dropped:
            self.save()

    def save(self) -> None:
        data = {
            "version": _VERSION,
            "settings": self.settings,
            "outputs": {rel: asdict(r) for rel, r in sorted(self.outputs.items())},
            "chunks": {
                rel: {"plan": e["plan"], "parts": {str(k): asdict(r) for k, r in sorted(e["parts"].items())}}
                for rel, e in sorted(self.chunks.items())
            },
        }
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(data, indent=1))
            with contextlib.suppress(OSError), open(tmp, "rb") as f:
                os.fsync(f.fileno())


def chunk_suffix(output_suffix: str) -> str:
    """The format of the chunks of an output with ``output_suffix``: the join copies their packets, which the
    output's container must take. MP4 (H.264, with its decode times) for every output but WebM (VP9: WebM
    chunks) and AVI (no B-frames: AVI chunks). Not Matroska chunks for an MKV output: their first packets read
    back without decode times, and the join lost them (112 of 120 frames)."""
    suffix = output_suffix.lower()
    return suffix if suffix in (".webm", ".avi") else ".mp4"


def part_name(index: int, output_suffix: str) -> str:
    """The file name of chunk ``index`` in a video's parts folder (:func:`chunk_suffix`)."""
    return f"chunk-{index:05d}{chunk_suffix(output_suffix)}"


def _record(data: dict[str, Any]) -> Record:
    return Record(
        frames=int(data["frames"]),
        bytes=int(data["bytes"]),
        mtime_ns=int(data["mtime_ns"]),
        sha256=str(data["sha256"]),
        source=tuple(data.get("source", ())),
    )
