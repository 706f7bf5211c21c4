"""The report page's HTML: safe escaping, number formatting, tables, embedded figures and the page
skeleton (inline CSS; every figure a data: URI, so the page loads nothing)."""
from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from potsearch.core.textsafe import printable


def esc(x) -> str:
    """Text for the page: control characters (model text: ANSI escapes, bidi overrides, ...) shown as
    ``\\xNN`` escapes (``textsafe.printable``; newlines and tabs kept), then HTML-escaped."""
    return html.escape(printable(str(x)), quote=True)


def fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    if isinstance(v, (list, tuple)):
        if len(v) <= 6 and all(not isinstance(i, (list, dict)) for i in v):
            return ", ".join(fmt(i) for i in v)
        return f"[{len(v)} items]"
    if isinstance(v, dict):
        return f"{{{len(v)} keys}}"
    return str(v)


class Raw(str):
    """A table cell that is already HTML."""


def badge(status: str, label: str | None = None) -> str:
    """A status badge: its class is the status (colour), its text the label (``WEAK EVIDENCE``) or the status."""
    return f'<span class="badge {esc(status)}">{esc(label or status)}</span>'


def png_data(png: bytes) -> str:
    """A PNG as a data: URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class Page:
    """Markup helpers of one page; numbers its figures in the order they are placed."""

    def __init__(self) -> None:
        self.n_figures = 0

    def figure(self, path: Path, caption: str, alt: str | None = None, wide: bool = False) -> str:
        """An embedded PNG file with a numbered caption ('' when the file is missing). ``wide`` spans the grid."""
        path = Path(path)
        if not path.is_file():
            return ""
        self.n_figures += 1
        return (f'<figure class="{"wide" if wide else ""}"><img src="{png_data(path.read_bytes())}" '
                f'alt="{esc(alt or caption)}">'
                f"<figcaption><b>Figure {self.n_figures}.</b> {esc(caption)}</figcaption></figure>")

    def png_figure(self, png: bytes, caption: str, alt: str) -> str:
        """PNG bytes drawn for the page, with a numbered caption."""
        self.n_figures += 1
        return (f'<figure><img src="{png_data(png)}" alt="{esc(alt)}">'
                f"<figcaption><b>Figure {self.n_figures}.</b> {esc(caption)}</figcaption></figure>")

    @staticmethod
    def table(header: list[str], rows: list[list], cls: str = "") -> str:
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, Raw) else esc(fmt(c))}</td>" for c in r)
                       + "</tr>" for r in rows)
        return f'<div class="tw"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'

    def kv_table(self, d: dict, skip: tuple = ()) -> str:
        rows = []
        for k, v in d.items():
            if k in skip:
                continue
            if isinstance(v, dict) and len(v) <= 12:
                rows += [[f"{k}.{k2}", v2] for k2, v2 in v.items() if not isinstance(v2, (dict, list)) or
                         (isinstance(v2, list) and len(v2) <= 6)]
            else:
                rows.append([k, v])
        return self.table(["key", "value"], rows, "kv")


def failed_section(exc: BaseException) -> str:
    """What replaces a section that raised (one broken stage folder must not lose the whole report)."""
    return f'<p class="warn">this section failed to render: {esc(type(exc).__name__)}: {esc(exc)}</p>'


def document(name: str, stamp: str, sections: list[tuple[str, str, str]],
             subtitle: str = "Hidden potential and detailed balance of an LLM agent") -> str:
    """The whole page: a header for run ``name`` (``subtitle`` under it) generated at ``stamp``, a
    navigation bar and the ``(key, title, html)`` sections in order."""
    nav = "".join(f'<a href="#{esc(key)}">{esc(title)}</a>' for key, title, _ in sections)
    body = "".join(f'<section id="{esc(key)}"><h2>{esc(title)}</h2>{content}</section>'
                   for key, title, content in sections)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>potsearch report — {esc(name)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>potsearch report: {esc(name)}</h1><p>{esc(subtitle)} "
            f"· generated {stamp}</p></header><nav>{nav}</nav><main>{body}</main>"
            "<footer>Self-contained page: every figure is embedded; no external resources.</footer></body></html>")


CSS = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--accent:#2563eb;--good:#059669;--bad:#dc2626;--warn:#b45309}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#0f172a;color:#fff;padding:28px 40px}header h1{margin:0;font-size:26px}header p{margin:4px 0 0;color:#cbd5e1}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:8px 40px;z-index:2}
nav a{color:var(--accent);text-decoration:none;margin-right:18px;font-size:14px}
main{max-width:1180px;margin:0 auto;padding:16px 40px 60px}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:20px 26px;margin:22px 0}
h2{margin:0 0 12px;font-size:20px}h3{font-size:16px;margin:18px 0 8px}
.verdict{font-size:19px;padding:14px 18px;border-radius:8px;background:#fffbeb;border-left:6px solid var(--warn)}
.verdict.consistent{background:#ecfdf5;border-color:var(--good)}.verdict.violated{background:#fef2f2;border-color:var(--bad)}
.badge{display:inline-block;font-size:12px;font-weight:700;text-transform:uppercase;letter-spacing:.04em;padding:2px 8px;border-radius:99px;background:#fef3c7;color:var(--warn);vertical-align:middle}
.badge.consistent,.badge.pass{background:#d1fae5;color:var(--good)}.badge.violated,.badge.FAIL{background:#fee2e2;color:var(--bad)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin:16px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 14px}.num{font-size:22px;font-weight:700}.lab{color:var(--muted);font-size:13px}
.tw{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:13.5px;margin:8px 0}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f1f5f9;font-weight:600}tbody tr:nth-child(even){background:#fafafa}table.kv{width:auto;min-width:420px}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:18px;margin-top:14px}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:10px;background:#fff}
figure img{width:100%;height:auto;display:block}figure.wide{grid-column:1/-1}figure.wide img{max-width:980px;margin:0 auto}
.split{display:grid;grid-template-columns:minmax(360px,1fr) minmax(420px,1.2fr);gap:20px;align-items:start}figcaption{font-size:13px;color:var(--muted);margin-top:6px}
details{margin:10px 0}summary{cursor:pointer;font-weight:600}
.missing{color:var(--muted);font-style:italic}.muted{color:var(--muted);font-size:13.5px}.warn{color:var(--warn)}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:8px;overflow-x:auto;font-size:12.5px}
code{background:#f1f5f9;padding:1px 5px;border-radius:4px}
.laws{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;margin:8px 0}.law h3{margin-top:0}
p.formula{font:600 16px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;background:#f1f5f9;padding:8px 12px;border-radius:6px;overflow-x:auto}
img.formula{max-width:100%;height:auto;display:block;margin:6px 0}footer{color:var(--muted);font-size:12px;text-align:center;margin:30px}
"""
