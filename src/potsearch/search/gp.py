"""The GP operator: deap.gp trees over the feature table, compiled to readable candidate source.

A tree is an expression over the features (terminals ``x["vowels"]`` ...) and ephemeral
constants. Every ephemeral constant is a *fitted parameter*: the compiled candidate is

    N_PARAMS = k + 1
    def potential(x, p):
        return p[0] * (<tree with its k constants as p[1] ... p[k]>)

(p[0] is an overall scale, because the action is not scale invariant). The tree's constant values
are the fit's starting point; after the fit they are written back into the tree, so children
inherit fitted values.

Primitives (numpy, vectorised; readable in the source): + - * /, neg, square, sqrt|a|, log(1+|a|),
exp, tanh. Division and exp are not protected: a candidate that produces inf/NaN on some state is
recorded with that error and dies. Bloat control: ``gp.staticLimit`` on height and on size for
crossover and every mutation (an over-limit child is replaced by a parent, DEAP's semantics).

Randomness: DEAP's operators use the ``random`` module; the search seeds it and checkpoints its
state, and everything here runs in one process in a fixed order, so a seeded run repeats exactly.
"""
from __future__ import annotations

import operator
import random

import numpy as np
from deap import base, gp

EPHEMERAL_NAME = "P"


def _ephemeral() -> float:
    """A fresh constant (the fit's starting value): uniform in [-2, 2], 3 decimals."""
    return round(random.uniform(-2.0, 2.0), 3)


# name -> (arity, numpy implementation, source template)
PRIMITIVES: dict[str, tuple[int, object, str]] = {
    "add": (2, np.add, "({0} + {1})"),
    "sub": (2, np.subtract, "({0} - {1})"),
    "mul": (2, np.multiply, "({0} * {1})"),
    "div": (2, np.divide, "({0} / {1})"),
    "neg": (1, np.negative, "(-{0})"),
    "square": (1, np.square, "({0} ** 2)"),
    "sqrt": (1, lambda a: np.sqrt(np.abs(a)), "np.sqrt(np.abs({0}))"),
    "log": (1, lambda a: np.log1p(np.abs(a)), "np.log1p(np.abs({0}))"),
    "exp": (1, np.exp, "np.exp({0})"),
    "tanh": (1, np.tanh, "np.tanh({0})"),
}
DEFAULT_PRIMITIVES = tuple(PRIMITIVES)


def make_pset(features: list[str], primitives=DEFAULT_PRIMITIVES) -> gp.PrimitiveSet:
    """A primitive set whose arguments are the feature names (valid identifiers)."""
    pset = gp.PrimitiveSet("V", len(features))
    for name in primitives:
        if name not in PRIMITIVES:
            raise ValueError(f"unknown primitive {name!r} (choose from {', '.join(PRIMITIVES)})")
        arity, fn, _ = PRIMITIVES[name]
        pset.addPrimitive(fn, arity, name=name)
    pset.addEphemeralConstant(EPHEMERAL_NAME, _ephemeral)
    pset.renameArguments(**{f"ARG{i}": f for i, f in enumerate(features)})
    return pset


def _is_ephemeral(node) -> bool:
    return isinstance(type(node), gp.MetaEphemeral)


def tree_to_expr(tree: gp.PrimitiveTree, offset: int = 1) -> tuple[str, list[float]]:
    """(expression source, constant values); constants become p[offset], p[offset+1], ... in prefix order."""
    consts: list[float] = []
    stack: list[tuple[object, list[str]]] = []
    out = ""
    for node in tree:
        stack.append((node, []))
        while stack and len(stack[-1][1]) == stack[-1][0].arity:
            nd, args = stack.pop()
            if isinstance(nd, gp.Primitive):
                text = PRIMITIVES[nd.name][2].format(*args)
            elif _is_ephemeral(nd):
                text = f"p[{offset + len(consts)}]"
                consts.append(float(nd.value))
            elif isinstance(nd.value, str):
                text = f'x["{nd.value}"]'
            else:
                text = repr(float(nd.value))
            if not stack:
                out = text
                break
            stack[-1][1].append(text)
    return out, consts


def tree_source(tree: gp.PrimitiveTree) -> tuple[str, list[float]]:
    """Candidate source in the contract format and its starting parameters (scale 1 first)."""
    expr, consts = tree_to_expr(tree, offset=1)
    src = f"N_PARAMS = {len(consts) + 1}\n\ndef potential(x, p):\n    return p[0] * {expr}\n"
    return src, [1.0] + consts


def set_constants(tree: gp.PrimitiveTree, values) -> None:
    """Write fitted values back into the tree's ephemeral constants (prefix order)."""
    it = iter(values)
    for i, node in enumerate(tree):
        if _is_ephemeral(node):
            tree[i] = make_constant(type(node), float(next(it)))


def make_constant(cls, value: float):
    """An ephemeral-constant node with a given value (without drawing a random one)."""
    node = object.__new__(cls)
    node.value = value
    return node


def dump_tree(tree: gp.PrimitiveTree) -> list:
    """Plain-data form of a tree (for checkpoints): ["f", name] | ["x", feature] | ["c", value]."""
    out = []
    for node in tree:
        if isinstance(node, gp.Primitive):
            out.append(["f", node.name])
        elif _is_ephemeral(node):
            out.append(["c", float(node.value)])
        else:
            out.append(["x", node.value])
    return out


def load_tree(data: list, pset: gp.PrimitiveSet) -> gp.PrimitiveTree:
    nodes = []
    for kind, v in data:
        if kind == "c":
            nodes.append(make_constant(pset.mapping[EPHEMERAL_NAME], v))
        else:
            nodes.append(pset.mapping[v])
    return gp.PrimitiveTree(nodes)


def make_toolbox(pset: gp.PrimitiveSet, max_height: int = 6, max_size: int = 30, init_min: int = 1,
                 init_max: int = 3) -> base.Toolbox:
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=pset, min_=init_min, max_=init_max)
    tb.register("tree", lambda: gp.PrimitiveTree(tb.expr()))
    tb.register("expr_mut", gp.genFull, min_=0, max_=2)
    tb.register("mate", gp.cxOnePoint)
    tb.register("mut_subtree", gp.mutUniform, expr=tb.expr_mut, pset=pset)
    tb.register("mut_node", gp.mutNodeReplacement, pset=pset)
    tb.register("mut_insert", gp.mutInsert, pset=pset)
    tb.register("mut_shrink", gp.mutShrink)
    tb.register("mut_const", gp.mutEphemeral, mode="one")
    for name in ("mate", "mut_subtree", "mut_node", "mut_insert", "mut_shrink", "mut_const"):
        tb.decorate(name, gp.staticLimit(key=operator.attrgetter("height"), max_value=max_height))
        tb.decorate(name, gp.staticLimit(key=len, max_value=max_size))
    return tb


MUTATIONS = ("mut_subtree", "mut_node", "mut_insert", "mut_shrink", "mut_const")


def vary(tb: base.Toolbox, a: gp.PrimitiveTree, b: gp.PrimitiveTree | None, cx_prob: float) -> tuple:
    """One child from parents a (and b): crossover with probability cx_prob (when b is given),
    else one of the mutations uniformly. Returns (child, operator name)."""
    a = gp.PrimitiveTree(list(a))
    if b is not None and random.random() < cx_prob:
        b = gp.PrimitiveTree(list(b))
        child, _ = tb.mate(a, b)
        return child, "gp:cx"
    name = random.choice(MUTATIONS)
    (child,) = getattr(tb, name)(a)
    return child, "gp:" + name[4:]


def copy_tree(tree: gp.PrimitiveTree) -> gp.PrimitiveTree:
    """A copy of a tree (its nodes are never changed in place: ``set_constants`` replaces them)."""
    return gp.PrimitiveTree(list(tree))
