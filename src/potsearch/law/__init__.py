"""The law language: what a candidate potential is and means. Features of states, the evaluator of
candidate programs (``interp``: the one semantics, embedded in best_potential.py), the checks of their
values, scoring (least-action parameter fits), the optimisers of polish, the formula form (sympy),
simplification, model selection, attribution, the grammar of constrained decoding."""
