"""`mlyard sync`: a box's runs, models and data come home by content, a second sync moves
nothing, a run still training is brought up to date, aliases move only through the
gates, a conflict is refused by name, and a sync killed midway leaves both sides whole."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlyard import start_run
from mlyard.core.data import versions
from mlyard.core.models.loading import load_model
from mlyard.core.sync import syncer
from mlyard.core.sync.peer import LocalPeer, SyncRefused
from mlyard.core.tracking import run_queries
from mlyard.core.tracking.provenance import SYNCED_TAG
from mlyard.core.workspace import open_workspace
from tests.conftest import SAMPLE_CHURN, mlyard, sample_project, train_json, wait_for

MLYARD = [sys.executable, "-m", "mlyard"]


def empty_project(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(SAMPLE_CHURN / "mlyard.toml", folder / "mlyard.toml")
    return folder


def sync_json(*args: str) -> dict[str, Any]:
    result = mlyard("sync", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def run_ids() -> list[str]:
    result = mlyard("runs", "list", "--json")
    assert result.exit_code == 0, result.stderr
    return [run["run_id"] for run in json.loads(result.stdout)]


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, Any]]:
    """A project that has ingested two batches and trained once (the remote box)."""
    project = sample_project(tmp_path / "box", "churn")
    monkeypatch.chdir(project)
    assert mlyard("ingest", "data").exit_code == 0
    return project, train_json()


@pytest.fixture
def laptop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           box: tuple[Path, dict[str, Any]]) -> Path:
    """An empty project with the same mlyard.toml, as cwd."""
    project = empty_project(tmp_path / "laptop" / "churn")
    monkeypatch.chdir(project)
    return project


def test_pull_brings_runs_models_and_data_and_a_second_sync_moves_nothing(
        box: tuple[Path, dict[str, Any]], laptop: Path) -> None:
    folder, trained = box
    result = sync_json(str(folder))
    assert result["new_runs"] == [trained["run_id"]]
    assert result["model_versions"] == [["churn/1", "churn/1"]]
    assert result["dataset_versions"] == ["churn:v1", "churn:v2"]
    assert result["objects"] >= 6 and result["bytes"] > 10_000

    ws, theirs = open_workspace(), open_workspace(folder)
    here = run_queries.show_run(ws, trained["run_id"])
    there = run_queries.show_run(theirs, trained["run_id"])
    assert here.run.metrics == there.run.metrics and here.run.status == "finished"
    assert here.metric_points == there.metric_points and here.metric_points["valid.auc"] > 0
    assert here.run.params == there.run.params
    assert here.run.tags[SYNCED_TAG] == str(folder)
    assert [line.line for line in run_queries.log_tail(ws, trained["run_id"], 50)] == \
        [line.line for line in run_queries.log_tail(theirs, trained["run_id"], 50)]
    model = load_model(ws, "churn/1")
    assert model.version.model_hash == trained["model_blake3"]
    frame = versions.load_versions(ws)
    assert frame.height == 7200
    assert np.array_equal(model.predict(frame), load_model(theirs, "churn/1").predict(frame))
    assert mlyard("doctor").exit_code == 0
    reproduced = mlyard("reproduce", trained["run_id"], "--json")
    assert reproduced.exit_code == 0 and json.loads(reproduced.stdout)["identical"]

    again = sync_json(str(folder))
    assert again["bytes"] == 0 and again["objects"] == 0
    assert not (again["new_runs"] or again["updated_runs"] or again["model_versions"]
                or again["dataset_versions"])
    # the reproduction is this side's own run: a push would send it, and only it
    assert len(sync_json(str(folder), "--push", "--dry-run")["new_runs"]) == 1


def test_aliases_move_only_when_asked_and_only_through_the_gates(
        box: tuple[Path, dict[str, Any]], laptop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = box
    monkeypatch.chdir(folder)
    assert mlyard("models", "promote", "latest").exit_code == 0
    monkeypatch.chdir(laptop)
    runs_only = mlyard("sync", str(folder), "--runs", "--aliases")
    assert runs_only.exit_code == 1
    assert "alias champion -> (no version): not moved: run " in runs_only.stdout
    assert "is not a model version here (sync --models)" in runs_only.stdout
    sync_json(str(folder))
    assert "champion" not in mlyard("models", "list").stdout

    strict = (laptop / "mlyard.toml").read_text().replace("min_auc = 0.7", "min_auc = 0.9999")
    (laptop / "mlyard.toml").write_text(strict)
    refused = mlyard("sync", str(folder), "--aliases")
    assert refused.exit_code == 1
    assert "alias champion -> churn/1: not moved: gate min_auc failed" in refused.stdout
    as_json = mlyard("sync", str(folder), "--aliases", "--json")
    assert as_json.exit_code == 1  # a script sees it too
    assert json.loads(as_json.stdout)["aliases"][0]["moved"] is False
    assert "champion" not in mlyard("models", "list").stdout

    (laptop / "mlyard.toml").write_text(strict.replace("min_auc = 0.9999", "min_auc = 0.7"))
    moved = sync_json(str(folder), "--aliases")
    assert moved["aliases"] == [{"alias": "champion", "version": "churn/1", "moved": True,
                                 "why": []}]
    history = mlyard("models", "history", "--json")
    assert history.exit_code == 0 and f"mlyard sync from {folder}" in history.stdout
    assert sync_json(str(folder), "--aliases")["aliases"] == []  # already there


def test_a_folder_remote_is_found_whatever_mlyard_workspace_says(
        box: tuple[Path, dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """MLYARD_WORKSPACE names this project's workspace; it once made every folder remote
    look like this project's own, and every folder sync refused."""
    folder, trained = box
    here = empty_project(tmp_path / "elsewhere" / "churn")
    monkeypatch.chdir(here)
    monkeypatch.setenv("MLYARD_WORKSPACE", str(tmp_path / "kept-apart"))
    result = sync_json(str(folder))
    assert result["new_runs"] == [trained["run_id"]]
    assert (tmp_path / "kept-apart" / "catalog.duckdb").exists()  # here's, where it said
    assert not (here / ".mlyard").exists()


def test_a_second_sync_into_a_project_while_one_runs_is_refused_with_one_line(
        box: tuple[Path, dict[str, Any]], laptop: Path) -> None:
    """Two syncs at once once ended in "is already here and is not a copy": the second
    saw the first one's runs arrive between its look and its write."""
    from filelock import FileLock

    folder, trained = box
    running = FileLock(str(open_workspace(laptop).root / "sync.lock"))
    with running:  # what the first sync holds for as long as it runs
        second = mlyard("sync", str(folder))
    assert second.exit_code == 1
    assert second.stderr.strip() == (f"mlyard: another `mlyard sync` into {laptop} is "
                                     "running; run this one again when it ends")
    assert sync_json(str(folder))["new_runs"] == [trained["run_id"]]  # and then it does


def test_a_push_over_ssh_into_a_box_already_receiving_one_is_refused_by_its_agent(
        box: tuple[Path, dict[str, Any]], laptop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The box's own agent claims the box for a push: a stand-in for ssh runs the remote
    command here, as sshd would run it there."""
    from filelock import FileLock

    folder, _ = box
    with start_run(name="mine"):  # a run of the laptop's own, to push
        pass
    [mine] = run_ids()
    local_shell = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[-1], shell=True))"
    monkeypatch.setenv("MLYARD_SSH", shlex.join([sys.executable, "-c", local_shell]))
    agent = str(Path(sys.executable).parent / "mlyard")
    with FileLock(str(open_workspace(folder).root / "sync.lock")):  # a push is running
        refused = mlyard("sync", f"ssh://box{folder}", "--push", "--remote-mlyard", agent)
    assert refused.exit_code == 1
    assert "another `mlyard sync` into" in refused.stderr and "is running" in refused.stderr
    pushed = mlyard("sync", f"ssh://box{folder}", "--push", "--remote-mlyard", agent, "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert json.loads(pushed.stdout)["new_runs"] == [mine]


def test_push_sends_this_projects_run_and_it_keeps_its_id(
        box: tuple[Path, dict[str, Any]], laptop: Path) -> None:
    folder, trained = box
    sync_json(str(folder), "--datasets")
    mine = train_json("--param", "num_leaves=7")
    pushed = sync_json(str(folder), "--push")
    assert pushed["new_runs"] == [mine["run_id"]]
    assert pushed["model_versions"] == [["churn/1", "churn/2"]]
    assert pushed["dataset_versions"] == []  # the box had them
    there = run_queries.show_run(open_workspace(folder), mine["run_id"])
    assert there.run.tags[SYNCED_TAG] == str(laptop)
    assert there.run.metrics["holdout.auc"] == mine["metrics"]["auc"]
    assert sync_json(str(folder), "--push")["bytes"] == 0


def test_the_same_run_with_different_content_is_refused_by_name(
        box: tuple[Path, dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder, trained = box
    copy = tmp_path / "copy" / "churn"
    shutil.copytree(folder, copy)  # the same run ids, and neither side a synced copy
    monkeypatch.chdir(folder)
    assert mlyard("runs", "tag", trained["run_id"], "note=changed on the box").exit_code == 0
    monkeypatch.chdir(copy)
    before = open_workspace().catalog.path.read_bytes()
    refused = mlyard("sync", str(folder))
    assert refused.exit_code == 1
    assert f"run {trained['run_id']} is on both sides with different content" in refused.stderr
    assert open_workspace().catalog.path.read_bytes() == before


RUNNING = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import mlyard
    run = mlyard.start_run(name="long", params={"lr": 0.1}, workspace=Path(sys.argv[1]))
    for step in range(5):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.flush()
    Path(sys.argv[2]).write_text(run.run_id)
    while not Path(sys.argv[3]).exists():
        time.sleep(0.02)
    for step in range(5, 20):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.end()
""")


def test_a_run_still_training_comes_over_running_and_the_next_sync_finishes_it(
        box: tuple[Path, dict[str, Any]], laptop: Path, tmp_path: Path) -> None:
    folder, _ = box
    started, go = tmp_path / "started", tmp_path / "go"
    script = tmp_path / "long_run.py"
    script.write_text(RUNNING)
    process = subprocess.Popen([sys.executable, str(script), str(folder), str(started),
                                str(go)])
    try:
        wait_for(started.exists, what="the run to start on the box", timeout=120)
        run_id = started.read_text()
        first = sync_json(str(folder))
        assert run_id in first["new_runs"]
        live = run_queries.show_run(open_workspace(), run_id)
        assert live.run.status == "running" and live.metric_points["loss"] == 5
        go.touch()
        assert process.wait(timeout=120) == 0
    finally:
        process.kill()
    second = sync_json(str(folder))
    assert second["updated_runs"] == [run_id] and second["new_runs"] == []
    done = run_queries.show_run(open_workspace(), run_id)
    assert done.run.status == "finished" and done.metric_points["loss"] == 20
    assert done.run.tags[SYNCED_TAG] == str(folder)


def test_syncing_while_the_box_trains_never_blocks_it_and_ends_with_its_run(
        box: tuple[Path, dict[str, Any]], laptop: Path) -> None:
    folder, _ = box
    training = subprocess.Popen([*MLYARD, "train", "--json", "--param", "num_leaves=63"],
                                cwd=folder, stdout=subprocess.PIPE, text=True)
    syncs = 0
    while training.poll() is None or syncs == 0:
        sync_json(str(folder), "--runs")
        syncs += 1
    output, _ = training.communicate(timeout=120)
    assert training.returncode == 0
    trained = json.loads(output)
    final = sync_json(str(folder))
    assert final["model_versions"] == [["churn/1", "churn/1"], ["churn/2", "churn/2"]]
    here = run_queries.show_run(open_workspace(), trained["run_id"])
    there = run_queries.show_run(open_workspace(folder), trained["run_id"])
    assert here.run.status == "finished"
    assert here.run.metrics["holdout.auc"] == trained["metrics"]["auc"]
    assert here.metric_points == there.metric_points  # each point once, however many syncs


def test_a_sync_killed_midway_leaves_both_sides_whole_and_the_next_completes_it(
        box: tuple[Path, dict[str, Any]], laptop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = box
    with start_run(name="big", workspace=open_workspace(folder)) as run:
        run.log_bytes("weights.bin", os.urandom(300 * 2**20))
    sync = subprocess.Popen([*MLYARD, "sync", "-q", str(folder)], cwd=laptop)
    scratch = laptop / ".mlyard" / "objects" / "tmp"
    wait_for(lambda: any(p.stat().st_size > 2**20 for p in scratch.glob("*"))
             if scratch.exists() else False, what="the big object to be on its way",
             timeout=120)
    sync.send_signal(signal.SIGKILL)
    sync.wait(timeout=60)
    assert run_ids() == []
    assert mlyard("doctor").exit_code == 0
    finished = sync_json(str(folder))
    assert len(finished["new_runs"]) == 2 and run.run_id in finished["new_runs"]
    assert mlyard("doctor").exit_code == 0
    assert sync_json(str(folder))["bytes"] == 0


def test_bad_remotes_get_one_line_naming_them(
        box: tuple[Path, dict[str, Any]], laptop: Path, tmp_path: Path) -> None:
    folder, _ = box
    for remote, code, says in [
            (str(tmp_path / "nowhere"), 2, "no such folder"),
            ("ftp://box/churn", 2, "expected a project folder or ssh://host/path"),
            ("ssh://box", 2, "expected ssh://[user@]host[:port]/path/to/project"),
            ("ssh://-oProxyCommand=touch%20x/churn", 2, "a host or user cannot start with '-'"),
            ("ssh://-oProxyCommand=x@box/churn", 2, "a host or user cannot start with '-'"),
            (str(laptop), 2, "is this project's own workspace")]:
        result = mlyard("sync", remote)
        assert result.exit_code == code, (remote, result.stderr)
        assert says in result.stderr and result.stderr.count("\n") == 1
    other = empty_project(tmp_path / "other")
    (other / "mlyard.toml").write_text((other / "mlyard.toml").read_text().replace(
        'target = "churned"', 'target = "tenure_months"'))
    result = mlyard("sync", str(other))
    assert result.exit_code == 1 and "predicts 'tenure_months'" in result.stderr
    assert sync_json(str(folder), "--dry-run")["objects"] > 0
    assert run_ids() == []


def test_a_folder_without_a_config_is_told_the_exact_command_that_brings_it(
        box: tuple[Path, dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder, trained = box
    bare = tmp_path / "bare"
    bare.mkdir()
    monkeypatch.chdir(bare)
    result = mlyard("sync", str(folder))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    command = result.stderr.split("`")[1]
    assert command == f"cp {folder / 'mlyard.toml'} ."
    assert list(bare.iterdir()) == []  # nothing written: a remote's config is not trusted
    subprocess.run(command, shell=True, cwd=bare, check=True)  # the user does as told
    assert sync_json(str(folder))["new_runs"] == [trained["run_id"]]
    for remote, copy in [
            ("ssh://box/~/churn", "scp 'box:~/churn/mlyard.toml' ."),
            ("ssh://me@box:2222/srv/churn/", "scp -P 2222 me@box:/srv/churn/mlyard.toml ."),
            ("ssh://box/srv/my projects/churn", "scp 'box:/srv/my projects/churn/mlyard.toml' .")]:
        (bare / "mlyard.toml").unlink(missing_ok=True)
        told = mlyard("sync", remote)
        assert told.exit_code == 2 and f"`{copy}`" in told.stderr, told.stderr


def test_ssh_to_nothing_listening_says_what_ssh_said(laptop: Path) -> None:
    result = mlyard("sync", "ssh://127.0.0.1:1/srv/churn")
    assert result.exit_code == 1
    assert "ssh://127.0.0.1:1/srv/churn: the connection ended" in result.stderr


@pytest.mark.parametrize("says", ["nothing", "half an answer"])
def test_an_agent_that_connects_and_then_goes_quiet_is_cut_off_with_one_line(
        laptop: Path, monkeypatch: pytest.MonkeyPatch, says: str) -> None:
    """An ssh that connects and then says nothing (or starts an answer and stops) once
    hung `mlyard sync` forever; now the wait ends after MLYARD_SYNC_TIMEOUT seconds."""
    quiet = "import sys, time; " + (
        "sys.stdout.write('{\"ok\": tr'); sys.stdout.flush(); " if says != "nothing" else ""
    ) + "time.sleep(600)"
    monkeypatch.setenv("MLYARD_SSH", shlex.join([sys.executable, "-c", quiet]))
    monkeypatch.setenv("MLYARD_SYNC_TIMEOUT", "2")
    started = time.monotonic()
    result = mlyard("sync", "ssh://box/srv/churn")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("mlyard: ssh://box/srv/churn: no answer for 2s; stopped "
                                     "(MLYARD_SYNC_TIMEOUT sets how long to wait)")
    assert time.monotonic() - started < 60  # far from forever, generous for a busy box


SSHD = Path("/usr/sbin/sshd")


@pytest.fixture
def sshd(tmp_path: Path) -> Any:
    """A real sshd on an ephemeral port of 127.0.0.1 that lets this user in with a key
    made for the test; yields the MLYARD_SSH command and the port."""
    if not SSHD.exists():
        if os.environ.get("MLYARD_REQUIRE_SSHD"):
            pytest.fail("MLYARD_REQUIRE_SSHD is set but /usr/sbin/sshd is not installed")
        pytest.skip("sshd is not installed (Debian: openssh-server); .ci/run installs it")
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys / name],
                       check=True)
    shutil.copy(keys / "user.pub", keys / "authorized_keys")
    port = _free_port()
    config = keys / "sshd_config"
    config.write_text(textwrap.dedent(f"""
        Port {port}
        ListenAddress 127.0.0.1
        HostKey {keys / 'host'}
        AuthorizedKeysFile {keys / 'authorized_keys'}
        PidFile {keys / 'sshd.pid'}
        StrictModes no
        UsePAM no
        PasswordAuthentication no
        PermitRootLogin prohibit-password
        """))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                              stderr=subprocess.PIPE, text=True)
    ssh = (f"ssh -i {keys / 'user'} -o StrictHostKeyChecking=no "
           f"-o UserKnownHostsFile={keys / 'known_hosts'} -o LogLevel=ERROR")
    try:
        wait_for(lambda: server.poll() is not None or subprocess.run(
            [*ssh.split(), "-o", "BatchMode=yes", "-p", str(port), "127.0.0.1", "true"],
            capture_output=True).returncode == 0, what="sshd to let the test user in",
            timeout=60)
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        yield ssh, port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_over_ssh_to_a_real_sshd_pull_and_push_and_a_second_sync_moves_nothing(
        box: tuple[Path, dict[str, Any]], laptop: Path, sshd: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder, trained = box
    ssh, port = sshd
    monkeypatch.setenv("MLYARD_SSH", ssh)
    remote = f"ssh://127.0.0.1:{port}{folder}"
    agent = ["--remote-mlyard", f"{sys.executable} -m mlyard"]
    pulled = sync_json(remote, *agent)
    assert pulled["new_runs"] == [trained["run_id"]]
    assert pulled["model_versions"] == [["churn/1", "churn/1"]]
    assert pulled["bytes"] > 10_000
    model = load_model(open_workspace(), "churn/1")
    assert model.version.model_hash == trained["model_blake3"]
    again = sync_json(remote, *agent)
    assert again["bytes"] == 0 and not again["new_runs"]

    mine = train_json("--param", "num_leaves=7")
    pushed = sync_json(remote, "--push", *agent)
    assert pushed["new_runs"] == [mine["run_id"]] and pushed["bytes"] > 0
    there = run_queries.show_run(open_workspace(folder), mine["run_id"])
    assert there.run.tags[SYNCED_TAG] == str(laptop)
    assert sync_json(remote, "--push", *agent)["bytes"] == 0

    missing = mlyard("sync", f"ssh://127.0.0.1:{port}/no/such/project", *agent)
    assert missing.exit_code == 1
    assert "the connection ended: mlyard: no mlyard.toml in /no/such/project" in missing.stderr


def test_rows_that_would_write_into_this_projects_own_run_are_refused(
        box: tuple[Path, dict[str, Any]], laptop: Path) -> None:
    """What a broken or hostile other side could send: nothing of ours is overwritten."""
    folder, trained = box
    sync_json(str(folder), "--datasets")
    mine = train_json("--param", "num_leaves=7")
    theirs = LocalPeer(open_workspace(folder), str(folder))
    here = LocalPeer(open_workspace(), str(laptop))
    rows = {table: [{**row, "run_id": mine["run_id"]} for row in found]
            if table in ("runs", "params", "tags") else []
            for table, found in theirs.export([trained["run_id"]], [], []).items()}
    with pytest.raises(SyncRefused, match=f"run {mine['run_id']} is already here"):
        here.apply(rows, [mine["run_id"]], "hostile", "hostile-id")
    stray = {table: found if table in ("runs", "params") else []
             for table, found in theirs.export([trained["run_id"]], [], []).items()}
    stray["params"][0]["run_id"] = mine["run_id"]
    with pytest.raises(SyncRefused, match="a row of params names run"):
        here.apply(stray, [], "hostile", "hostile-id")
    for bad in ("../../mlyard.toml", "ab" * 40):
        with pytest.raises(SyncRefused, match="is not an object hash"):
            here.missing([bad])
    assert run_queries.show_run(open_workspace(), mine["run_id"]).run.params["num_leaves"] == "7"
    assert run_ids() == [mine["run_id"]]


def test_a_copy_is_updated_only_by_the_workspace_it_came_from(
        box: tuple[Path, dict[str, Any]], laptop: Path, tmp_path: Path) -> None:
    """Box B passes off box A's run as its own, with another tag and another name: the
    laptop's copy came from A (recorded by A's identity, not just its path), so B's rows
    for it are refused by name and the copy stays A's."""
    folder, trained = box
    run_id = trained["run_id"]
    assert sync_json(str(folder))["new_runs"] == [run_id]
    other = empty_project(tmp_path / "other" / "churn")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(other)
        assert mlyard("sync", str(folder)).exit_code == 0
        with open_workspace(other).catalog.session() as con:  # B's copy, made to look B's
            con.execute("DELETE FROM tags WHERE run_id = ? AND key LIKE 'mlyard.synced_from%'",
                        [run_id])
            con.execute("UPDATE runs SET name = 'hijacked' WHERE run_id = ?", [run_id])
            con.execute("INSERT INTO tags VALUES (?, 'owner', 'B')", [run_id])
    refused = mlyard("sync", str(other))
    assert refused.exit_code == 1
    assert f"run {run_id} here is a copy from {folder}" in refused.stderr
    assert "only a sync with that workspace updates it" in refused.stderr
    kept = run_queries.show_run(open_workspace(), run_id).run
    assert kept.name != "hijacked" and "owner" not in kept.tags
    # A changes the run, and A's sync still updates it: the owner is not locked out.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        assert mlyard("runs", "tag", run_id, "note=changed on A").exit_code == 0
    assert sync_json(str(folder))["updated_runs"] == [run_id]
    assert run_queries.show_run(open_workspace(), run_id).run.tags["note"] == "changed on A"


def test_many_runs_go_in_batches_of_rows_each_run_whole(
        box: tuple[Path, dict[str, Any]], laptop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, trained = box
    ws = open_workspace(folder)
    made = [trained["run_id"]]
    for index in range(4):
        with start_run(name=f"script-{index}", params={"i": index}, workspace=ws) as run:
            for step in range(30):
                run.log_metric("loss", 1 / (step + 1), step=step)
        made.append(run.run_id)
    monkeypatch.setattr(syncer, "ROWS_PER_BATCH", 100)  # a run of 30 points and more
    result = sync_json(str(folder))
    assert sorted(result["new_runs"]) == sorted(made)
    assert result["model_versions"] == [["churn/1", "churn/1"]]
    here, there = open_workspace(), open_workspace(folder)
    for run_id in made:
        assert run_queries.show_run(here, run_id).metric_points == \
            run_queries.show_run(there, run_id).metric_points
    assert sync_json(str(folder))["bytes"] == 0
