"""`potsearch evolve`: island search (DEAP) of interpretable potential functions.

Modules: config (YAML -> frozen dataclasses), problem (run -> features, split, floors), candidate
(a scored candidate program), database (the programs database: islands, hall of fame, score cache,
store, checkpoint state), islands (the search's operators and scoring), controller (the one search
loop; lockstep is its ordered mode), gp and terms_op (operators), llm_op and proposers (LLM
proposals through litellm, checked and sandboxed), evaluators (sandbox and Ray), checkpoint and
resume (checked JSON checkpoints), scorecache, outputs (best_potential.py, Pareto front, curves),
run (driver). See docs/evolve.md.
"""
