"""Issue acceptance: a surrogate word run collected through the real collector passes the loop test
without drift and is rejected by it with drift switched on."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _loop_p(tmp_path, name, drift):
    text = (ROOT / "agents" / "word.yaml").read_text()
    text = text.replace("  drift: 0.0", f"  drift: {drift}")
    text = text.replace("../data/words_sum100.tsv", str(ROOT / "data" / "words_sum100.tsv"))
    agent = tmp_path / f"{name}.yaml"
    agent.write_text(text)
    run = tmp_path / name
    py = [sys.executable, "-m", "potsearch"]
    r = subprocess.run(py + ["collect", "--agent", str(agent), "--provider", "surrogate", "--run", str(run),
                             "--max-samples", "20000", "--samples-per-state", "100", "--workers", "1",
                             "--no-progress"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert subprocess.run(py + ["fit", str(run)], capture_output=True, timeout=300).returncode == 0
    r = subprocess.run(py + ["diagnose", str(run), "--json", "--no-plots"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    loop = json.loads(r.stdout)["loop"]
    assert loop["ndf"] >= 20
    return loop["p_value"]


@pytest.mark.slow
def test_loop_test_rejects_drift_and_accepts_equilibrium(tmp_path):
    assert "drift: 0.0" in (ROOT / "agents" / "word.yaml").read_text()
    assert _loop_p(tmp_path, "eq", 0.0) > 0.01
    assert _loop_p(tmp_path, "drift", 1.0) < 1e-6
