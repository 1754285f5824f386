"""Files in and out: images, videos, sizes, and the rules every output follows.

* :mod:`~nightvision.io.images` — read any depth and layout; write in what the format holds.
* :mod:`~nightvision.io.video` — decode with timestamps and audio; encode H.264 keeping both.
* :mod:`~nightvision.io.atomic` — write-then-rename for every output; stale temporary files removed.
* :mod:`~nightvision.io.outputs` — outputs never overwrite inputs, never twice, never unasked.
* :mod:`~nightvision.io.sizes` — sizes written one way: ``WIDTHxHEIGHT`` or ``720p``.
"""
