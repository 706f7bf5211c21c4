"""The parent <-> worker message format: frames of an 8-byte big-endian length and a body.

Parent -> worker (trusted, pickle): ``("payload", part_id, pickled value)`` caches a big payload
value in the worker; ``("drop", part_id, None)`` forgets it; ``("call", seq, src, task, encoded
payload, checked)`` runs one candidate, the payload encoded by :meth:`PayloadParts.encode` (big
values by part id, small ones inline).

Worker -> parent (JSON only, never pickle: a candidate may influence it): first the startup report
(or ``{"startup_error": ...}``), then one ``{"ok", "value" | "error", "seq", "cpu", "recycle"?}`` per
call, the value converted by the strict :func:`to_plain`. The parent validates every reply again
(pool.py: size at most ``MAX_RESULT_BYTES``, JSON, the call's sequence number, finite numbers).
"""
from __future__ import annotations

import json
import os
import pickle
import struct
from collections import OrderedDict
from typing import Any

import numpy as np

from potsearch.law.values import InvalidResult

HDR = struct.Struct("!Q")
MAX_RESULT_BYTES = 32 * 1024 * 1024
MAX_RESULT_VALUES = 2_000_000  # numbers, strings and containers in one reply
CACHE_MIN_BYTES = 16 * 1024  # payload values at least this big (roughly) are cached in the workers
MAX_CACHED_PARTS = 64
_EMPTY: dict = {}


# ----------------------------------------------------------------------------------- framing
def write_frame(fd: int, body: bytes) -> None:
    """One length-prefixed frame (both sides)."""
    data = memoryview(HDR.pack(len(body)) + body)
    while data:
        n = os.write(fd, data)
        data = data[n:]


def read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            raise EOFError
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes:
    (n,) = HDR.unpack(read_exact(fd, HDR.size))
    return read_exact(fd, n)


def send_pickle(fd: int, msg: tuple) -> None:
    """Parent -> worker."""
    write_frame(fd, pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))


def send_json(fd: int, msg: dict) -> None:
    """Worker -> parent."""
    write_frame(fd, json.dumps(msg, allow_nan=True).encode())


# ----------------------------------------------------------------------------------- payloads
# A payload dict's big values (arrays, long lists, dicts of those) are pickled and sent once per
# worker, then cached there by the *identity* of the object in the parent; small values travel
# inline with each call. So ``dict(base, seed=s, source=src)`` per call costs only the small
# values. The parent keeps a strong reference to every cached object, so its id cannot be
# reused while cached. Do not mutate a value after passing it: pass a new object instead.


class PayloadParts:
    """The parent's side of the payload cache: big values, pickled once, numbered by identity."""

    def __init__(self) -> None:
        self._parts: OrderedDict[int, tuple[Any, int, bytes]] = OrderedDict()  # id -> (obj, pid, pickle)
        self.blobs: dict[int, bytes] = {}  # part id -> pickle
        self._seq = 0

    def part_id(self, obj: Any) -> int:
        key = id(obj)
        hit = self._parts.get(key)
        if hit is not None:
            self._parts.move_to_end(key)
            return hit[1]
        self._seq += 1
        blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        self._parts[key] = (obj, self._seq, blob)
        self.blobs[self._seq] = blob
        return self._seq

    def encode(self, payload: Any) -> tuple:
        """-> (whole_id | None, ((key, part_id), ...), inline pickle | None)"""
        if payload is None:
            payload = _EMPTY
        if type(payload) is not dict:
            return (self.part_id(payload), (), None)
        refs, inline = [], {}
        for k, v in payload.items():
            if isinstance(v, (dict, list, tuple, np.ndarray)) and rough_size(v) >= CACHE_MIN_BYTES:
                refs.append((k, self.part_id(v)))
            else:
                inline[k] = v
        blob = pickle.dumps(inline, protocol=pickle.HIGHEST_PROTOCOL) if inline else None
        return (None, tuple(refs), blob)

    def trim(self) -> list[int]:
        """Forget the least recently used parts beyond ``MAX_CACHED_PARTS``; -> their ids (the pool
        tells the workers holding them to drop them)."""
        dropped = []
        while len(self._parts) > MAX_CACHED_PARTS:
            _, (_, pid, _) = self._parts.popitem(last=False)
            self.blobs.pop(pid, None)
            dropped.append(pid)
        return dropped


def decode_payload(encoded: tuple, parts: dict[int, Any]) -> Any:
    """The worker's side of :meth:`PayloadParts.encode`: ``parts`` holds the cached values."""
    whole, refs, inline = encoded
    if whole is not None:
        return parts[whole]
    payload = {k: parts[pid] for k, pid in refs}
    if inline is not None:
        payload.update(pickle.loads(inline))
    return payload


def rough_size(v: Any, depth: int = 2) -> int:
    """A cheap size estimate (no pickling): enough to tell a feature table from a seed."""
    if isinstance(v, np.ndarray):
        return int(v.nbytes)
    if isinstance(v, (str, bytes)):
        return len(v)
    if isinstance(v, (list, tuple)):
        if depth and v:
            return len(v) * max(8, rough_size(v[0], depth - 1))
        return 8 * len(v)
    if isinstance(v, dict):
        if depth:
            return sum(rough_size(x, depth - 1) for _, x in zip(range(1000), v.values()))
        return 8 * len(v)
    return 8


# ----------------------------------------------------------------------------------- replies
def to_plain(v, budget: list[int]):
    """Strictly convert a task's return value to JSON types (exact types only); ``budget[0]`` is the
    number of values still allowed (start from ``[MAX_RESULT_VALUES]``)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise InvalidResult("result too large")
    t = type(v)
    if v is None or t is bool or t is float:
        return v
    if t is int:
        if abs(v) > 2**63:
            raise InvalidResult("integer in result too large")
        return v
    if t is str:
        if len(v) > 10_000:
            raise InvalidResult("string in result too long")
        return v
    if t in (np.float64, np.float32, np.float16):
        return float(v)
    if t in (np.int64, np.int32, np.int16, np.int8, np.uint64, np.uint32, np.uint16, np.uint8):
        return int(v)
    if t is np.bool_:
        return bool(v)
    if t is np.ndarray:
        if v.dtype.kind not in "biuf":
            raise InvalidResult(f"array of dtype {v.dtype} in result")
        if v.size > budget[0]:
            raise InvalidResult(f"result too large (array of {v.size} values)")
        budget[0] -= v.size
        return v.tolist()
    if t is dict:
        out = {}
        for k, x in v.items():
            if type(k) is not str:
                raise InvalidResult(f"result dict key of type {type(k).__name__}")
            out[k] = to_plain(x, budget)
        return out
    if t in (list, tuple):
        return [to_plain(x, budget) for x in v]
    raise InvalidResult(f"not JSON-able: {t.__name__}")
