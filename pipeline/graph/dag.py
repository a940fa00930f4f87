"""The step DAG: nodes in topological order with their roles and halos."""

from __future__ import annotations

import graphlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.errors import ConfigError
from pipeline.ops.catalogue import CATALOGUE
from pipeline.ops.contract import Op, OpParams

SOURCE = "input"


@dataclass(frozen=True)
class Node:
    """One step of the pipeline (or the source image, whose ``op`` is None)."""

    name: str
    op: Op | None
    params: OpParams | None
    inputs: tuple[str, ...]
    role: str

    @property
    def kind(self) -> str:
        """The op kind, or ``source``."""
        return self.op.kind if self.op else "source"

    def halo(self, ndim: int) -> tuple[int, ...]:
        """Voxels of input this step needs beyond each side of its output."""
        if self.op is None:
            return (0,) * ndim
        return self.op.halo(self.params, ndim)


@dataclass
class Dag:
    """Steps in topological order, keyed by name."""

    nodes: dict[str, Node]
    consumers: dict[str, list[str]] = field(default_factory=dict)

    def upstream(self, name: str) -> list[str]:
        """``name`` and every node it depends on, in topological order."""
        need: set[str] = set()
        stack = [name]
        while stack:
            n = stack.pop()
            if n not in need:
                need.add(n)
                stack.extend(self.nodes[n].inputs)
        return [n for n in self.nodes if n in need]


def build_dag(
    steps: dict[str, tuple[str, OpParams, tuple[str, ...]]],
    source_role: str = "image",
    where: dict[str, str] | None = None,
    ops: Mapping[str, Op] = CATALOGUE,
) -> Dag:
    """Build and check the DAG.

    Parameters
    ----------
    steps : dict
        ``name -> (op name, params, input names)`` in declaration order.
    source_role : str
        Role of the source image (``image`` or ``color``).
    where : dict, optional
        ``name -> "file:line:col steps.name"`` used in messages.
    ops : mapping, optional
        The ops step names refer to (default: the catalogue).

    Raises
    ------
    ConfigError
        Cycles, missing inputs, or roles an op does not accept; all at once.
    """
    where = where or {}
    problems = []
    sorter: graphlib.TopologicalSorter = graphlib.TopologicalSorter()
    sorter.add(SOURCE)
    for name, (_, _, inputs) in steps.items():
        sorter.add(name, *inputs)
        for i in inputs:
            if i != SOURCE and i not in steps:
                problems.append(
                    f"{where.get(name, name)}: input {i!r} names no step "
                    f"(steps: {', '.join([SOURCE, *steps])})"
                )
    if problems:
        raise ConfigError(problems)
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        first = exc.args[1][0]
        raise ConfigError(f"{where.get(first, first)}: steps form a cycle: {cycle}") from None
    nodes: dict[str, Node] = {SOURCE: Node(SOURCE, None, None, (), source_role)}
    consumers: dict[str, list[str]] = {SOURCE: []}
    for name in order:
        if name == SOURCE:
            continue
        op_name, params, inputs = steps[name]
        op = ops[op_name]
        roles = [nodes[i].role for i in inputs]
        accepts = [op.accepts] + [op.inputs[k] for k, _ in op.input_steps(params)]
        for i, r, ok in zip(inputs, roles, accepts, strict=True):
            if r not in ok:
                problems.append(
                    f"{where.get(name, name)}: op {op_name!r} expects "
                    f"{' or '.join(ok)} input, step {i!r} gives {r}"
                )
        role = op.output_role(params, roles)
        nodes[name] = Node(name, op, params, tuple(inputs), role)
        consumers[name] = []
        for i in inputs:
            consumers[i].append(name)
    problems.extend(_resample_problems(nodes, where))
    if problems:
        raise ConfigError(problems)
    return Dag(nodes, consumers)


def _resample_problems(nodes: dict[str, Node], where: dict[str, str]) -> list[str]:
    """A resize changes the grid: one may read the input (and then nothing else does),
    one may resize a step at the end of the pipeline (its labels are written)."""
    problems = []
    first = [n for n in nodes.values() if n.kind == "resample" and n.inputs == (SOURCE,)]
    last = [n for n in nodes.values() if n.kind == "resample" and n.inputs != (SOURCE,)]
    for n in first[1:] + last[1:]:
        problems.append(
            f"{where.get(n.name, n.name)}: at most one resize of the input and one "
            "of the result per pipeline"
        )
    if first:
        for n in nodes.values():
            if n.kind != "resample" and SOURCE in n.inputs:
                problems.append(
                    f"{where.get(n.name, n.name)}: reads the input image, but step "
                    f"{first[0].name!r} resizes it: read {first[0].name!r} instead"
                )
    for n in last:
        if any(n.name in m.inputs for m in nodes.values()):
            problems.append(
                f"{where.get(n.name, n.name)}: a resize of a step is the last step: "
                "nothing may read it"
            )
    return problems


def without_resample(dag: Dag) -> tuple[Dag, Node | None]:
    """The DAG with its resize of the input turned into the source (its consumers read
    the input)."""
    resample = next(
        (n for n in dag.nodes.values() if n.kind == "resample" and n.inputs == (SOURCE,)), None
    )
    if resample is None:
        return dag, None
    nodes: dict[str, Node] = {SOURCE: Node(SOURCE, None, None, (), resample.role)}
    consumers: dict[str, list[str]] = {SOURCE: []}
    for name, n in dag.nodes.items():
        if name in (SOURCE, resample.name):
            continue
        inputs = tuple(SOURCE if i == resample.name else i for i in n.inputs)
        nodes[name] = Node(name, n.op, n.params, inputs, n.role)
        consumers[name] = []
        for i in inputs:
            consumers[i].append(name)
    return Dag(nodes, consumers), resample


def with_input_spacing(dag: Dag, spacing: tuple[float, ...]) -> Dag:
    """The DAG with every ``spacing: input`` parameter set to the image's voxel size."""
    nodes = {}
    for name, n in dag.nodes.items():
        if n.params is not None:
            n = Node(name, n.op, n.params.with_input_spacing(spacing), n.inputs, n.role)
        nodes[name] = n
    return Dag(nodes, dag.consumers)
