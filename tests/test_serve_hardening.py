"""The scoring server under hostile or heavy clients: a big request does not hold up small
ones, slow senders are cut off, foreign Host headers and bad tokens are refused, and
malformed bodies get a 4xx, never a 500."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import httpx
import pytest

from mlyard.core.automation import promotion
from mlyard.core.models import registry
from mlyard.core.serving.server import HeaderTimeoutHttp, create_app
from mlyard.core.workspace import open_workspace
from mlyard.storage import prediction_files
from tests.conftest import wait_for
from tests.test_serve import Server, features_of, rows, trained  # noqa: F401  (a fixture)


def score(url: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/invocations", json=body, headers=headers, timeout=120)


def test_small_requests_are_answered_while_a_large_one_is_scored(trained: Path,  # noqa: F811
                                                                 ) -> None:
    big = {"instances": features_of(rows(trained, 7000), trained).to_dicts() * 3}
    small = {"instances": features_of(rows(trained, 1), trained).to_dicts()}
    finished: list[str] = []
    with Server(trained, "champion") as running:
        def send_big() -> None:
            assert score(running.url, big).status_code == 200
            finished.append("big")

        sender = threading.Thread(target=send_big)
        sender.start()
        with httpx.Client(timeout=120) as client:
            while sender.is_alive():
                answer = client.post(f"{running.url}/invocations", json=small)
                assert answer.status_code == 200
                finished.append("small")
        sender.join()
    # Small requests kept being answered while the big one was scored, not after it.
    assert finished.index("big") >= 3, finished[:10]


def test_a_slow_sender_is_cut_off_with_408(trained: Path) -> None:  # noqa: F811
    with Server(trained, "champion", body_timeout=0.5) as running:
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                         b'{"instances": [')  # and then nothing more
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]


def test_a_server_stopping_mid_body_is_a_cancel_not_a_408(trained: Path) -> None:  # noqa: F811
    """The body's deadline cancels the request's own task; a cancel from elsewhere (the
    server stopping) must stay a cancel, and the deadline must still answer 408."""
    app = create_app(open_workspace(trained), "champion", body_timeout=0.3,
                     log_predictions=False)
    scope = {"type": "http", "method": "POST", "path": "/invocations", "query_string": b"",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]}
    sent: list[dict[str, object]] = []

    async def silent() -> dict[str, object]:  # a client that sent headers, then nothing
        await asyncio.Event().wait()
        return {}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def stopped_meanwhile() -> None:
        request = asyncio.create_task(app(scope, silent, send))
        await asyncio.sleep(0.05)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request

    asyncio.run(stopped_meanwhile())
    assert sent == []
    asyncio.run(app(scope, silent, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408


def test_a_foreign_host_header_is_refused(trained: Path) -> None:  # noqa: F811
    body = {"instances": features_of(rows(trained, 1), trained).to_dicts()}
    with Server(trained, "champion") as running:
        refused = score(running.url, body, host="attacker.example:80")
        assert refused.status_code == 400
        assert "'attacker.example:80'" in refused.json()["message"]
        assert httpx.get(f"{running.url}/metadata",
                         headers={"host": "attacker.example"}).status_code == 400
        for name in ("localhost", "localhost:5005", "[::1]:5005", "127.0.0.1"):
            assert score(running.url, body, host=name).status_code == 200, name
    with Server(trained, "champion", allowed_hosts=["models.internal", "*.corp.example"]
                ) as running:
        assert score(running.url, body, host="models.internal").status_code == 200
        assert score(running.url, body, host="a.corp.example:443").status_code == 200
        assert score(running.url, body, host="corp.example.evil").status_code == 400


def test_a_client_that_leaves_mid_body_is_not_scored_and_others_are(
        trained: Path) -> None:  # noqa: F811
    body = {"instances": features_of(rows(trained, 1), trained).to_dicts()}
    with Server(trained, "champion") as running:
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                         b'{"instances": [')
        before = prediction_files.count_rows(running.ws.catalog.predictions_dir, "churn")
        assert score(running.url, body).status_code == 200
        wait_for(lambda: prediction_files.count_rows(running.ws.catalog.predictions_dir,
                                                     "churn") > before)
    # Stopped: the log is flushed; only the whole request is in it.
    assert prediction_files.count_rows(running.ws.catalog.predictions_dir, "churn") == \
        before + 1


@pytest.mark.parametrize("header, status", [
    ("Bearer s3cret", 200), ("bearer s3cret", 200), ("BEARER  s3cret", 200),
    ("Bearer s3cre", 401), ("Bearer s3cret0", 401), ("Basic s3cret", 401), ("s3cret", 401),
])
def test_the_bearer_scheme_is_case_insensitive_and_the_token_exact(
        trained: Path, header: str, status: int) -> None:  # noqa: F811
    body = {"instances": features_of(rows(trained, 1), trained).to_dicts()}
    with Server(trained, "champion", token="s3cret") as running:
        assert score(running.url, body, authorization=header).status_code == status


def test_deep_or_odd_bodies_get_a_4xx_never_a_5xx(trained: Path) -> None:  # noqa: F811
    feature = features_of(rows(trained, 1), trained).to_dicts()[0]
    name = next(iter(feature))
    nested = "[" * 990 + "]" * 990
    bodies = [
        '{"instances": [{"%s": %s}]}' % (name, nested),
        '{"instances": %s}' % nested,
        "[" * 5000 + "]" * 5000,
        '{"instances": [' + ",".join(["{}"] * 10) + "]}",
        '{"dataframe_split": {"columns": 7}}',
    ]
    with Server(trained, "champion") as running:
        for body in bodies:
            answer = httpx.post(f"{running.url}/invocations", content=body, timeout=60,
                                headers={"content-type": "application/json"})
            assert 400 <= answer.status_code < 500, (body[:40], answer.text[:200])
            assert answer.json()["error_code"]


def test_new_requests_get_503_when_the_scoring_queue_is_full(trained: Path) -> None:  # noqa: F811
    body = {"instances": features_of(rows(trained, 1), trained).to_dicts()}
    with Server(trained, "champion", max_queued=0) as running:
        answer = score(running.url, body)
    assert answer.status_code == 503 and answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"


def test_health_is_ok_while_the_log_writes(trained: Path) -> None:  # noqa: F811
    with Server(trained, "champion") as running:
        health = wait_for(lambda: httpx.get(f"{running.url}/health").json())
    assert health["status"] == "ok" and health["prediction_log"]["dropped"] == 0


def test_a_model_that_would_crash_the_server_is_refused_and_the_old_one_keeps_serving(
        trained: Path) -> None:  # noqa: F811
    ws = open_workspace(trained)
    newer = registry.resolve(ws, "2")
    text = ws.objects.read_bytes(newer.model_hash)
    broken = ws.objects.put_bytes(text[: len(text) // 2])  # LightGBM aborts on this
    body = {"instances": features_of(rows(trained, 2), trained).to_dicts()}
    with Server(trained, "champion") as running:
        try:
            with ws.catalog.session() as con:  # a version whose model, hash and all, is bad
                con.execute("UPDATE model_versions SET model_hash = ? WHERE version = 2",
                            [broken])
            promotion.promote(ws, "2", reason="a broken model", force=True)
            wait_for(lambda: 2 in running.app.state.holder.refused,
                     what="the server tried the new model in a child and refused it")
            answer = score(running.url, body)
            assert answer.status_code == 200
            assert answer.headers["x-mlyard-model-version"] == "1"
        finally:
            with ws.catalog.session() as con:
                con.execute("UPDATE model_versions SET model_hash = ? WHERE version = 2",
                            [newer.model_hash])
            promotion.promote(ws, "1", reason="back", force=True)


def test_a_client_that_trickles_its_headers_is_disconnected(
        trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(HeaderTimeoutHttp, "header_timeout", 0.5)
    with Server(trained, "champion") as running:
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            assert sock.recv(4096) == b""  # closed by the server, not by our timeout
        # A well-behaved client on a kept-alive connection is not cut off between requests.
        body = {"instances": features_of(rows(trained, 1), trained).to_dicts()}
        with httpx.Client(timeout=60) as client:
            for _ in range(3):
                assert client.post(f"{running.url}/invocations", json=body).status_code == 200


def test_connections_a_worker_accepts_send_at_once_without_nagle() -> None:
    """With `--workers`, uvicorn hands each worker a socket rebuilt from its descriptor,
    for which asyncio leaves Nagle's algorithm on: a response written in two pieces then
    waits ~40 ms for the client's delayed ACK. The protocol turns it off itself."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    accepted: list[socket.socket] = []

    async def scenario() -> None:
        config = uvicorn.Config(app=lambda scope, receive, send: None, http=HeaderTimeoutHttp)
        config.load()
        state = ServerState()
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        # As uvicorn's workers get it: the same descriptor, without the protocol number.
        shared = socket.fromfd(listening.fileno(), socket.AF_INET, socket.SOCK_STREAM)

        class Seen(HeaderTimeoutHttp):
            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                accepted.append(transport.get_extra_info("socket"))

        server = await asyncio.get_running_loop().create_server(
            lambda: Seen(config, state, {}), sock=shared)
        reader, writer = await asyncio.open_connection(*listening.getsockname())
        deadline = asyncio.get_running_loop().time() + 60
        while not accepted and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert accepted, "the server never accepted the connection"
        assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        writer.close()
        server.close()
        await server.wait_closed()
        listening.close()

    asyncio.run(scenario())
