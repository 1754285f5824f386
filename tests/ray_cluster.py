"""A real Ray cluster on this machine for tests: a head and worker nodes on loopback, stopped afterwards.

>>> with LocalCluster(tmp_path, nodes=2) as cluster:   # a head and a worker node (1 CPU, 80 MB store each)
...     worker = cluster.nodes[1]
...     batch(..., address=cluster.address)
...     cluster.kill(worker)                      # the node dies (SIGKILL of all its processes)

Each node is one ``ray start --block`` process in its own process group, so a node is killed, and the cluster
stopped, by signalling its own processes only (never ``ray stop``, which would stop every Ray on the machine,
other tests' included). Every node has its own ports and the cluster its own short ``--temp-dir``; token
authentication is off (``RAY_AUTH_MODE=disabled``, set for this process too while the cluster runs) and the
head notices a dead node within a few seconds. Skip when Ray is absent: ``pytest.importorskip("ray")``.

A process that already started a local Ray instance (``ray.init()`` without an address turns token
authentication on for the rest of the process) cannot then drive this cluster: its actors are dropped as soon
as they start. Drive it from a fresh process (a subprocess), or before any local ``ray.init()``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["LocalCluster", "Node"]

_RAY = Path(sys.executable).with_name("ray")
_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    # a killed node is declared dead after about 3 s (default: about 30 s)
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free now (held open together, so that none is given twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Ray workers start their own sessions, so process groups miss them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Node:
    """One ``ray start --block`` process and everything it started."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [str(_RAY), "start", "--block", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the node's processes (its raylet and workers included); idempotent."""
        pids = [self.process.pid, *_descendants(self.process.pid)] if self.process.poll() is None else []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


class LocalCluster:
    """A head node on 127.0.0.1 and ``nodes - 1`` worker nodes, started together (the constructor returns once
    the head counts every node's CPUs); more with :meth:`add_node`; all stopped by :meth:`stop`.

    Args:
        root: a private folder for the nodes' logs (Ray's own ``--temp-dir`` is a short folder in /tmp, removed
            by :meth:`stop`: its socket paths must fit in 107 characters).
        nodes: nodes to start, the head included.
        cpus: CPUs each node offers; ``object_store``: bytes of each node's object store.
        timeout: seconds to wait for the nodes to join.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        nodes: int = 1,
        cpus: int = 1,
        object_store: int = 80_000_000,
        timeout: float = 120.0,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cpus, self.object_store, self.timeout = cpus, object_store, timeout
        self.env = {**os.environ, **_ENV}
        self.temp = Path(tempfile.mkdtemp(prefix="nv-ray-", dir="/tmp"))
        self.nodes: list[Node] = []
        self._saved = {k: os.environ.get(k) for k in _ENV}
        os.environ.update(_ENV)  # this process is the driver: it must speak the cluster's (no) auth
        port, client, dashboard = _free_ports(3)
        self.address = f"127.0.0.1:{port}"
        try:
            self.head = self._start(
                [
                    "--head",
                    f"--port={port}",
                    f"--ray-client-server-port={client}",
                    f"--dashboard-port={dashboard}",
                    "--include-dashboard=false",
                    f"--temp-dir={self.temp}",
                ],
                "head",
            )
            self._wait_for_port(port)
            for _ in range(nodes - 1):
                self._start([f"--address={self.address}"], f"node{len(self.nodes)}")
            self._wait_for_cpus(self.cpus * nodes)
        except BaseException:
            self.stop()
            raise

    def _start(self, args: list[str], name: str) -> Node:
        taken = {int(a.split("=")[1]) for a in args if a.split("=")[0].endswith("port")}
        agent, metrics = [p for p in _free_ports(2 + len(taken)) if p not in taken][:2]
        common = [
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={self.cpus}",
            f"--object-store-memory={self.object_store}",
            f"--dashboard-agent-listen-port={agent}",
            f"--metrics-export-port={metrics}",
            "--disable-usage-stats",
        ]
        node = Node([*args, *common], self.root / f"{name}.log", self.env)
        self.nodes.append(node)
        return node

    def add_node(self) -> Node:
        """Start another node joined to the head; returns once the head counts its CPUs."""
        node = self._start([f"--address={self.address}"], f"node{len(self.nodes)}")
        self._wait_for_cpus(self.cpus * len([n for n in self.nodes if n.process.poll() is None]))
        return node

    def _check_alive(self) -> None:
        for node in self.nodes:
            if node.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {node.process.returncode}; see {node.log}")

    def _wait_for_port(self, port: int) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
            time.sleep(0.2)
        raise TimeoutError(f"the Ray head did not listen on port {port} in {self.timeout:.0f} s; see {self.root}")

    def _wait_for_cpus(self, want: int) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if self.cpus_alive() >= want:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the Ray cluster did not reach {want} CPUs in {self.timeout:.0f} s; see {self.root}")

    def cpus_alive(self) -> int:
        """CPUs of the nodes the head counts as alive (asked with ``ray status`` in a subprocess)."""
        try:
            out = subprocess.run(
                [str(_RAY), "status", f"--address={self.address}"],
                capture_output=True,
                text=True,
                env=self.env,
                timeout=30,
            ).stdout
        except subprocess.TimeoutExpired:
            return 0
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1] == "CPU" and "/" in parts[0]:
                return int(float(parts[0].split("/")[1]))
        return 0

    def kill(self, node: Node) -> None:
        """Kill a node (SIGKILL: as if its machine went down)."""
        node.kill()

    def stop(self) -> None:
        """Kill every node (idempotent) and give this process its environment back."""
        for node in reversed(self.nodes):
            node.kill()
        shutil.rmtree(self.temp, ignore_errors=True)
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
