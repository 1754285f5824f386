"""``/metrics`` of ``nightvision serve``, in the Prometheus text exposition format (version 0.0.4).

Every series is labelled ``camera="NAME"``; counters end in ``_total`` and never go down while the server
runs (they are kept across a camera's restarts); every metric has its ``# HELP`` and ``# TYPE`` lines.

* ``nightvision_camera_up`` (gauge): 1 while the camera delivers frames, else 0;
* ``nightvision_camera_fps_in``, ``nightvision_camera_fps_out`` (gauges): frames per second read from the
  camera, and enhanced and written, over the last 2 s;
* ``nightvision_camera_latency_p50_seconds``, ``nightvision_camera_latency_p95_seconds`` (gauges): capture to
  written, median and 95th percentile over the current run's last 10,000 frames (NaN before the first);
* ``nightvision_camera_frames_in_total``, ``nightvision_camera_frames_out_total`` (counters): frames read, and
  enhanced and written;
* ``nightvision_camera_dropped_frames_total`` (counter): frames the camera delivered that were never shown:
  stale ones replaced by a newer frame, those in flight at a stop, and those the source skipped while busy;
* ``nightvision_camera_reconnects_total`` (counter): times a network stream was reopened by its source;
* ``nightvision_camera_restarts_total`` (counter): times the supervisor restarted the camera's pipeline;
* ``nightvision_camera_info`` (gauge, always 1): the camera's ``model`` as a label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nightvision.cluster.supervisor import CameraView

__all__ = ["CONTENT_TYPE", "Metric", "camera_metrics", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Metric:
    """One metric family: its name, ``gauge`` or ``counter``, help text, and how to read it off a camera."""

    name: str
    kind: str
    help: str
    value: Callable[[CameraView], float]


METRICS = (
    Metric("nightvision_camera_up", "gauge", "1 while the camera delivers frames, else 0.", lambda v: v.state == "up"),
    Metric(
        "nightvision_camera_fps_in", "gauge", "Frames per second read from the camera (last 2 s).", lambda v: v.fps_in
    ),
    Metric(
        "nightvision_camera_fps_out", "gauge", "Frames per second enhanced and written (last 2 s).", lambda v: v.fps_out
    ),
    Metric(
        "nightvision_camera_latency_p50_seconds",
        "gauge",
        "Capture to written latency, median over the current run's last 10000 frames.",
        lambda v: v.latency_p50_s,
    ),
    Metric(
        "nightvision_camera_latency_p95_seconds",
        "gauge",
        "Capture to written latency, 95th percentile over the current run's last 10000 frames.",
        lambda v: v.latency_p95_s,
    ),
    Metric("nightvision_camera_frames_in_total", "counter", "Frames read from the camera.", lambda v: v.frames_in),
    Metric("nightvision_camera_frames_out_total", "counter", "Frames enhanced and written.", lambda v: v.frames_out),
    Metric(
        "nightvision_camera_dropped_frames_total",
        "counter",
        "Frames the camera delivered that were never shown (stale, in flight at a stop, skipped by the source).",
        lambda v: v.dropped,
    ),
    Metric(
        "nightvision_camera_reconnects_total",
        "counter",
        "Times a network stream was reopened by its source.",
        lambda v: v.reconnects,
    ),
    Metric(
        "nightvision_camera_restarts_total",
        "counter",
        "Times the supervisor restarted the camera's pipeline.",
        lambda v: v.restarts,
    ),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def render(metrics: Sequence[tuple[Metric, Sequence[tuple[dict[str, str], float]]]]) -> str:
    """The exposition text of ``(metric, [(labels, value), ...])`` families, each with HELP and TYPE."""
    lines: list[str] = []
    for metric, samples in metrics:
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{metric.name}{{{text}}} {_number(value)}" if text else f"{metric.name} {_number(value)}")
    return "\n".join(lines) + "\n"


def camera_metrics(views: Sequence[CameraView]) -> str:
    """The ``/metrics`` text for these cameras (see the module docstring)."""
    families = [(m, [({"camera": v.name}, float(m.value(v))) for v in views]) for m in METRICS]
    info = Metric("nightvision_camera_info", "gauge", "The camera's model (value always 1).", lambda v: 1.0)
    families.append((info, [({"camera": v.name, "model": v.model}, 1.0) for v in views]))
    return render(families)
