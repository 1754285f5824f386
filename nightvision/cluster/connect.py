"""Joining a Ray cluster, starting a local one, or knowing that Ray is absent.

>>> from nightvision.cluster.connect import connect
>>> ray = connect("auto")        # the cluster this machine belongs to (``ray start`` ran here)
>>> ray = connect("ray://head:10001")
>>> ray = connect(None)          # a local Ray instance for this process, or None without Ray

Every failure to connect is one :class:`~nightvision.errors.InputError` naming the address.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
from types import ModuleType

from nightvision.errors import InputError

__all__ = ["connect", "ray_available"]

log = logging.getLogger(__name__)


def ray_available() -> bool:
    """Whether Ray is installed (``pip install "nightvision[ray]"``)."""
    return importlib.util.find_spec("ray") is not None


def connect(address: str | None, *, num_cpus: int | None = None, required: bool = False) -> ModuleType | None:
    """Initialise Ray for this process and return the ``ray`` module, or ``None`` when Ray is absent.

    Args:
        address: ``"auto"`` (the cluster of this machine), ``"ray://HOST:PORT"`` (Ray Client),
            ``"HOST:PORT"`` (a head's GCS address), or ``None`` for a local instance started for this process.
        num_cpus: CPUs of a local instance (``None``: all); ignored when joining a cluster.
        required: raise instead of returning ``None`` when Ray is not installed (an address was given).
    """
    if not ray_available():
        if required or address is not None:
            raise InputError('--address needs Ray: pip install "nightvision[ray]"')
        return None
    import ray

    if ray.is_initialized():
        return ray
    if address is not None and address != "auto":
        _probe(address)  # Ray itself retries an unreachable address for minutes
    try:
        if address is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot reach the Ray cluster at {address!r}: {first}") from err
    log.info("Ray %s: %s", ray.__version__, address or "local instance")
    return ray


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when nothing listens at ``HOST:PORT`` (or ``ray://HOST:PORT``)."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InputError(f"expected a Ray address auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise InputError(f"cannot reach the Ray cluster at {address!r}: {err.strerror or err}") from err
