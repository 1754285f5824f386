"""A small real RTSP server for the tests: GStreamer's RTSP server, serving a camera-like H.264 stream.

Run it with the SYSTEM Python (the GObject bindings live there, not in the venv); it needs
``gir1.2-gst-rtsp-server-1.0``, ``python3-gst-1.0`` and the x264 encoder (``gstreamer1.0-plugins-ugly``)::

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --path /cam [--user U --password P]

It prints ``READY rtsp://127.0.0.1:PORT/PATH`` on stdout once it listens, then serves until killed
(SIGTERM or SIGINT). Pure Python besides GStreamer (the system Python has no numpy).

Sources (``--source``):

* ``frames`` (default): a dark grey scene with a bright moving bar, made here frame by frame, with the frame
  number drawn at the top as a stripe code (:mod:`nightvision.stream.stripecode`'s layout: 32 cells of the
  number, then 32 cells of its complement, 16 rows each). The number is ``int(time.monotonic() * fps) mod
  2**32`` — the system's monotonic clock, the same for every process — so a restarted server goes on
  counting where the clock is, as a camera does, and a client can count exactly the frames it lost.
* ``videotestsrc``: GStreamer's moving ball, with a running time overlay (no code).

Camera-like H.264: x264 ``zerolatency``, a key frame every second, SPS/PPS with every key frame; one shared
pipeline for every client.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

BAND = 16  # rows per band of the stripe code
BITS = 32


def code_rows(value: int, width: int, black: int = 0, white: int = 255) -> bytes:
    """The 2 * BAND rows of the stripe code of ``value`` for a GRAY8 frame ``width`` wide."""
    cell = width // BITS
    top = bytearray()
    bottom = bytearray()
    for i in range(BITS):
        bit = (value >> (BITS - 1 - i)) & 1
        top += bytes([white if bit else black]) * cell
        bottom += bytes([black if bit else white]) * cell
    pad = bytes([black]) * (width - cell * BITS)
    return (bytes(top) + pad) * BAND + (bytes(bottom) + pad) * BAND


def frame(number: int, width: int, height: int) -> bytes:
    """One GRAY8 frame: the code of ``number``, then a dark scene (24/255) with a bright bar (120) moving
    right by 4 pixels a frame."""
    x = (number * 4) % width
    bar = 16
    row = bytearray(b"\x18" * width)
    row[x : x + bar] = b"\x78" * len(row[x : x + bar])
    return code_rows(number % 2**BITS, width) + bytes(row) * (height - 2 * BAND)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (the READY line says which)")
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--source", choices=["frames", "videotestsrc"], default="frames")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT (width a multiple of 32, at least 64)")
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if width % 32 or width < 64 or height < 2 * BAND + 8:
        parser.error(f"--size {args.size}: the width must be a multiple of 32 (at least 64), the height >= 40")

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    encode = (
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} bitrate=1500 threads=1 "
        "! rtph264pay name=pay0 pt=96 config-interval=-1"
    )
    caps = f"video/x-raw,format=GRAY8,width={width},height={height},framerate={args.fps}/1"
    if args.source == "frames":
        launch = (
            f"( appsrc name=src is-live=true format=time do-timestamp=true caps={caps} ! videoconvert "
            f"! video/x-raw,format=I420 ! {encode} )"
        )
    else:
        launch = (
            f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
            f"framerate={args.fps}/1 ! timeoverlay ! videoconvert ! video/x-raw,format=I420 ! {encode} )"
        )
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)

    def feed(appsrc: Gst.Element, stop: threading.Event) -> None:
        last = -1
        while not stop.is_set():
            now = time.monotonic()
            n = int(now * args.fps)
            if n == last:
                time.sleep((n + 1) / args.fps - now)
                continue
            last = n
            pushed = appsrc.emit("push-buffer", Gst.Buffer.new_wrapped(frame(n, width, height)))
            if pushed != Gst.FlowReturn.OK and stop.wait(0.05):  # not playing (yet, or any more)
                return

    def configure(factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        if args.source != "frames":
            return
        appsrc = media.get_element().get_by_name_recurse_up("src")
        stop = threading.Event()
        media.connect("unprepared", lambda *_: stop.set())
        threading.Thread(target=feed, args=(appsrc, stop), daemon=True).start()

    factory.connect("media-configure", configure)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.new_from_string(
                "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )
    server.get_mount_points().add_factory(args.path, factory)
    if not server.attach(None):
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://{args.host}:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
