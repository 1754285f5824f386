"""Frames in motion: sources and sinks named by URI, threaded stages, the one pipeline, and the jobs on it.

* :mod:`~nightvision.stream.sources` — cameras, files, folders, images, network streams, synthetic scenes.
* :mod:`~nightvision.stream.sinks` — video and image files, image sequences, the MJPEG viewer, a window.
* :mod:`~nightvision.stream.stages` — one thread per stage, bounded queues, an end marker.
* :mod:`~nightvision.stream.frame_stages` — the protocol of per-frame steps before and after the model.
* :mod:`~nightvision.stream.pipeline` — source → [pre stages] → preprocess → infer → postprocess → [post
  stages] → sinks, for files and live sources alike.
* :mod:`~nightvision.stream.jobs` — ``nightvision enhance`` (files, folders) and ``nightvision run`` on it.
* :mod:`~nightvision.stream.temporal` — stages that look across frames (curve smoothing) and flicker figures.
"""
