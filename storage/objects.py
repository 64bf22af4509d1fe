"""Content-addressed files: dataset snapshots, models, artifacts, reports.

An object's name is the blake3 hash of its bytes, so the same content is stored once and
any change on disk is detected when the object is read back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import blake3

from mlyard.storage.errors import NotFound, ObjectCorrupt
from mlyard.storage.regular_files import SET_ASIDE, is_regular, kind_of, set_aside

CHUNK = 8 << 20


def hash_file(path: Path) -> str:
    """The blake3 hex digest of a file, read in chunks so memory stays flat.

    Plain reads rather than mmap: a mapped file counts fully in the process's RSS.
    """
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


class ObjectStore:
    """Immutable files under `objects/ab/cdef...`, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def put_file(self, source: Path) -> str:
        """Copy `source` into the store and return its hash; the source is only read."""
        tmp = self._tmp_path()
        try:
            shutil.copyfile(source, tmp)
            return self.adopt(tmp)
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> str:
        tmp = self._tmp_path()
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
            return self.adopt(tmp)
        finally:
            tmp.unlink(missing_ok=True)

    def put_all(self, blobs: list[bytes]) -> list[str]:
        """Store several objects from memory, made durable together (`adopt_all`) and
        hashed from memory rather than read back."""
        tmps: list[Path] = []
        try:
            for data in blobs:
                tmps.append(self._tmp_path())
                with open(tmps[-1], "wb") as handle:
                    handle.write(data)
            return self.adopt_all(tmps, [blake3.blake3(data).hexdigest() for data in blobs])
        finally:
            for tmp in tmps:
                tmp.unlink(missing_ok=True)

    def new_temp(self, suffix: str = "") -> Path:
        """A fresh path inside the store's temp area, on the same filesystem as the objects."""
        return self._tmp_path(suffix)

    def adopt(self, tmp: Path) -> str:
        """Move a finished temp file into place under its hash (fsynced, then renamed)."""
        return self.adopt_all([tmp])[0]

    def adopt_all(self, tmps: list[Path], digests: list[str] | None = None) -> list[str]:
        """`adopt` for several files (whose hashes may be known already): every one
        fsynced before any is named. The first fsync commits the filesystem's journal for
        them all, and the others find their bytes already on disk; fsyncing each before
        writing the next waited on a commit per file (~1.6 ms of a small file's ~7 ms
        ingest here)."""
        for tmp in tmps:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        known = digests or [hash_file(tmp) for tmp in tmps]
        return [self._name(tmp, digest) for tmp, digest in zip(tmps, known, strict=True)]

    def _name(self, tmp: Path, digest: str) -> str:
        """Move a durable temp file into place under its hash."""
        final = self.path_for(digest)
        if final.exists():
            tmp.unlink()
            return digest
        os.chmod(tmp, 0o444)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:  # the first object under this prefix
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        return digest

    def open_verified(self, digest: str) -> Path:
        """The object's path, after checking its bytes still hash to its name."""
        path = self.path_for(digest)
        if not path.exists():
            raise NotFound(f"object {digest[:12]} is missing from {self.root}")
        if not is_regular(path):  # a FIFO would hang the read; a link leads elsewhere
            kind = kind_of(path)
            set_aside(path, f"{kind}, not a regular file; mlyard never reads one",
                      self.root / SET_ASIDE)
            raise ObjectCorrupt(f"{path}: {kind}, not a regular file; set aside in "
                                f"{self.root / SET_ASIDE} (`mlyard doctor` says what needs "
                                "it)")
        actual = hash_file(path)
        if actual != digest:
            raise ObjectCorrupt(
                f"{path}: content hash is {actual[:12]}, expected {digest[:12]}; "
                "the file was changed on disk"
            )
        return path

    def read_bytes(self, digest: str) -> bytes:
        return self.open_verified(digest).read_bytes()

    def _tmp_path(self, suffix: str = "") -> Path:
        tmp_dir = self.root / "tmp"
        try:
            handle, name = tempfile.mkstemp(dir=tmp_dir, suffix=suffix)
        except FileNotFoundError:  # a new store (a folder made per file cost a syscall)
            tmp_dir.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=tmp_dir, suffix=suffix)
        os.close(handle)
        return Path(name)
