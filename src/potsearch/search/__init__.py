"""`potsearch evolve`: island search (DEAP) of interpretable potential functions.

Modules: config (YAML -> frozen dataclasses), problem (run -> features, split, floors),
scoring (parameter fit by least action; also the sandbox task), gp (DEAP trees -> source),
llm_op (LLM proposals through litellm, checked and sandboxed), islands (rounds, migration,
resets, cache, store, checkpoints), outputs (best_potential.py, Pareto front, curves), run (driver).
See docs/evolve.md.
"""
