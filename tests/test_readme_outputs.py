"""The README's Table 2 example outputs are what the code prints (scripts/readme_outputs.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("readme_outputs", ROOT / "scripts" / "readme_outputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_table2_outputs_in_step():
    ro = _script()
    old = (ROOT / "README.md").read_text()
    kinds = [k for k, _, _ in ro.blocks(old.split("\n"))]
    assert kinds.count("table2") >= 3 and "demo" in kinds
    new, _ = ro.regenerate(old, {"table2"})
    assert ro.normalise(new) == ro.normalise(old), (
        "README outputs drifted: run `python scripts/readme_outputs.py` and commit README.md")


def test_drift_is_detected(tmp_path):
    ro = _script()
    old = (ROOT / "README.md").read_text()
    tampered = old.replace("imported 20219 samples", "imported 20218 samples", 1)
    assert tampered != old
    new, _ = ro.regenerate(tampered, {"table2"})
    assert ro.normalise(new) != ro.normalise(tampered) and ro.normalise(new) == ro.normalise(old)
    # timings and round-off are not drift
    assert ro.normalise("in 0.011 s, max |grad| 7.6e-14") == ro.normalise("in 0.003 s, max |grad| 2.1e-13")
    assert ro.normalise("S = 0.022955") != ro.normalise("S = 0.022956")


def test_demo_blocks_come_from_saved_outputs(tmp_path):
    ro = _script()
    text = "x\n<!-- output: demo -->\n```\n$ potsearch fit runs/demo\nold line\n```\ny"
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "fit.txt").write_text("new line 1\nnew line 2\n")
    new, notes = ro.regenerate(text, {"demo"}, tmp_path)
    assert "new line 1\nnew line 2\n```" in new and "old line" not in new and not notes
    new, notes = ro.regenerate(text, {"demo"}, tmp_path / "missing")
    assert new == text and notes
