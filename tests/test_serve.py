"""``nightvision serve``: cameras on a real local Ray instance, supervised, served on one HTTP port.

One server (three synthetic cameras and one whose URI never opens) runs for the whole module on a local Ray
instance: its ``/metrics`` are parsed, ``/health`` must show the broken camera down while the others are up,
and one camera's actor is killed with ``ray.kill`` and must come back while the others keep running. The
configuration checks, the port check and the supervisor's own policy (backoff, giving up, stalls,
recordings across restarts) run without Ray.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from nightvision.cluster.serve import CameraServer, serve, status_line
from nightvision.cluster.serve_config import load_config, parse_config
from nightvision.cluster.supervisor import Supervisor, WorkerLost
from nightvision.errors import InputError, OutputError
from nightvision.io.video import VideoReader
from nightvision.stream.exposure import DEFAULT_TARGET
from tests.conftest import run_cli

HAVE_RAY = importlib.util.find_spec("ray") is not None
CAMERAS = ("cam1", "cam2", "cam3")


# --- helpers -------------------------------------------------------------------------------------------------
def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_metrics(text: str) -> dict[str, dict[str, Any]]:
    """A strict reader of the Prometheus text format: every sample's family must have been declared with
    HELP and TYPE first; label sets are parsed in full. Returns ``{name: {"type", "help", "samples"}}`` with
    samples ``{frozenset(labels.items()): value}``."""
    families: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert help_text, f"empty HELP: {line!r}"
            families.setdefault(name, {"samples": {}})["help"] = help_text
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "summary", "histogram", "untyped"), line
            assert "help" in families.get(name, {}), f"TYPE before HELP for {name}"
            families[name]["type"] = kind
            continue
        assert not line.startswith("#"), f"unexpected comment {line!r}"
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels_text, value = m.groups()
        assert name in families and "type" in families[name], f"sample of {name} before its HELP/TYPE"
        labels: dict[str, str] = {}
        rest = labels_text or ""
        while rest:
            lm = _LABEL.match(rest)
            assert lm, f"bad labels in {line!r}"
            labels[lm.group(1)] = lm.group(2)
            rest = rest[lm.end() :]
        key = frozenset(labels.items())
        assert key not in families[name]["samples"], f"duplicate series {line!r}"
        families[name]["samples"][key] = float(value)
    return families


def per_camera(families: dict[str, dict[str, Any]], name: str) -> dict[str, float]:
    return {dict(k)["camera"]: v for k, v in families[name]["samples"].items()}


def scrape(server: CameraServer) -> dict[str, dict[str, Any]]:
    status, headers, body = get(server.url + "metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse_metrics(body.decode())


def health(server: CameraServer) -> tuple[int, dict[str, Any]]:
    status, headers, body = get(server.url + "health")
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(body)


def write(tmp_path: Path, text: str, name: str = "serve.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


SYNTH = "synthetic://?fps=15&size=160x90"


# --- configuration: strict, one line naming the item ---------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'[[camera]]\nname = "a"\nuri = "{SYNTH}"\ndenoize = true\n', r"camera 1 \('a'\): unknown key 'denoize'"),
        (
            f'[[camera]]\nname = "a"\nuri = "{SYNTH}"\n[[camera]]\nname = "a"\nuri = "0"\n',
            r"duplicate camera name 'a' \(cameras 1 and 2\)",
        ),
        ('[serve]\nprot = 80\n[[camera]]\nname = "a"\nuri = "0"\n', r"\[serve\]: unknown key 'prot'"),
        ('[[camera]]\nname = "a"\nuri = "0"\nexposure = 300\n', r"camera 1 \('a'\): exposure must be false, .auto. or"),
        ('[[camera]]\nname = "a"\nuri = "0"\ndenoise = "yes"\n', r'denoise must be true or false, got "yes"'),
        ('[[camera]]\nname = "a"\nuri = "0"\npolicy = "fast"\n', r"policy must be one of latest, lossless"),
        (
            '[[camera]]\nname = "a"\nuri = "0"\nmodel = "zero-dce+"\n',
            r"model: unknown model 'zero-dce\+'; did you mean",
        ),
        ('[[camera]]\nname = "a"\nuri = "0"\ngpus = -1\n', r"gpus must be at least 0"),
        ('[[camera]]\nname = "a b"\nuri = "0"\n', r"name must be 1-64 letters"),
        ('[[camera]]\nname = "a"\n', r"camera 1 \('a'\): uri is missing"),
        ("[serve]\nport = 8080\n", r"no camera"),
        ('[serve]\nport = 70000\n[[camera]]\nname = "a"\nuri = "0"\n', r"port must be in 0-65535"),
        ('[[camera]]\nname = "a"\nuri = "0"\noutputs = "x.mp4"\n', r"outputs must be a list of strings"),
        ('[[camera]]\nname = "a"\nuri = "0"\noutputs = ["x.png"]\n', r"outputs are video files"),
        (
            '[serve]\nport = 18087\n[[camera]]\nname = "a"\nuri = "0"\noutputs = ["http://127.0.0.1:18087/"]\n',
            r"on the serve port 18087 itself; give that output another port",
        ),
        ('[[camera]]\nname = "a"\nuri = "0"\noutputs = ["{camera}.mp4"]\n', r"unknown placeholder"),
        ('[[camera]]\nname = "a"\nuri = "synthetic://?fps=0"\n', r"synthetic source"),
        (
            '[serve]\noverwrite = true\n[[camera]]\nname = "a"\nuri = "CONFIG_DIR/src.mp4"\noutputs = ["src.mp4"]\n',
            r"output '.*src\.mp4' is the camera's own source",
        ),
        (
            '[[camera]]\nname = "a"\nuri = "0"\nmodel = "curve-denoise"\nsmooth = true\n',
            r"smooth = true needs a model that shares one curve map over the frame \(zero-dce\+\+\), not curve-denoise",
        ),
        ("[[camera]\nname = 1\n", r"not valid TOML"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_item(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text.replace("CONFIG_DIR", str(tmp_path)))
    with pytest.raises(InputError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path)), message
    assert re.search(expected, message), message


def test_config_defaults_overrides_and_outputs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[serve]
cpus_per_camera = 0.5
max_restarts = 3
[defaults]
denoise = true
outputs = ["rec/{{name}}-{{start}}.mp4"]
[[camera]]
name = "a"
uri = "{SYNTH}"
[[camera]]
name = "b"
uri = "{SYNTH}"
denoise = false
cpus = 2
exposure = 110
""",
    )
    cfg = load_config(path)
    a, b = cfg.cameras
    assert (a.denoise, b.denoise) == (True, False)
    assert (a.cpus, b.cpus, a.onnx_threads, b.onnx_threads) == (0.5, 2.0, 1, 2)
    assert (a.exposure, b.exposure) == (DEFAULT_TARGET, 110.0)  # "auto" by default, as the CLI
    assert a.outputs == (str(tmp_path / "rec/{name}-{start}.mp4"),)  # relative to the config file
    assert cfg.max_restarts == 3 and cfg.host == "127.0.0.1" and cfg.port == 8080
    assert "user:secret" not in repr(parse_config({"camera": [{"name": "c", "uri": "rtsp://user:secret@h/s"}]}))
    # two cameras writing one file, and an existing recording without overwrite, are refused before anything runs
    with pytest.raises(InputError, match=r"cameras 'a' and 'b' both write"):
        parse_config({"camera": [{"name": n, "uri": SYNTH, "outputs": ["/tmp/x.mp4"]} for n in "ab"]})
    (tmp_path / "a.mp4").write_bytes(b"")
    with pytest.raises(InputError, match=r"a\.mp4 already exists; set overwrite = true"):
        parse_config({"camera": [{"name": "a", "uri": SYNTH, "outputs": [str(tmp_path / "a.mp4")]}]})


@pytest.mark.skipif(importlib.util.find_spec("yaml") is None, reason="YAML configs need PyYAML")
def test_yaml_config_is_checked_the_same(tmp_path: Path) -> None:
    good = write(tmp_path, f"serve:\n  port: 0\ncamera:\n  - name: a\n    uri: '{SYNTH}'\n", "serve.yaml")
    assert load_config(good).cameras[0].name == "a"
    bad = write(tmp_path, "camera:\n  - name: a\n    uri: x\n    smoth: true\n", "bad.yml")
    with pytest.raises(InputError, match=r"bad\.yml: camera 1 \('a'\): unknown key 'smoth'"):
        load_config(bad)


def test_cli_exits_2_with_one_line_on_a_bad_config(tmp_path: Path) -> None:
    path = write(tmp_path, f'[[camera]]\nname = "a"\nuri = "{SYNTH}"\n[[camera]]\nname = "a"\nuri = "0"\n')
    result = run_cli("serve", str(path))
    if "invalid choice: 'serve'" in result.stderr:
        pytest.skip("`nightvision serve` is not wired into the CLI yet (nightvision/cli.py)")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "duplicate camera name 'a'" in lines[0], result.stderr


def test_a_port_in_use_is_one_line_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, f'[[camera]]\nname = "a"\nuri = "{SYNTH}"\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(OutputError) as info:
            serve(path, port=port, in_process=True, stop=threading.Event())
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and f"port {port} is already in use" in message and "\n" not in message
    assert time.monotonic() - t0 < 5.0  # refused before any camera or Ray started


def test_in_process_and_an_address_contradict(tmp_path: Path) -> None:
    path = write(tmp_path, f'[[camera]]\nname = "a"\nuri = "{SYNTH}"\n')
    with pytest.raises(InputError, match="--in-process runs the cameras here; it cannot also use the Ray cluster"):
        CameraServer(path, address="auto", in_process=True)


def test_a_recording_is_kept_when_its_pipeline_fails(tmp_path: Path) -> None:
    from fractions import Fraction

    from nightvision.cluster.camera import Recording
    from nightvision.stream.sinks import VideoFileSink

    frame = np.full((90, 160, 3), 60, np.uint8)
    kept = Recording(VideoFileSink(tmp_path / "kept.mp4", fps=15, time_base=Fraction(1, 15))).open()
    for i in range(3):
        kept.write(frame, frame, i)
    kept.abort()  # what a pipeline does to its sinks when a stage fails
    with VideoReader(tmp_path / "kept.mp4") as reader:
        assert sum(1 for _ in reader) == 3
    empty = Recording(VideoFileSink(tmp_path / "empty.mp4", fps=15, time_base=Fraction(1, 15))).open()
    empty.abort()
    assert list(tmp_path.iterdir()) == [tmp_path / "kept.mp4"]  # nothing written, nothing left (no temp file)


# --- the supervisor's policy, on stand-in workers ------------------------------------------------------------
class StubHandle:
    """A worker that reports what the test tells it to (the supervisor's decisions, without cameras)."""

    def __init__(self, log: list[str], script: Callable[[int, float], dict[str, Any] | None]) -> None:
        self.log, self.script = log, script
        self.where = "stub"
        self.run = -1
        self.started = 0.0
        self.killed = False

    def start(self, run: int) -> None:
        self.run, self.started = run, time.monotonic()
        self.log.append(f"start {run}")

    def poll(self) -> dict[str, Any] | None:
        if self.killed:
            raise WorkerLost("killed")
        status = self.script(self.run, time.monotonic() - self.started)
        return None if status is None else {"run": self.run, "outputs": [], **status}

    def waiting(self) -> float:
        return 0.0

    def wait_jpeg(self, after: int, timeout: float) -> tuple[bytes | None, int]:
        return None, after

    def stop(self, timeout: float) -> None:
        self.log.append("stop")

    def kill(self) -> None:
        self.killed = True
        self.log.append("kill")


def running(frames: int) -> dict[str, Any]:
    return {
        "phase": "running",
        "error": "",
        "error_kind": "",
        "frames_in": frames,
        "frames_out": frames,
        "dropped": 0,
        "reconnects": 0,
        "source_down": False,
        "fps_in": 10.0,
        "fps_out": 10.0,
        "latency_p50_s": 0.01,
        "latency_p95_s": 0.02,
    }


def test_supervisor_backs_off_gives_up_and_restarts_stalled_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nightvision.cluster.supervisor.POLL", 0.05)
    events: list[str] = []
    times: list[float] = []

    def never_opens(run: int, age: float) -> dict[str, Any]:
        return {**running(0), "phase": "failed", "error": "cannot open rtsp://x: unreachable", "error_kind": "source"}

    def stalls(run: int, age: float) -> dict[str, Any]:
        return running(min(int(age * 20), 5))  # five frames, then nothing

    def factory(cam: Any) -> StubHandle:
        times.append(time.monotonic())
        return StubHandle(events if cam.name == "bad" else [], never_opens if cam.name == "bad" else stalls)

    cfg = parse_config(
        {
            "serve": {"restart_delay": 0.2, "restart_delay_max": 0.4, "max_restarts": 3, "stall_seconds": 1.0},
            "camera": [{"name": "bad", "uri": "rtsp://x"}, {"name": "stuck", "uri": "rtsp://y"}],
        }
    )
    sup = Supervisor(cfg, factory)
    sup.start()
    try:
        wait_until(lambda: sup.views()[0].reason.startswith("gave up"), 10, "the broken camera to be given up")
        bad = sup.views()[0]
        assert bad.state == "down" and bad.restarts == 3
        assert bad.reason == "gave up after 3 restarts in a row: cannot open rtsp://x: unreachable"
        # a source that does not open is retried in the same worker (the model stays loaded); giving up kills it
        assert events == ["start 0", "start 1", "start 2", "start 3", "kill"]
        wait_until(lambda: sup.views()[1].reason.startswith("stalled: no new frame for 1 s"), 10, "a stall")
        wait_until(lambda: sup.views()[1].restarts >= 1, 10, "the stalled camera to be restarted")
        assert len(times) >= 3  # the stalled camera got a new worker (the broken one kept its own)
        assert sup.views()[1].frames_out >= 5
        assert sup.views()[0].restarts == 3  # given up: no more restarts
    finally:
        sup.stop()


def test_a_camera_that_cannot_run_as_configured_is_not_restarted(tmp_path: Path) -> None:
    """A model without weights or a backend not installed restarted forever ("4 restarts in 20 s"): no restart
    mends it. The real worker says so (error kind "config"), the camera stays down, the others run."""
    from nightvision.cluster.supervisor import ThreadHandle

    cfg = parse_config(
        {
            "serve": {"restart_delay": 0.1, "restart_delay_max": 0.2},
            "camera": [
                {"name": "untrained", "uri": SYNTH, "model": "nafnet"},
                {"name": "fine", "uri": SYNTH, "model": "zero-dce++"},
            ],
        },
        tmp_path / "serve.toml",
    )
    sup = Supervisor(cfg, lambda cam: ThreadHandle(cam, jpeg_quality=80, overwrite=False))
    sup.start()
    try:
        wait_until(lambda: sup.views()[0].reason.startswith("cannot run as configured"), 30, "the camera to give up")
        wait_until(lambda: sup.views()[1].frames_out >= 3, 30, "the other camera's frames")
        time.sleep(0.5)  # several restart delays
        untrained = sup.views()[0]
        assert untrained.state == "down" and untrained.restarts == 0
        assert "ships no weights" in untrained.reason and untrained.reason.endswith("restart serve")
    finally:
        sup.stop()


def test_in_process_cameras_restart_and_recordings_survive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Ray: the same supervisor over threads. A killed worker is replaced; each run records its own
    file."""
    monkeypatch.setattr("nightvision.cluster.connect.ray_available", lambda: False)
    path = write(
        tmp_path,
        f"""
[serve]
port = 0
restart_delay = 0.2
[[camera]]
name = "a"
uri = "{SYNTH}"
backend = "onnxruntime"
threads = 1
exposure = 110
denoise = true
outputs = ["rec/{{name}}.mp4"]
""",
    )
    with CameraServer(path) as server:
        assert server.mode == "in-process"  # Ray absent and no address: threads, not an error
        wait_until(lambda: server.views()[0].frames_out >= 10, 60, "the camera's first frames")
        handle = server.handle("a")
        assert handle is not None
        handle.kill()
        wait_until(lambda: server.views()[0].restarts == 1 and server.views()[0].state == "up", 30, "a restart")
        frames = server.views()[0].frames_out
        wait_until(lambda: server.views()[0].frames_out >= frames + 10, 30, "frames after the restart")
        status, _, body = get(server.url + "cam/a/snapshot.jpg")
        assert status == 200
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        assert image.shape == (90, 160, 3) and image.mean() > 40  # enhanced (the scene is dark, about 20)
    files = sorted((tmp_path / "rec").glob("*.mp4"))
    assert {f.name for f in files} == {"a.mp4", "a-2.mp4"}, files  # the restart began a new file
    for f in files:
        with VideoReader(f) as reader:
            assert reader.info.width == 160 and sum(1 for _ in reader) >= 5


# --- on a real local Ray instance ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CameraServer]:
    """Three synthetic cameras and a broken one, half a CPU each, on a head and a worker node (1 CPU each):
    the cameras need both nodes."""
    if not HAVE_RAY:
        pytest.skip('Ray is not installed (pip install "nightvision[ray]")')
    import ray

    from tests.ray_cluster import LocalCluster

    if ray.is_initialized():  # another module left its connection up: ours must be the cluster's below
        ray.shutdown()
    cams = "".join(
        f'[[camera]]\nname = "{n}"\nuri = "{SYNTH}"\nbackend = "onnxruntime"\nthreads = 1\ncpus = 0.5\n'
        for n in CAMERAS
    )
    broken = f'[[camera]]\nname = "broken"\nuri = "rtsp://127.0.0.1:{closed_port()}/never"\ncpus = 0.5\n'
    path = write(
        tmp_path_factory.mktemp("serve"),
        f"[serve]\nport = 0\nrestart_delay = 0.5\nrestart_delay_max = 2\nstall_seconds = 15\n{cams}{broken}",
    )
    with LocalCluster(tmp_path_factory.mktemp("ray"), nodes=2) as cluster:
        srv = CameraServer(path, address=cluster.address)
        try:
            srv.start()
            assert srv.mode == f"ray ({cluster.address})"
            wait_until(
                lambda: all(v.state == "up" for v in srv.views() if v.name in CAMERAS), 120, "three cameras up on Ray"
            )
            yield srv
        finally:
            srv.stop()
        assert not ray.is_initialized()  # the server's connection to the cluster is closed with it


@pytest.mark.slow
def test_metrics_are_prometheus_text_per_camera(server: CameraServer) -> None:
    first = scrape(server)
    time.sleep(1.5)
    second = scrape(server)
    names = {
        "nightvision_camera_up": "gauge",
        "nightvision_camera_fps_in": "gauge",
        "nightvision_camera_fps_out": "gauge",
        "nightvision_camera_latency_p50_seconds": "gauge",
        "nightvision_camera_latency_p95_seconds": "gauge",
        "nightvision_camera_frames_in_total": "counter",
        "nightvision_camera_frames_out_total": "counter",
        "nightvision_camera_dropped_frames_total": "counter",
        "nightvision_camera_reconnects_total": "counter",
        "nightvision_camera_restarts_total": "counter",
    }
    for name, kind in names.items():
        assert second[name]["type"] == kind
        assert set(per_camera(second, name)) == {*CAMERAS, "broken"}, name
    for name, family in second.items():
        assert name.startswith("nightvision_")
        assert (family["type"] == "counter") == name.endswith("_total"), name
        if family["type"] == "counter":
            for cam, value in per_camera(second, name).items():
                assert value >= per_camera(first, name)[cam], f"{name}{{camera={cam}}} went down"
    for cam in CAMERAS:
        assert per_camera(second, "nightvision_camera_up")[cam] == 1
        assert (
            per_camera(second, "nightvision_camera_frames_out_total")[cam]
            > per_camera(first, "nightvision_camera_frames_out_total")[cam]
        )
        assert 1 < per_camera(second, "nightvision_camera_fps_in")[cam] < 20  # a 15 fps source
        p50 = per_camera(second, "nightvision_camera_latency_p50_seconds")[cam]
        p95 = per_camera(second, "nightvision_camera_latency_p95_seconds")[cam]
        assert 0 < p50 <= p95 < 5.0
    assert per_camera(second, "nightvision_camera_up")["broken"] == 0
    assert math.isnan(per_camera(second, "nightvision_camera_latency_p50_seconds")["broken"])
    assert per_camera(second, "nightvision_camera_frames_out_total")["broken"] == 0
    if importlib.util.find_spec("prometheus_client") is not None:  # and Prometheus' own parser agrees
        from prometheus_client.parser import text_string_to_metric_families

        _, _, body = get(server.url + "metrics")
        parsed = {f.name: f.type for f in text_string_to_metric_families(body.decode())}
        assert parsed["nightvision_camera_restarts"] == "counter"
        assert parsed["nightvision_camera_latency_p95_seconds"] == "gauge"


@pytest.mark.slow
def test_a_camera_that_never_opens_is_down_and_the_others_run(server: CameraServer) -> None:
    wait_until(lambda: health(server)[1]["cameras"]["broken"]["state"] == "down", 30, "the broken camera down")
    code, body = health(server)
    assert code == 503 and body["status"] == "degraded"
    broken = body["cameras"]["broken"]
    assert "cannot open rtsp://127.0.0.1:" in broken["reason"] and broken["frames_out"] == 0
    assert all(body["cameras"][c]["state"] == "up" for c in CAMERAS), body
    assert "broken DOWN: cannot open" in status_line(server.views())
    nodes = {re.search(r"ray node (\w+)", body["cameras"][c]["where"]).group(1) for c in CAMERAS}  # type: ignore[union-attr]
    assert len(nodes) == 2, body  # half a CPU each, one CPU per node: the cameras are spread over both nodes
    # the views
    status, headers, jpeg = get(server.url + "cam/cam2/snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (90, 160, 3)
    assert get(server.url + "cam/nope/snapshot.jpg")[0] == 404
    status, _, page = get(server.url)
    assert status == 200 and all(f"/cam/{c}/stream.mjpg" in page.decode() for c in CAMERAS)
    with urllib.request.urlopen(server.url + "cam/cam3/stream.mjpg", timeout=10) as r:
        assert r.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        data = b""
        while data.count(b"--frame") < 3:
            data += r.read1(65536)
    assert data.count(b"\xff\xd8") >= 2  # JPEG starts


@pytest.mark.slow
def test_a_killed_actor_restarts_while_the_others_keep_running(server: CameraServer) -> None:
    import ray

    old = server.handle("cam1")
    assert old is not None
    history = [scrape(server)]
    ray.kill(old.actor, no_restart=True)  # type: ignore[attr-defined]
    t_kill = time.monotonic()

    def back() -> bool:
        history.append(scrape(server))
        m = history[-1]
        return (
            per_camera(m, "nightvision_camera_restarts_total")["cam1"] >= 1
            and per_camera(m, "nightvision_camera_up")["cam1"] == 1
            and per_camera(m, "nightvision_camera_frames_out_total")["cam1"]
            >= per_camera(history[0], "nightvision_camera_frames_out_total")["cam1"] + 15
        )

    wait_until(back, 60, "cam1 to restart and deliver frames again", interval=0.5)
    restart_s = time.monotonic() - t_kill
    new = server.handle("cam1")
    assert new is not None and new is not old
    frames = [per_camera(m, "nightvision_camera_frames_out_total") for m in history]
    restarts = [per_camera(m, "nightvision_camera_restarts_total") for m in history]
    for cam in CAMERAS:  # counters never go down, the killed camera's included
        assert all(a[cam] <= b[cam] for a, b in itertools.pairwise(frames)), cam
    for cam in ("cam2", "cam3"):  # untouched: no restart, frames rising all along (in every ~3 s window)
        assert all(r[cam] == 0 for r in restarts)
        for i in range(len(frames) - 6):
            assert frames[i + 6][cam] > frames[i][cam], f"{cam} stopped delivering while cam1 restarted"
        assert frames[-1][cam] >= frames[0][cam] + 15
    assert any(per_camera(m, "nightvision_camera_up")["cam1"] == 0 for m in history) or restart_s < 2
    print(f"cam1 back {restart_s:.1f} s after ray.kill ({len(history)} scrapes)")


def test_the_final_report_counts_the_frames_written_while_stopping(tmp_path: Path) -> None:
    """The report at the end used the last polled status: "201 frames out" for a recording of 203."""
    rec = tmp_path / "rec.mp4"
    path = write(tmp_path, f'[[camera]]\nname = "a"\nuri = "synthetic://?fps=30&size=160x90"\noutputs = ["{rec}"]\n')
    stop = threading.Event()

    def on_status(views: list[Any]) -> None:
        if views and views[0].frames_out >= 20:
            stop.set()

    report = serve(path, port=0, in_process=True, stop=stop, on_status=on_status)
    with VideoReader(rec) as reader:
        recorded = sum(1 for _ in reader.frames())
    assert recorded >= 20 and report.cameras[0].frames_out == recorded, (report.cameras[0].frames_out, recorded)
