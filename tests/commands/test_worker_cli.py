"""`llama-desk worker`: loopback by default, refusal elsewhere, client lines, clean stops, clear errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from app.engine import rpc, tools
from tests.workers import Worker, cli, free_port, require_tool


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=60, env=env, check=False)


def test_non_loopback_bind_is_refused_without_the_flag() -> None:
    done = run_cli("worker", "--host", "0.0.0.0", "--port", str(free_port()))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llama-desk: error: Refusing to bind 0.0.0.0")
    assert "unauthenticated" in lines[0] and "Never expose the RPC server to an open network" in lines[0]
    assert "--i-understand-rpc-is-unauthenticated" in lines[0]
    assert done.stdout == ""


def test_bad_arguments_are_one_line_errors() -> None:
    for args, needle in ((("--port", "0"), "Port 0"), (("--threads", "0"), "Thread count 0"),
                         (("--mem", "10"), "at least 256 MiB")):
        done = run_cli("worker", *args)
        assert done.returncode == 1 and needle in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_missing_rpc_server_says_make_tools(tmp_path: Path) -> None:
    env = dict(os.environ, **{tools.CACHE_ENV: str(tmp_path / "empty"), tools.TOOLS_DIR_ENV: ""})
    done = run_cli("worker", "--port", str(free_port()), env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "make tools" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_worker_prints_listening_and_each_client_then_stops_on_ctrl_c() -> None:
    require_tool(tools.RPC_SERVER)
    with Worker(None, "--threads", "1") as worker:
        first = worker.lines[0]
        assert first.startswith(f"llama-desk worker: rpc-server {'.'.join(map(str, rpc.PROTOCOL))}")
        assert f"listening on {worker.endpoint}" in first and "CPU" in first and "1 thread]" in first
        [server_pid] = worker.rpc_server_pids()
        for n in (1, 2):
            rpc.probe(worker.endpoint)
            worker.wait_for(rf"client connected \({n} so far\)")
        worker.wait_for("client disconnected")
        status = worker.interrupt(signal.SIGINT)
        assert status == 0, worker.errors
        assert worker.lines[-1] == "llama-desk worker: stopped (2 client connection(s) served)"
        assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == "zombie"
        assert not any("Traceback" in line for line in worker.errors)


@pytest.mark.slow
def test_sigterm_and_a_killed_parent_leave_no_rpc_server_behind() -> None:
    require_tool(tools.RPC_SERVER)
    with Worker() as worker:
        [server_pid] = worker.rpc_server_pids()
        worker.proc.terminate()  # only llama-desk: it must stop its rpc-server itself
        assert worker.proc.wait(15) == 0
        assert worker.lines[-1].startswith("llama-desk worker: stopped")
    deadline = time.monotonic() + 10
    while psutil.pid_exists(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(server_pid)
    with Worker() as worker:
        [server_pid] = worker.rpc_server_pids()
        worker.proc.kill()  # SIGKILL to llama-desk alone: the child goes with it (PR_SET_PDEATHSIG)
        worker.proc.wait(15)
        deadline = time.monotonic() + 10
        while psutil.pid_exists(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not psutil.pid_exists(server_pid)


@pytest.mark.slow
def test_port_in_use_is_a_clear_error() -> None:
    require_tool(tools.RPC_SERVER)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_cli("worker", "--port", str(port))
    assert done.returncode == 1
    error = [line for line in done.stderr.splitlines() if line.startswith("llama-desk: error:")]
    assert error and "port is in use" in error[0] and "--port" in error[0], done.stderr


@pytest.mark.slow
def test_other_loopback_address_gets_llama_cpps_own_warning() -> None:
    """rpc-server warns for any host but 127.0.0.1; its own words reach the terminal."""
    require_tool(tools.RPC_SERVER)
    with Worker(None, "--host", "127.0.0.2") as worker:
        pass
    text = "\n".join(worker.errors)
    assert "WARNING: Host ('127.0.0.2') is != '127.0.0.1'" in text
    assert "Never expose the RPC server to an open network!" in text
