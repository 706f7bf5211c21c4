"""Generate docs/cli.md from the argument parser (`python -m potsearch.cli.docgen > docs/cli.md`).

A test checks that the committed file matches, so the reference never drifts from the code.
"""
from __future__ import annotations

import os


def render() -> str:
    from potsearch.cli.app import COMMANDS, build_parser

    os.environ["COLUMNS"] = "100"
    parser = build_parser(load_all=True)
    out = ["# CLI reference", "", "Generated from the parser by `python -m potsearch.cli.docgen`; do not edit by hand.", ""]
    for name in COMMANDS:
        if name not in parser.commands:
            continue
        p = parser.commands[name]
        p.prog = f"potsearch {name}"
        out += [f"## potsearch {name}", "", "```", p.format_help().rstrip(), "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
