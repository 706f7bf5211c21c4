"""The generated CLI reference is current, and the README keeps exactly two set-up commands."""
import re
from pathlib import Path

from potsearch.cli.docgen import render

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current():
    assert (ROOT / "docs" / "cli.md").read_text() == render(), "regenerate: python -m potsearch.cli.docgen > docs/cli.md"


def test_readme_setup_commands():
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^    (\S.*)$", setup, flags=re.M)
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
