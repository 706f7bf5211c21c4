"""Joining a Ray cluster with a deadline and one clear line when it fails.

``probe`` checks that something listens at the head's address (a TCP connect, no Ray needed), so a
wrong address fails in a second, before any run directory is made. ``connect`` then calls
``ray.init`` in a thread with a deadline (``--ray-timeout`` or ``POTSEARCH_RAY_TIMEOUT``, seconds),
holds back Ray's own repeated connection warnings, and turns the causes it recognises into advice:

* nothing listening or a timeout → check the address and ``ray status`` on the head;
* token authentication (``InvalidAuthToken``, ``Unauthenticated``) → ``RAY_AUTH_MODE=token`` and
  the head's token in ``RAY_AUTH_TOKEN`` (or a file named by ``RAY_AUTH_TOKEN_PATH``).
"""
from __future__ import annotations

import os
import socket
import tempfile
import threading

from potsearch.core.errors import InputError

DEFAULT_TIMEOUT = 30.0
ENV_TIMEOUT = "POTSEARCH_RAY_TIMEOUT"

ADVICE_ADDRESS = ("check the address (HOST:PORT of the head's GCS, 6379 by default) and run `ray status` on "
                  "the head")
ADVICE_TOKEN = ("the cluster uses token authentication: set RAY_AUTH_MODE=token and the head's token in "
                "RAY_AUTH_TOKEN (or a file named by RAY_AUTH_TOKEN_PATH) before running potsearch")
_TOKEN_MARKS = ("invalidauthtoken", "unauthenticated", "auth token", "authentication token", "ray_auth_mode")


def timeout_seconds(value: float | None = None) -> float:
    """The connect deadline: the option, else ``POTSEARCH_RAY_TIMEOUT``, else 30 s."""
    if value is None:
        raw = os.environ.get(ENV_TIMEOUT, "").strip()
        try:
            value = float(raw) if raw else DEFAULT_TIMEOUT
        except ValueError:
            raise InputError(f"{ENV_TIMEOUT} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise InputError(f"--ray-timeout must be > 0 seconds, got {value}")
    return float(value)


def _host_port(address: str) -> tuple[str, int] | None:
    """HOST:PORT of a head address; None for ``auto`` and ``ray://`` client addresses (not probed)."""
    if address in ("auto", "local") or "://" in address:
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        raise InputError(f"--address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379)")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise InputError(f"--address {address!r}: the port {port!r} is not a number") from None


def probe(address: str, timeout: float | None = None) -> None:
    """One line and exit 2 when nothing answers at ``address`` within ``timeout`` seconds."""
    hp = _host_port(address)
    if hp is None:
        return
    t = min(timeout_seconds(timeout), 10.0)
    try:
        with socket.create_connection(hp, timeout=t):
            pass
    except socket.timeout:
        raise InputError(f"cannot join the Ray cluster at {address}: no answer within {t:g} s; {ADVICE_ADDRESS}") from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise InputError(f"cannot join the Ray cluster at {address}: nothing listening ({why}); {ADVICE_ADDRESS}") from None


def advice(text: str) -> str:
    """The advice for an error text (Ray's exception and its log lines)."""
    low = text.lower()
    if any(m in low for m in _TOKEN_MARKS):
        return ADVICE_TOKEN
    return ADVICE_ADDRESS


def connect(address: str, timeout: float | None = None, **init_kw) -> None:
    """``ray.init(address=...)`` within ``timeout`` seconds, or one clear line (InputError, exit 2)."""
    import ray

    t = timeout_seconds(timeout)
    probe(address, t)
    box: dict = {}

    def target():
        try:
            ray.init(address=address, **init_kw)
        except BaseException as exc:  # noqa: BLE001 - reported below as one line
            box["exc"] = exc

    # Ray's core writes its connection retries straight to fd 2: hold them in a file, read them
    # for the cause, and show them only if the cause is not recognised.
    log = tempfile.TemporaryFile(mode="w+b")
    saved = os.dup(2)
    try:
        os.dup2(log.fileno(), 2)
        th = threading.Thread(target=target, name="ray-connect", daemon=True)
        th.start()
        th.join(t)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    log.seek(0)
    logs = log.read().decode("utf-8", "replace")
    log.close()
    if th.is_alive():
        raise InputError(f"cannot join the Ray cluster at {address}: no connection within {t:g} s "
                         f"(--ray-timeout); {advice(logs)}")
    exc = box.get("exc")
    if exc is not None:
        what = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise InputError(f"cannot join the Ray cluster at {address}: {what}; {advice(what + ' ' + logs)}")
