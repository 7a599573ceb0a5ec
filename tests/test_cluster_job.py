"""`ray job submit` against a real `ray start --head` cluster on loopback."""

import json
import os
import shutil
import socket
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pids() -> set[int]:
    return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}


def _stop_cluster(started: set[int], temp_dir: str) -> None:
    """Stop only this test's cluster (`ray stop` would stop every Ray on the machine): the
    processes that appeared while it ran and either name its temp dir on their command
    line (gcs, raylet, dashboard, ...) or descend from one that does (workers, the job's
    driver).  Other work started meanwhile on the machine (another run, a test) is left
    alone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _cluster_pids(started, temp_dir):
            if pid != os.getpid():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        time.sleep(1)


def _cluster_pids(started: set[int], temp_dir: str) -> set[int]:
    alive = started & _pids()
    parent, cmdline = {}, {}
    for pid in alive:
        try:
            parent[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    ours = {pid for pid, cmd in cmdline.items() if temp_dir in cmd}
    grew = True
    while grew:
        children = {pid for pid, ppid in parent.items() if ppid in ours} - ours
        ours |= children
        grew = bool(children)
    return ours


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ray_job_submit_runs_training(tmp_path):
    bin_dir = Path(sys.executable).parent
    ray = shutil.which("ray", path=str(bin_dir)) or "ray"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""}
    env.pop("RAY_ADDRESS")
    port, dash, client, agent, agent_grpc, env_agent = (_free_port() for _ in range(6))
    temp_dir = tempfile.mkdtemp(prefix="rayjob-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    head = [ray, "start", "--head", f"--port={port}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
            f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={env_agent}", "--num-cpus=2", '--resources={"executor": 1}', "--disable-usage-stats",
            f"--temp-dir={temp_dir}"]
    before = _pids()
    subprocess.run(head, env=env, check=True, capture_output=True, timeout=120)
    try:
        out = tmp_path / "job-run"
        job = [ray, "job", "submit", f"--address=http://127.0.0.1:{dash}", "--runtime-env", "cluster/runtime_env.yaml",
               "--", "python", "-m", "cluster.launch", "iterations=1", "learner.sft.steps=5", "problems_per_iteration=4",
               "rollout.samples_per_prompt=4", "learner.minibatch_size=16", "learner.micro_batch_size=8",
               "eval_samples=1", "eval_problems=4", "rollout.max_new_tokens=32", "wandb.mode=disabled",
               f"model.cache_dir={tmp_path / 'cache'}", f"output_dir={out}"]
        for _ in range(30):  # the head's job agent comes up a few seconds after `ray start`
            done = subprocess.run(job, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
            if "No available agent" not in done.stdout + done.stderr:
                break
            time.sleep(3)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "held-out pass@1" in done.stdout
        assert json.loads((out / "result.json").read_text())["heldout_after"] >= 0.0
    finally:
        _stop_cluster(_pids() - before, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
