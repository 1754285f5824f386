"""``rtsp://HOST:PORT/PATH`` as an output: a small built-in RTSP server that publishes the enhanced stream
as H.264, for VLC, ffplay, ffmpeg, GStreamer or a video-management system to subscribe to::

    nightvision run rtsp://cam/stream --headless -o rtsp://0.0.0.0:8554/night
    ffplay -rtsp_transport tcp rtsp://HOST:8554/night        # or: vlc rtsp://HOST:8554/night

No external server is needed. The sink binds ``HOST:PORT`` when it opens (127.0.0.1 unless another address is
given: ``0.0.0.0`` serves every interface; port 0: any free port, :attr:`RtspSink.uri` then says which) and
serves one path, over RTP/TCP (interleaved) or RTP/UDP, to any number of clients.

Frames are encoded once, in an encoder thread (PyAV's libx264, ``ultrafast``/``zerolatency``: no B-frames,
no look-ahead), only while someone watches; a key frame comes every ``gop`` frames and at once when a client
joins, so a player starts within a frame. The pipeline never waits for the server: the encoder takes the
newest frames from a short queue (what it cannot keep up with is skipped and counted in :attr:`skipped`),
and each client gets the encoded frames through its own short queue; a client that falls behind is moved on
to the next key frame instead of slowing anyone else down.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import logging
import queue
import random
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from nightvision.errors import OutputError
from nightvision.io.atomic import describe_os_error
from nightvision.stream.sinks import Sink, as_bgr8, bind_advice

__all__ = ["RtspSink", "split_annexb"]

log = logging.getLogger(__name__)

CLOCK = 90_000  # RTP clock of H.264
MTU = 1400  # RTP payload bytes per packet
_CLIENT_QUEUE = 30  # encoded frames waiting per client before it is moved on to the next key frame
_ENCODER_QUEUE = 2  # frames waiting for the encoder before the oldest is skipped
_SEND_TIMEOUT = 10.0  # a client that takes no data for this long is dropped


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an H.264 Annex-B byte stream (start codes removed)."""
    nals: list[bytes] = []
    i, n = 0, len(data)
    starts: list[int] = []
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, start in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else n
        while end > start and data[end - 1] == 0 and k + 1 < len(starts):  # a 4-byte start code's leading zero
            end -= 1
        if end > start:
            nals.append(data[start:end])
    return nals


def _payloads(nals: list[bytes]) -> list[bytes]:
    """RTP payloads (RFC 6184, packetization mode 1) of one access unit: single NAL units, or FU-A
    fragments for those larger than the MTU."""
    out: list[bytes] = []
    for nal in nals:
        if len(nal) <= MTU:
            out.append(nal)
            continue
        indicator = (nal[0] & 0xE0) | 28
        kind = nal[0] & 0x1F
        body = nal[1:]
        for pos in range(0, len(body), MTU - 2):
            start = 0x80 if pos == 0 else 0
            end = 0x40 if pos + MTU - 2 >= len(body) else 0
            out.append(bytes([indicator, start | end | kind]) + body[pos : pos + MTU - 2])
    return out


@dataclass
class _Unit:
    """One encoded frame, ready to send: its RTP payloads and timestamp."""

    payloads: list[bytes]
    timestamp: int
    key: bool


@dataclass
class _Client:
    sock: socket.socket
    address: tuple[str, int]
    session: str = ""
    interleaved: tuple[int, int] | None = None  # TCP channels
    udp: tuple[str, int] | None = None  # client RTP address
    playing: bool = False
    need_key: bool = True
    seq: int = field(default_factory=lambda: random.randrange(65536))
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    frames: int = 0
    units: queue.Queue[_Unit | None] = field(default_factory=lambda: queue.Queue(maxsize=_CLIENT_QUEUE))
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: threading.Event = field(default_factory=threading.Event)


class RtspSink(Sink):
    """A built-in RTSP server publishing the enhanced stream as H.264 (see the module docstring).

    Args:
        host: the address to bind (127.0.0.1: this machine only; 0.0.0.0: every interface).
        port: the TCP port (0: any free one).
        path: the stream's path, e.g. ``/night``.
        fps: the nominal rate announced to players.
        crf: x264 quality, 0-51 (lower is better).
        gop: frames between key frames (0: one a second).
        max_clients: connections at once; more are turned away.

    Attributes:
        frames_encoded: frames encoded so far; ``skipped``: frames the encoder could not keep up with.
        clients: how many clients are playing now; ``served``: clients served so far.
        error: why the sink stopped serving mid-run (the pipeline and the other sinks go on), or "".
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8554,
        path: str = "/night",
        *,
        fps: float = 30.0,
        crf: int = 23,
        gop: int = 0,
        max_clients: int = 64,
    ) -> None:
        self.host, self.port = host, port
        self.max_clients = max_clients
        self.path = "/" + path.strip("/")
        self.uri = f"rtsp://{host}:{port}{self.path}"
        self.fps = fps if fps > 0 else 30.0
        self.crf = crf
        self.gop = gop or max(1, round(self.fps))
        self.frames_encoded = 0
        self.skipped = 0
        self.served = 0
        self.error = ""
        self._server: socket.socket | None = None
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._mailbox: collections.deque[tuple[np.ndarray, float]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._want_key = True
        self._params: tuple[bytes, bytes] | None = None  # SPS, PPS of the current stream
        self._want_params = 0
        self._threads: list[threading.Thread] = []
        self._session = str(random.getrandbits(48))

    # --- sink ------------------------------------------------------------------------------------------
    @property
    def clients(self) -> int:
        with self._lock:
            return sum(c.playing for c in self._clients)

    def _open(self) -> None:
        try:
            server = socket.create_server((self.host, self.port), reuse_port=False)
        except OSError as err:
            raise OutputError(
                f"cannot serve RTSP on {self.host}:{self.port}: {bind_advice(err, f'rtsp://{self.host}:PORT{self.path}')}"
            ) from err
        self._server = server
        self.port = server.getsockname()[1]
        self.uri = f"rtsp://{self.host}:{self.port}{self.path}"
        for name, target in (("rtsp-accept", self._accept), ("rtsp-encoder", self._encode_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.warning("RTSP stream at %s", self.uri)

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        if self.error:
            return
        with self._cond:
            if len(self._mailbox) >= _ENCODER_QUEUE:
                self._mailbox.popleft()
                self.skipped += 1
            self._mailbox.append((frame, time.monotonic()))
            self._cond.notify_all()

    def _close(self) -> None:
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            self._drop(client)
        for thread in self._threads:
            thread.join(2.0)

    # --- encoder -----------------------------------------------------------------------------------------
    def _encode_loop(self) -> None:
        try:
            self._encode_frames()
        except Exception as err:  # the pipeline and the other sinks go on without this one
            self.error = f"RTSP output {self.uri} stopped: {err}"
            log.error("%s", self.error)
            with self._lock:
                clients = list(self._clients)
            for client in clients:
                self._drop(client)

    def _encode_frames(self) -> None:
        import av
        from av.video.frame import PictureType

        codec: Any = None
        size = (0, 0)
        while not self._closed.is_set():
            with self._cond:
                if not self._mailbox:
                    self._cond.wait(0.5)
                if not self._mailbox:
                    continue
                frame, captured = self._mailbox.popleft()
            if not self.clients and not self._want_params:
                self._want_key = True  # nobody watches: encode nothing; the next viewer starts on a key frame
                continue
            image = as_bgr8(frame)
            h, w = image.shape[0] & ~1, image.shape[1] & ~1  # 4:2:0 needs even sizes
            if (w, h) != size:
                codec = av.CodecContext.create("libx264", "w")
                codec.width, codec.height, codec.pix_fmt = w, h, "yuv420p"
                codec.time_base = Fraction(1, CLOCK)
                codec.framerate = Fraction(self.fps).limit_denominator(1001)
                codec.options = {
                    "preset": "ultrafast",
                    "tune": "zerolatency",
                    "crf": str(self.crf),
                    "forced-idr": "1",
                    "x264-params": f"keyint={self.gop}:min-keyint={self.gop}:scenecut=0",
                }
                size, self._params, self._want_key = (w, h), None, True
            video = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="bgr24")
            video.pts = round(captured * CLOCK)
            if self._want_key:
                video.pict_type = PictureType.I
                self._want_key = False
            for packet in codec.encode(video):
                self._publish(bytes(packet), packet.is_keyframe, video.pts)

    def _publish(self, data: bytes, key: bool, pts: int) -> None:
        nals = split_annexb(data)
        if key:
            sps = next((n for n in nals if n[0] & 0x1F == 7), None)
            pps = next((n for n in nals if n[0] & 0x1F == 8), None)
            if sps and pps and self._params != (sps, pps):
                with self._cond:
                    self._params = (sps, pps)
                    self._cond.notify_all()
        unit = _Unit(_payloads([n for n in nals if n[0] & 0x1F != 9]), pts % 2**32, key)
        self.frames_encoded += 1
        with self._lock:
            clients = [c for c in self._clients if c.playing]
        for client in clients:
            if client.need_key and not key:
                continue
            try:
                client.units.put_nowait(unit)
                client.need_key = False
            except queue.Full:  # it falls behind: start it over at the next key frame
                with contextlib.suppress(queue.Empty):
                    while True:
                        client.units.get_nowait()
                client.need_key = True
                self._want_key = True
                log.info("RTSP client %s:%d fell behind; skipping to the next key frame", *client.address)

    # --- server ------------------------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._server is not None
        while not self._closed.is_set():
            try:
                sock, address = self._server.accept()
            except OSError:
                return
            with self._lock:
                full = len(self._clients) >= self.max_clients
            if full:
                log.info("RTSP client %s:%d turned away: %d clients already", *address[:2], self.max_clients)
                sock.close()
                continue
            sock.settimeout(_SEND_TIMEOUT)
            client = _Client(sock, address[:2])
            with self._lock:
                self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), name="rtsp-client", daemon=True).start()

    def _drop(self, client: _Client) -> None:
        if client.closed.is_set():
            return
        client.closed.set()
        client.playing = False
        with contextlib.suppress(queue.Full):
            client.units.put_nowait(None)
        with contextlib.suppress(OSError):
            client.sock.shutdown(socket.SHUT_RDWR)
        client.sock.close()
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)

    def _serve(self, client: _Client) -> None:
        """Answer one client's RTSP requests until it leaves."""
        buf = b""
        udp: socket.socket | None = None
        try:
            while not client.closed.is_set():
                message, buf = _next_message(client, buf)
                if message is None:
                    return
                method, url, headers = message
                reply, extra, body, udp = self._answer(client, method, url, headers, udp)
                _send(client, reply, extra, body, headers.get("cseq", "0"))
                if method == "PLAY" and reply.startswith("200"):
                    client.playing = True
                    self.served += 1
                    self._want_key = True
                    threading.Thread(target=self._stream, args=(client, udp), name="rtsp-send", daemon=True).start()
                elif method == "TEARDOWN":
                    return
        except OSError:
            return
        finally:
            self._drop(client)
            if udp is not None:
                udp.close()

    def _answer(
        self, client: _Client, method: str, url: str, headers: dict[str, str], udp: socket.socket | None
    ) -> tuple[str, dict[str, str], str, socket.socket | None]:
        """The status, headers and body answering one request (and the UDP socket of the session)."""
        public = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
        if self.error:
            return "503 Service Unavailable", {}, "", udp
        if method == "OPTIONS":
            return "200 OK", {"Public": public}, "", udp
        if method in ("GET_PARAMETER", "SET_PARAMETER", "PAUSE"):
            return "200 OK", {"Session": client.session} if client.session else {}, "", udp
        path = urllib.parse.urlsplit(url).path.rstrip("/") if "://" in url else url.rstrip("/")
        if method == "TEARDOWN":
            return "200 OK", {}, "", udp
        if path not in (self.path, f"{self.path}/trackID=0"):
            log.info("RTSP client %s:%d asked for %s; this server has %s", *client.address, path, self.path)
            return "404 Not Found", {}, "", udp
        if method == "DESCRIBE":
            base = f"rtsp://{self._local_host(client)}:{self.port}{self.path}/"
            sdp = self._sdp(client)
            return "200 OK", {"Content-Base": base, "Content-Type": "application/sdp"}, sdp, udp
        if method == "SETUP":
            transport = headers.get("transport", "")
            client.session = client.session or f"{random.getrandbits(40):x}"
            session = f"{client.session};timeout=60"
            if "RTP/AVP/TCP" in transport or "interleaved" in transport:
                channels = _param(transport, "interleaved") or "0-1"
                a, _, b = channels.partition("-")
                client.interleaved = (int(a), int(b or int(a) + 1))
                reply = f"RTP/AVP/TCP;unicast;interleaved={client.interleaved[0]}-{client.interleaved[1]}"
                return "200 OK", {"Transport": reply, "Session": session}, "", udp
            ports = _param(transport, "client_port")
            if not ports or "multicast" in transport:
                return "461 Unsupported Transport", {}, "", udp
            rtp = int(ports.partition("-")[0])
            if udp is None:
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.bind((self.host if self.host not in ("", "0.0.0.0") else "0.0.0.0", 0))
            client.udp = (client.address[0], rtp)
            server_port = udp.getsockname()[1]
            reply = f"RTP/AVP;unicast;client_port={ports};server_port={server_port}-{server_port + 1}"
            return "200 OK", {"Transport": reply, "Session": session}, "", udp
        if method == "PLAY":
            if client.interleaved is None and client.udp is None:
                return "455 Method Not Valid in This State", {}, "", udp
            info = f"url=rtsp://{self._local_host(client)}:{self.port}{self.path}/trackID=0;seq={client.seq}"
            return "200 OK", {"Session": client.session, "Range": "npt=0.000-", "RTP-Info": info}, "", udp
        return "501 Not Implemented", {}, "", udp

    def _local_host(self, client: _Client) -> str:
        return str(client.sock.getsockname()[0])

    def _sdp(self, client: _Client) -> str:
        with self._cond:  # the parameter sets come with the first key frame: wait a little for them
            self._want_params += 1
            self._want_key = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._params is not None or self._closed.is_set(), 3.0)
            self._want_params -= 1
            params = self._params
        fmtp = "packetization-mode=1"
        if params is not None:
            sets = ",".join(base64.b64encode(p).decode() for p in params)
            fmtp += f";profile-level-id={params[0][1:4].hex().upper()};sprop-parameter-sets={sets}"
        host = self._local_host(client)
        return (
            f"v=0\r\no=- {self._session} 1 IN IP4 {host}\r\ns=nightvision\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
            "a=control:*\r\na=range:npt=0-\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            f"a=fmtp:96 {fmtp}\r\na=framerate:{self.fps:g}\r\na=control:trackID=0\r\n"
        )

    def _stream(self, client: _Client, udp: socket.socket | None) -> None:
        """Send one client its encoded frames as RTP packets."""
        try:
            while not client.closed.is_set():
                try:
                    unit = client.units.get(timeout=0.5)
                except queue.Empty:
                    continue
                if unit is None:
                    return
                last = len(unit.payloads) - 1
                packets = []
                for i, payload in enumerate(unit.payloads):
                    marker = 0x80 if i == last else 0
                    head = bytes([0x80, marker | 96]) + client.seq.to_bytes(2, "big")
                    head += unit.timestamp.to_bytes(4, "big") + client.ssrc.to_bytes(4, "big")
                    client.seq = (client.seq + 1) % 65536
                    packets.append(head + payload)
                if client.interleaved is not None:
                    channel = client.interleaved[0]
                    data = b"".join(bytes([0x24, channel]) + len(p).to_bytes(2, "big") + p for p in packets)
                    with client.lock:
                        client.sock.sendall(data)
                elif udp is not None and client.udp is not None:
                    for p in packets:
                        udp.sendto(p, client.udp)
                client.frames += 1
        except OSError as err:
            log.info("RTSP client %s:%d left (%s)", *client.address, describe_os_error(err))
        finally:
            self._drop(client)


def _param(transport: str, name: str) -> str:
    for part in transport.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def _next_message(client: _Client, buf: bytes) -> tuple[tuple[str, str, dict[str, str]] | None, bytes]:
    """The next RTSP request from a client (interleaved RTCP frames it sends are skipped), or None when it
    left; and what is left of the buffer."""
    while True:
        if buf[:1] == b"$":
            if len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[2:4], "big"):
                buf = buf[4 + int.from_bytes(buf[2:4], "big") :]
                continue
        else:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head = buf[:end].decode("latin-1").split("\r\n")
                headers = {}
                for line in head[1:]:
                    key, _, value = line.partition(":")
                    headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if len(buf) >= end + 4 + length:
                    buf = buf[end + 4 + length :]
                    parts = head[0].split()
                    if len(parts) < 2:
                        return ("BAD", "", headers), buf
                    return (parts[0].upper(), parts[1], headers), buf
        if len(buf) > 1 << 20:
            return None, b""  # not RTSP
        try:
            data = client.sock.recv(65536)
        except TimeoutError:
            if client.closed.is_set():
                return None, b""
            continue
        if not data:
            return None, b""
        buf += data


def _send(client: _Client, status: str, headers: dict[str, str], body: str, cseq: str) -> None:
    lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", "Server: nightvision"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body.encode())}")
    with client.lock:
        client.sock.sendall(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
