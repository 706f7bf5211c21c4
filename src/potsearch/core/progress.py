"""Progress for long stages (collect, evolve, polish), on a terminal and off it.

On a terminal: a rich bar with the count, the stage's own numbers, the elapsed time and an ETA.
Elsewhere (a pipe, a notebook, a batch job's log): one plain timestamped line on stderr every
``POTSEARCH_PROGRESS_EVERY`` seconds (default 10), the first at once and a last one at the end, e.g.::

    [20:14:05] collect word SURROGATE: 1,200/20,000 (6.0%), 35.2/s, ETA 8m54s · escape 0.0% ...

``quiet`` prints nothing. ``Ticker`` polls a counter from a thread, for stages (polish) whose inner
loop belongs to a library function.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable

ENV_EVERY = "POTSEARCH_PROGRESS_EVERY"


def _every() -> float:
    try:
        return max(0.0, float(os.environ.get(ENV_EVERY, "") or 10.0))
    except ValueError:
        return 10.0


def fmt_duration(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Progress:
    """``update(done, text)`` as often as convenient; ``close()`` once. Rate and ETA come from the
    counts seen since the first update (a resumed stage's earlier work does not inflate the rate)."""

    def __init__(self, label: str, total: int | None = None, unit: str = "", quiet: bool = False,
                 stream=None, terminal: bool | None = None, every: float | None = None):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.every = _every() if every is None else every
        if terminal is None:
            try:
                terminal = self.stream.isatty()
            except (AttributeError, ValueError):
                terminal = False
        self.bar = None
        self.t0 = time.time()
        self.done0: int | None = None
        self.done, self.text = 0, ""
        self.last_line = -1e18
        self.closed = False
        self._lock = threading.Lock()
        if quiet or not terminal:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Bar(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"),
                       TimeRemainingColumn(), console=Console(file=self.stream), transient=False)
        self.bar.start()
        self.task = self.bar.add_task(label, total=total, stats="")

    def rate(self) -> float | None:
        el = time.time() - self.t0
        if self.done0 is None or el <= 0:
            return None
        return (self.done - self.done0) / el

    def eta(self) -> float | None:
        r = self.rate()
        if self.total is None or not r:
            return None
        return max(0, self.total - self.done) / r

    def line(self) -> str:
        head = f"{self.done:,}/{self.total:,} ({self.done / self.total:.1%})" if self.total else f"{self.done:,}"
        if self.unit:
            head += f" {self.unit}"
        r, e = self.rate(), self.eta()
        parts = [head, f"{fmt_duration(time.time() - self.t0)} elapsed"]
        if r is not None and time.time() - self.t0 > 0.5:
            parts.append(f"{r:,.1f}/s")
        if e is not None and self.done < (self.total or 0):
            parts.append(f"ETA {fmt_duration(e)}")
        tail = f" · {self.text.strip()}" if self.text.strip() else ""
        return f"[{time.strftime('%H:%M:%S')}] {self.label}: " + ", ".join(parts) + tail

    def update(self, done: int, text: str = "") -> None:
        with self._lock:
            if self.quiet or self.closed:
                return
            if self.done0 is None:
                self.done0, self.t0 = done, time.time()
            self.done, self.text = done, text
            if self.bar is not None:
                self.bar.update(self.task, completed=done, stats=text)
                return
            now = time.time()
            if now - self.last_line >= self.every:
                self.last_line = now
                self._write(self.line())

    def _write(self, s: str) -> None:
        try:
            self.stream.write(s + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # the reader went away: progress is not worth an error
            self.quiet = True

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self.bar is not None:
                self.bar.stop()
            elif not self.quiet and self.done0 is not None and time.time() - self.last_line > 0:
                self._write(self.line() + " (done)")


class CollectProgress(Progress):
    """The collect loop's numbers: samples, rate, escape share, tokens, cost, failed calls."""

    def update(self, done: int, rate: float = 0.0, esc: float = 0.0, tokens: int = 0, cost: float = 0.0,
               failures: int = 0, extra: str = "") -> None:  # type: ignore[override]
        s = f"escape {esc:5.1%}  tokens {tokens:,}  ${cost:.4f}"
        if failures:
            s += f"  failed calls {failures}"
        if extra:
            s += f"  {extra}"
        super().update(done, s)


def collect_progress(enabled: bool | None, total: int | None, label: str, stream=None) -> CollectProgress:
    """``enabled``: None = bar on a terminal, plain lines elsewhere; False = nothing."""
    return CollectProgress(f"collect {label}", total, unit="samples", quiet=enabled is False, stream=stream)


class RoundProgress(Progress):
    """evolve's ``on_round(search)`` hook: round count with the best action, gap, speed and spend."""

    def __call__(self, search) -> None:
        st = search.status()
        best = f"{st['best']:.5f}" if st.get("best") is not None else "-"
        gap = f"{st['gap']:.5f}" if st.get("gap") is not None else "-"
        self.update(st["round"], f"best {best} gap {gap} · {st['evals_per_s']:.0f} evals/s · "
                                 f"tokens {st['tokens']} · ${st['cost']:.4f}")


def round_progress(total: int, quiet: bool = False) -> RoundProgress:
    return RoundProgress("evolve", total, unit="rounds", quiet=quiet)


class Ticker:
    """Poll ``count()`` every 0.5 s from a thread and report it (``with Ticker(...):``)."""

    def __init__(self, label: str, count: Callable[[], int], total: int | None = None, unit: str = "",
                 quiet: bool = False, text: Callable[[], str] | None = None):
        self.p = Progress(label, total, unit=unit, quiet=quiet)
        self.count, self.text = count, text
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._loop, name="progress", daemon=True)

    def _loop(self):
        while True:
            self.p.update(int(self.count()), self.text() if self.text else "")
            if self._stop.wait(0.5):
                return

    def __enter__(self):
        if not self.p.quiet:
            self._th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._th.is_alive():
            self._th.join()
        if exc[0] is None:
            self.p.update(int(self.count()), self.text() if self.text else "")
        self.p.close()
        return False
