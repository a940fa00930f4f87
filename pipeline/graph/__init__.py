"""Spec -> DAG of steps: topological order, cycles, roles and halos."""

from pipeline.graph.dag import Dag, Node, build_dag

__all__ = ["Dag", "Node", "build_dag"]
