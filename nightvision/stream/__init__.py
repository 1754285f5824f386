"""Frames in motion: sources and sinks named by URI, threaded stages, the pipeline and its temporal stages.

* :mod:`~nightvision.stream.sources` — cameras, files, folders, network streams, synthetic scenes.
* :mod:`~nightvision.stream.sinks` — video files, image sequences, the MJPEG viewer, a window.
* :mod:`~nightvision.stream.stages` — one thread per stage, bounded queues, an end marker.
* :mod:`~nightvision.stream.pipeline` — capture → preprocess → inference → postprocess → sinks.
* :mod:`~nightvision.stream.temporal` — stages that look across frames (curve smoothing) and flicker figures.
"""
