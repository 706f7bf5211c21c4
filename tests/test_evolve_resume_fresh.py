"""`potsearch evolve --resume` on a run without a checkpoint starts a new search and says so in one line."""
from potsearch.cli.app import main
from potsearch.store import RunStore

from evolve_helpers import small_run


def test_resume_without_checkpoint_starts_fresh(tmp_path_factory, tmp_path, capsys):
    run = small_run(tmp_path_factory, "fresh")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("rounds: 2\nislands: 2\npopulation: 8\noffspring: 2\ncheckpoint_every: 1\n")
    assert main(["evolve", "--run", str(run), "--config", str(cfg), "--resume"]) == 0
    captured = capsys.readouterr()
    said = [ln for ln in (captured.out + captured.err).splitlines() if "no evolve checkpoint" in ln]
    assert said == ["no evolve checkpoint in this run: starting a new search"]
    with RunStore.open(run) as st:
        kinds = [e["kind"] for e in st.events(stage="evolve")]
        assert "start" in kinds and "resume" not in kinds
        assert st.checkpoint_steps("evolve")
