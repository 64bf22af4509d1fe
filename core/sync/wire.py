"""`mlyard sync` over ssh: the same calls as a project folder here, as messages on the
ssh process's standard input and output.

A message is one line of JSON; when it says `"size": N`, N raw bytes follow it (an
object's content). `mlyard sync-agent` on the other machine answers each call with one
message, `{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`, so the two
sides never need more than one call in flight.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from mlyard.core.sync.peer import CHUNK, PROTOCOL, Peer, SyncRefused

# A message line longer than this is not ours (a shell's greeting, a broken agent).
MAX_LINE = 1 << 30
# Seconds the other side may say nothing while an answer is due: long enough for a
# large batch of rows to be checked and written there, short of forever.
SILENCE = 300.0


def _silence() -> float:
    raw = os.environ.get("MLYARD_SYNC_TIMEOUT", "")
    try:
        value = float(raw) if raw else SILENCE
    except ValueError:
        raise SyncRefused(f"MLYARD_SYNC_TIMEOUT={raw!r}: expected seconds, like 300") from None
    if not value > 0:
        raise SyncRefused(f"MLYARD_SYNC_TIMEOUT={raw!r}: expected seconds above 0")
    return value


def send(stream: IO[bytes], message: dict[str, Any], payload: Iterable[bytes] = ()) -> None:
    stream.write(json.dumps(message, default=str).encode() + b"\n")
    for chunk in payload:
        stream.write(chunk)
    stream.flush()


def receive(stream: IO[bytes], where: str) -> dict[str, Any] | None:
    """The next message, or None at the end of the stream."""
    line = stream.readline(MAX_LINE)
    if not line:
        return None
    try:
        message = json.loads(line)
    except ValueError:
        raise SyncRefused(f"{where}: expected a sync message, got {line[:80]!r} (is "
                          "something printing on login, or is mlyard there too old?)") from None
    if not isinstance(message, dict):
        raise SyncRefused(f"{where}: expected a sync message, got {line[:80]!r}")
    return message


def payload(stream: IO[bytes], size: int, where: str) -> Iterator[bytes]:
    """Exactly `size` bytes from the stream, in chunks."""
    left = size
    while left > 0:
        chunk = stream.read(min(left, CHUNK))
        if not chunk:
            raise SyncRefused(f"{where}: the connection closed {left:,} bytes before the end "
                              "of an object")
        left -= len(chunk)
        yield chunk


def serve(peer: Peer, incoming: IO[bytes], outgoing: IO[bytes]) -> None:
    """Answer calls until the other side closes the stream (`mlyard sync-agent`)."""
    while (message := receive(incoming, "sync client")) is not None:
        call, args = str(message.get("call")), message.get("args") or {}
        try:
            if call == "read_object":
                size, chunks = peer.read_object(str(args["digest"]))
                send(outgoing, {"ok": True, "size": size}, chunks)
                continue
            if call == "write_object":
                chunks = payload(incoming, int(message["size"]), "sync client")
                try:
                    peer.write_object(str(args["digest"]), int(message["size"]), chunks)
                finally:
                    for _ in chunks:  # keep the stream in step after a refusal
                        pass
                result: Any = None
            elif call in _CALLS:
                result = getattr(peer, call)(**args)
            else:
                raise SyncRefused(f"unknown sync call {call!r}")
        except Exception as exc:  # noqa: BLE001 - every failure goes back as an answer
            send(outgoing, {"ok": False, "error": str(exc) or type(exc).__name__})
            continue
        send(outgoing, {"ok": True, "result": result})


_CALLS = {"describe", "inventory", "export", "missing", "sizes", "apply", "move_alias"}


class SshPeer:
    """A project on another machine, reached by running `mlyard sync-agent` over ssh.

    The ssh command is `$MLYARD_SSH` (like git's GIT_SSH_COMMAND: options such as `-i KEY`
    or `-o ...` go there), else `ssh`; the other side runs `remote_command` (`mlyard`
    unless told otherwise), which must be on its PATH for a non-interactive shell.

    Every wait for the other side has an end: when it says nothing for
    `$MLYARD_SYNC_TIMEOUT` seconds (default SILENCE) while an answer or an object's
    bytes are due, the connection is closed and the sync stops with one line.
    """

    def __init__(self, location: str, host: str, port: int | None, path: str,
                 remote_command: str = "mlyard") -> None:
        self.location = location
        ssh = shlex.split(os.environ.get("MLYARD_SSH", "ssh"))
        remote = f"{remote_command} sync-agent {shlex.quote(path)}"
        command = [*ssh, "-o", "BatchMode=yes", *(["-p", str(port)] if port else []),
                   host, remote]
        self.silence = _silence()
        self._errors = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=self._errors)
        except OSError as exc:
            raise SyncRefused(f"{location}: cannot run {ssh[0]!r}: {exc}") from None
        self._waiting_since: float | None = None
        self._went_silent = False
        self._closed = threading.Event()
        threading.Thread(target=self._watch, name="mlyard-sync-watch", daemon=True).start()

    def _watch(self) -> None:
        """Close the connection when the other side has said nothing for too long."""
        while not self._closed.wait(1.0):
            since = self._waiting_since
            if since is not None and time.monotonic() - since > self.silence:
                self._went_silent = True
                self._process.kill()
                return

    def _silent_line(self) -> str:
        return (f"{self.location}: no answer for {self.silence:g}s; stopped "
                "(MLYARD_SYNC_TIMEOUT sets how long to wait)")

    def _guarded(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """An object's bytes, each read under the watch."""
        while True:
            self._waiting_since = time.monotonic()
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except SyncRefused:
                if self._went_silent:
                    raise SyncRefused(self._silent_line()) from None
                raise
            finally:
                self._waiting_since = None
            yield chunk

    def _call(self, call: str, payload_chunks: Iterable[bytes] = (), size: int | None = None,
              **args: Any) -> dict[str, Any]:
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        message: dict[str, Any] = {"call": call, "args": args}
        if size is not None:
            message["size"] = size
        try:
            send(process.stdin, message, payload_chunks)
            self._waiting_since = time.monotonic()
            answer = receive(process.stdout, self.location)
        except (BrokenPipeError, ConnectionResetError):
            answer = None
        except SyncRefused:  # half a line, cut off when it went quiet
            if self._went_silent:
                raise SyncRefused(self._silent_line()) from None
            raise
        finally:
            self._waiting_since = None
        if answer is None and self._went_silent:
            raise SyncRefused(self._silent_line())
        if answer is None:
            raise SyncRefused(f"{self.location}: the connection ended: {self._stderr()}")
        if not answer.get("ok"):
            raise SyncRefused(f"{self.location}: {answer.get('error')}")
        return answer

    def _stderr(self) -> str:
        """What ssh or the agent said last, once the connection has ended."""
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a connection that neither answers nor ends
            self._process.kill()
            self._process.wait()
        self._errors.seek(0)
        lines = self._errors.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"ssh exited with {self._process.returncode}"

    def describe(self) -> dict[str, Any]:
        found: dict[str, Any] = self._call("describe")["result"]
        if found.get("protocol") != PROTOCOL:
            raise SyncRefused(f"{self.location}: its mlyard speaks sync protocol "
                              f"{found.get('protocol')}, this one {PROTOCOL}; install the "
                              "same mlyard on both sides")
        return found

    def inventory(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("inventory")["result"]
        return result

    def export(self, run_ids: list[str], dataset_keys: list[list[Any]],
               model_run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        result: dict[str, list[dict[str, Any]]] = self._call(
            "export", run_ids=run_ids, dataset_keys=dataset_keys,
            model_run_ids=model_run_ids)["result"]
        return result

    def missing(self, hashes: list[str]) -> list[str]:
        return list(self._call("missing", hashes=hashes)["result"])

    def sizes(self, hashes: list[str]) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._call("sizes", hashes=hashes)["result"].items()}

    def read_object(self, digest: str) -> tuple[int, Iterator[bytes]]:
        answer = self._call("read_object", digest=digest)
        assert self._process.stdout is not None
        size = int(answer["size"])
        return size, self._guarded(payload(self._process.stdout, size, self.location))

    def write_object(self, digest: str, size: int, chunks: Iterable[bytes]) -> None:
        self._call("write_object", chunks, size=size, digest=digest)

    def apply(self, rows: dict[str, list[dict[str, Any]]], replace: list[str],
              origin: str, origin_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("apply", rows=rows, replace=replace,
                                            origin=origin, origin_id=origin_id)["result"]
        return result

    def move_alias(self, alias: str, run_id: str, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("move_alias", alias=alias, run_id=run_id,
                                            reason=reason)["result"]
        return result

    def close(self) -> None:
        self._closed.set()
        if self._process.stdin is not None:
            try:
                self._process.stdin.close()
            except OSError:  # ssh already gone: what it said is the error that counts
                pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._errors.close()
