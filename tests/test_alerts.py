"""Alerts that reach someone: real HTTP receivers on 127.0.0.1 (one that answers, one
that fails twice then succeeds, one that never answers), a real command, the real CLI
and a real daemon. Every attempt is recorded, and delivery never changes a command's
outcome."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlyard.core.workspace import open_workspace
from mlyard.storage import meta_store
from tests.conftest import mlyard, sample_project, train_json, wait_for
from tests.test_serve import Server, features_of, post, rows


class Receivers:
    """An HTTP server whose paths behave differently: `/ok` answers 200, `/flaky` 500
    twice and then 200, `/silent` never answers; `received` keeps every body by path."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.calls: dict[str, int] = {}
        self.release = threading.Event()
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  # http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls = receivers.calls[self.path] = receivers.calls.get(self.path, 0) + 1
                if self.path == "/silent":
                    receivers.release.wait(60)
                    return
                if self.path == "/flaky" and calls <= 2:
                    self.send_response(500)
                    self.end_headers()
                    return
                receivers.received.setdefault(self.path, []).append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    running = Receivers()
    yield running
    running.close()


def configure(project: Path, alerts: str) -> None:
    config = project / "mlyard.toml"
    config.write_text(config.read_text() + f"\n[alerts]\n{alerts}\n")


def recording_command(out: Path) -> str:
    """A command line that appends the alert it reads on stdin, and MLYARD_ALERT_TEXT."""
    code = ("import json, os, sys; alert = json.load(sys.stdin); "
            "alert['env_text'] = os.environ['MLYARD_ALERT_TEXT']; "
            f"open({str(out)!r}, 'a').write(json.dumps(alert) + '\\n')")
    return shlex.join([sys.executable, "-c", code])


def refuse_a_file(project: Path, good_csv: str, name: str = "bad.csv") -> None:
    (project / "data" / name).write_text(good_csv.replace("month-to-month", "weekly"))
    result = mlyard("ingest", f"data/{name}")
    assert result.exit_code == 1  # refused, whatever the alerts did
    assert "weekly" in result.stderr


def listed_alerts() -> list[dict[str, Any]]:
    result = mlyard("alerts", "--json")
    assert result.exit_code == 0, result.stderr
    alerts: list[dict[str, Any]] = json.loads(result.stdout)
    return alerts


def attempts(project: Path) -> list[tuple[str, int, str]]:
    """(receiver, attempt, outcome) of every delivery attempt, in order."""
    with open_workspace(project).catalog.session() as con:
        return [tuple(row) for row in con.execute(  # type: ignore[misc]
            "SELECT receiver, attempt, outcome FROM alert_deliveries ORDER BY ts, attempt"
        ).fetchall()]


def test_a_refused_file_reaches_a_webhook_and_a_command(
        churn_project: Path, good_csv: str, receivers: Receivers, tmp_path: Path) -> None:
    out = tmp_path / "command.jsonl"
    configure(churn_project, f'webhooks = ["{receivers.url}/ok"]\n'
                             f"command = {json.dumps(recording_command(out))}")
    refuse_a_file(churn_project, good_csv)
    [posted] = receivers.received["/ok"]
    assert posted["kind"] == "refused" and posted["severity"] == "error"
    assert "bad.csv" in posted["text"] and "weekly" in posted["text"]
    assert posted["text"].startswith("mlyard churn: file refused")
    [ran] = [json.loads(line) for line in out.read_text().splitlines()]
    assert ran["event_id"] == posted["event_id"] and ran["env_text"] == posted["text"]
    [alert] = listed_alerts()
    assert alert["delivery"] == "delivered"
    assert "webhook 1 (127.0.0.1" in alert["delivery_detail"]
    assert "command python" in alert["delivery_detail"]


def test_a_receiver_that_fails_twice_gets_the_alert_on_the_third_attempt(
        churn_project: Path, good_csv: str, receivers: Receivers) -> None:
    configure(churn_project, f'webhooks = ["{receivers.url}/flaky"]\n'
                             'retries = 3\nbackoff = "0.2s"\nwait = "60s"')
    refuse_a_file(churn_project, good_csv)
    assert receivers.calls["/flaky"] == 3 and len(receivers.received["/flaky"]) == 1
    assert [(n, outcome) for _, n, outcome in attempts(churn_project)] == [
        (1, "failed"), (2, "failed"), (3, "delivered")]
    assert listed_alerts()[0]["delivery"] == "delivered"


def test_a_receiver_that_never_answers_holds_up_nothing_else(
        churn_project: Path, good_csv: str, receivers: Receivers) -> None:
    configure(churn_project, f'webhooks = ["{receivers.url}/silent", "{receivers.url}/ok"]\n'
                             'timeout = "1s"\nretries = 1\nbackoff = "0.1s"\nwait = "30s"')
    refuse_a_file(churn_project, good_csv)
    # The one that answers got it once: retries go only to the receiver that failed.
    assert len(receivers.received["/ok"]) == 1
    recorded = attempts(churn_project)
    assert [a for a in recorded if a[0].startswith("webhook 1")] == [
        ("webhook 1 (" + receivers.url.removeprefix("http://") + ")", 1, "failed"),
        ("webhook 1 (" + receivers.url.removeprefix("http://") + ")", 2, "gave up")]
    [alert] = listed_alerts()
    assert alert["delivery"] == "gave up" and "no answer within 1s" in alert["delivery_detail"]


def test_a_cooldown_keeps_a_flapping_kind_from_flooding(
        churn_project: Path, good_csv: str, receivers: Receivers) -> None:
    configure(churn_project, f'webhooks = ["{receivers.url}/ok"]\ncooldown = "1h"')
    refuse_a_file(churn_project, good_csv, "bad1.csv")
    refuse_a_file(churn_project, good_csv, "bad2.csv")
    assert len(receivers.received["/ok"]) == 1
    second, first = listed_alerts()
    assert first["delivery"] == "delivered" and second["delivery"] == "suppressed"
    assert "cooldown" in second["delivery_detail"]


def test_only_the_kinds_and_severities_asked_for_are_sent_and_old_ones_never(
        churn_project: Path, receivers: Receivers) -> None:
    configure(churn_project, f'webhooks = ["{receivers.url}/ok"]\ncooldown = "1s"\n'
              'kinds = ["drift", "job"]\ndrift_severity = "severe"')
    ws = open_workspace(churn_project)
    now = time.time()
    with ws.catalog.session() as con:
        meta_store.add_events(con, [
            ("alert.job", "1", None, {"severity": "error", "error": "two days old"}),
            ("alert.drift", "churn/1", None, {"severity": "moderate", "current": "churn:v2"}),
            ("alert.quality", "churn:v2", None, {"severity": "warning", "findings": ["x"]}),
            ("alert.drift", "churn/1", None, {"severity": "severe", "current": "churn:v3",
                                              "drifted": ["age", "region"]}),
        ], [now - 2 * 86400, now, now, now])
    assert mlyard("alerts").exit_code == 0  # a one-off command delivers on its way out
    [posted] = receivers.received["/ok"]
    assert posted["kind"] == "drift" and posted["detail"]["current"] == "churn:v3"
    assert posted["text"] == ("mlyard churn: severe drift: churn:v3 against model churn/1 "
                              "(age, region)")
    states = {a["event_id"]: a["delivery"] for a in listed_alerts()}
    assert sorted(states.values()) == ["delivered", "not sent", "not sent", "not sent"]


def test_alerts_test_reports_each_receiver_and_fails_when_one_does(
        churn_project: Path, receivers: Receivers, tmp_path: Path) -> None:
    assert mlyard("alerts", "test").exit_code == 2  # nothing configured: says what to add
    out = tmp_path / "command.jsonl"
    configure(churn_project, f'webhooks = ["{receivers.url}/ok"]\n'
                             f"command = {json.dumps(recording_command(out))}")
    result = mlyard("alerts", "test")
    assert result.exit_code == 0, result.stderr
    assert "webhook 1 (127.0.0.1" in result.stdout and "command python" in result.stdout
    assert receivers.received["/ok"][0]["kind"] == "test" and out.exists()
    # A test alert is sent once, by the test: the next command does not send it again.
    assert mlyard("alerts").exit_code == 0 and len(receivers.received["/ok"]) == 1
    config = churn_project / "mlyard.toml"
    config.write_text(config.read_text().replace(json.dumps(recording_command(out)),
                                                 json.dumps("false")))
    failed = mlyard("alerts", "test")
    assert failed.exit_code == 1 and "command false: gave up (exit status 1)" in failed.stderr


def test_a_failed_gate_on_automated_promotion_alerts_once_naming_the_gate(
        churn_project: Path, receivers: Receivers, good_csv: str) -> None:
    (churn_project / "data" / "first.csv").write_text(good_csv)
    config = churn_project / "mlyard.toml"
    config.write_text(config.read_text().replace("min_auc = 0.7", "min_auc = 0.999"))
    configure(churn_project, f'webhooks = ["{receivers.url}/ok"]')
    result = mlyard("pipeline", "run", "promote")
    assert result.exit_code == 1
    [posted] = receivers.received["/ok"]  # the gate, not also "job failed"
    assert posted["kind"] == "gate" and "gate min_auc failed" in posted["text"]


@pytest.fixture
def daemon(churn_project: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (churn_project / "daemon.stderr").open("ab")
        started.append(subprocess.Popen([sys.executable, "-m", "mlyard", "daemon"],
                                        cwd=churn_project, stdout=log, stderr=log))
        return started[-1]

    yield start
    for process in started:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def test_the_daemon_delivers_what_one_off_commands_raise_and_failed_jobs(
        churn_project: Path, receivers: Receivers, good_csv: str,
        daemon: Callable[[], subprocess.Popen[bytes]]) -> None:
    configure(churn_project, f'webhooks = ["{receivers.url}/ok"]\ncooldown = "1s"\n'
                             'wait = "0.1s"')
    running = daemon()
    wait_for(lambda: "daemon" in mlyard("status").stdout and
             open_workspace(churn_project).catalog.path.exists(), what="the daemon")
    wait_for(lambda: _delivery_is_held(churn_project), what="the daemon's courier")
    # Outside the watched folder, so only this command sees it.
    (churn_project / "bad.csv").write_text(good_csv.replace("month-to-month", "weekly"))
    assert mlyard("ingest", "bad.csv").exit_code == 1
    wait_for(lambda: receivers.received.get("/ok"), what="the daemon to deliver")
    assert receivers.received["/ok"][0]["kind"] == "refused"
    # Training with no data fails: a failed job reaches the receiver too.
    assert mlyard("pipeline", "run", "train", "--no-ingest").exit_code == 2  # no data yet
    wait_for(lambda: len(receivers.received["/ok"]) == 2, what="the job alert")
    assert receivers.received["/ok"][1]["kind"] == "job"
    assert running.poll() is None


def _delivery_is_held(project: Path) -> bool:
    """Whether some process (the daemon) holds the alerts lock."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(open_workspace(project).root / "alerts.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def test_a_degraded_server_raises_one_alert(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    project = sample_project(tmp_path, "churn")
    monkeypatch.chdir(project)
    assert mlyard("ingest", "data").exit_code == 0
    train_json()
    assert mlyard("models", "promote", "latest").exit_code == 0
    ws = open_workspace(project)
    ws.catalog.predictions_dir.mkdir(parents=True, exist_ok=True)
    ws.catalog.predictions_dir.rmdir()
    ws.catalog.predictions_dir.write_text("in the way")  # the log cannot be written
    records = features_of(rows(project, 1), project).to_dicts()
    with Server(project, "champion") as running:
        for _ in range(3):
            assert post(running, {"dataframe_records": records}).status_code == 200
        wait_for(lambda: httpx.get(f"{running.url}/health").json()["status"] == "degraded")
        server_alerts = lambda: [a for a in listed_alerts()  # noqa: E731
                                 if a["kind"] == "alert.server"]
        [alert] = wait_for(server_alerts, what="the degraded-server alert")
        assert alert["subject"] == "champion" and "Error" in alert["reason"]
        ws.catalog.predictions_dir.unlink()
        wait_for(lambda: httpx.get(f"{running.url}/health").json()["status"] == "ok")
    assert len(server_alerts()) == 1


def test_secrets_in_a_webhook_url_are_never_shown(churn_project: Path, receivers: Receivers,
                                                  good_csv: str) -> None:
    """user:password, the path and a token in the query are the receiver's secrets: no
    output, listing or error shows them (the config file is the one place they are)."""
    port = receivers.url.rsplit(":", 1)[1]
    configure(churn_project, "webhooks = ["
                             f'"http://alice:hunter2@127.0.0.1:{port}/flaky?token=s3cr3t", '
                             f'"http://bob:pa55word@127.0.0.1:1/hook/XYZSECRET"]')
    shown = [mlyard("alerts", "test"), mlyard("alerts"), mlyard("alerts", "--json")]
    refuse_a_file(churn_project, good_csv)
    shown += [mlyard("alerts", "--json"), mlyard("alerts")]
    text = "\n".join(r.stdout + r.stderr for r in shown)
    for secret in ("hunter2", "alice", "s3cr3t", "pa55word", "XYZSECRET", "token="):
        assert secret not in text, secret
    assert "webhook 1 (127.0.0.1:" in text and "webhook 2 (127.0.0.1:1)" in text
    assert all(secret not in row[2] for row in attempts(churn_project)
               for secret in ("hunter2", "pa55word", "XYZSECRET", "s3cr3t"))
