#!/usr/bin/env bash
# Build the wheel, install it (not editable, no extras) into a throwaway venv outside the
# repo, and use it as a new user would: --version, init/ingest/train/promote on a copy of
# the churn sample, `mlyard serve` answering /ping, the UI started headless and quit.
# Proves every import a command reaches is a runtime dependency and the .tcss files ship.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/mlyard-wheel-smoke.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true  # it writes as it shuts down
  fi
  rm -rf "$work" || true
}
trap cleanup EXIT
step() { printf 'wheel smoke: %s\n' "$*"; }

step "building the wheel"
rm -rf "$repo"/build/lib "$repo"/build/bdist.*  # a stale copy of a deleted module would ship
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$repo" >/dev/null
wheel=$(ls "$work"/dist/mlyard-*.whl)

step "checking what it installs at the top of site-packages"
"$python" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = {n.split("/", 1)[0] for n in names}
extra = sorted(t for t in tops if t != "mlyard" and not t.endswith((".dist-info", ".data")))
assert not extra, f"the wheel installs more than mlyard at the top level: {extra}"
styles = [n for n in names if n.endswith(".tcss")]
assert "mlyard/tui/app.tcss" in styles and len(styles) > 5, f"stylesheets missing: {styles}"
PY

step "installing it into a fresh venv (no extras)"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -qq "$wheel"
mlyard="$work/venv/bin/mlyard"

cp -r "$repo/sample_data/churn" "$work/churn"
rm -rf "$work/churn/.mlyard" "$work/churn/mlyard.toml"
cd "$work/churn"
"$mlyard" --version
"$mlyard" init --from data/ --target churned >/dev/null
"$mlyard" ingest data/ >/dev/null
"$mlyard" train --quiet >/dev/null
"$mlyard" models promote latest --reason "wheel smoke" --force >/dev/null
"$work/venv/bin/python" -m mlyard runs list --json >/dev/null
step "init, ingest, train and promote passed"

port=$("$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$mlyard" serve churn@champion --port "$port" --no-log 2>"$work/serve.log" &
server_pid=$!
"$work/venv/bin/python" - "$port" "$server_pid" <<'PY'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 120
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as answer:
            assert answer.status == 200
            break
    except OSError:
        os.kill(pid, 0)  # the server is still there
        if time.monotonic() > deadline:
            raise SystemExit("the server did not answer /ping in 120 s")
        time.sleep(0.2)
PY
step "serve answered /ping"

"$work/venv/bin/python" - <<'PY'
import asyncio
from mlyard import open_workspace
from mlyard.tui.app import MlyardApp

async def main() -> None:
    app = MlyardApp(open_workspace(), "dashboard")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("q")
    assert app.return_code in (0, None), app.return_code

asyncio.run(main())
PY
step "the UI started headless and quit"

"$mlyard" drift --current churn:v2 --json >/dev/null
"$mlyard" schedule list >/dev/null
"$mlyard" doctor >/dev/null
# Every module imports with the runtime dependencies alone (the Dask ones import dask
# only inside the functions that need it).
"$work/venv/bin/python" - <<'PY'
import importlib, pkgutil
import mlyard
names = [m.name for m in pkgutil.walk_packages(mlyard.__path__, "mlyard.")
         if m.name != "mlyard.__main__"]  # that one runs the CLI
for name in names:
    importlib.import_module(name)
print(f"wheel smoke: {len(names)} modules import")
PY
echo "wheel smoke: passed"
