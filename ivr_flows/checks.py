"""Graph checks of one flow: unreachable nodes and loops with no exit.

Dangling targets are reported by the loader (it knows the field's
position); here an edge to a missing node counts as a way out, so one
mistake is not reported twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from ivr_flows.model import Flow, FlowError, Node


def successors(flow: Flow, node: Node) -> list[str]:
    return [edge.target for edge in node.edges if edge.target in flow.nodes]


def reachable(flow: Flow, start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for target in successors(flow, flow.nodes[todo.pop()]):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def check_graph(flow: Flow) -> list[FlowError]:
    errors = []
    live = reachable(flow, flow.start)
    for node in flow.nodes.values():
        if node.id not in live:
            errors.append(FlowError.at(node.pos, f"unreachable node {node.id!r}: no path leads here "
                                                 f"from the start node {flow.start!r}"))
    for loop in _loops_without_exit(flow, live):
        first = min(loop, key=lambda n: flow.nodes[n].pos)
        cycle = " -> ".join(_cycle_order(flow, loop, first) + [first])
        errors.append(FlowError.at(flow.nodes[first].pos, f"loop with no exit: {cycle} never reaches a queue, "
                                                          "transfer, voicemail, hangup, return or fallback"))
    return errors


def _can_leave(flow: Flow, node: Node) -> bool:
    return node.can_exit() or any(edge.target not in flow.nodes for edge in node.edges)


def _loops_without_exit(flow: Flow, live: set[str]) -> list[set[str]]:
    predecessors: dict[str, list[str]] = {n: [] for n in flow.nodes}
    for node in flow.nodes.values():
        for target in successors(flow, node):
            predecessors[target].append(node.id)
    escapes = {n for n in flow.nodes if _can_leave(flow, flow.nodes[n])}
    todo = list(escapes)
    while todo:
        for source in predecessors[todo.pop()]:
            if source not in escapes:
                escapes.add(source)
                todo.append(source)
    doomed = live - escapes
    return [c for c in _components(flow, doomed) if len(c) > 1 or _self_loop(flow, next(iter(c)))]


def _self_loop(flow: Flow, node_id: str) -> bool:
    return node_id in successors(flow, flow.nodes[node_id])


def _components(flow: Flow, nodes: set[str]) -> list[set[str]]:
    """Strongly connected components of the subgraph on ``nodes`` (Kosaraju)."""
    order: list[str] = []
    seen: set[str] = set()
    for root in sorted(nodes):
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(_inside(flow, root, nodes)))]
        while stack:
            node_id, children = stack[-1]
            child = next(children, None)
            if child is None:
                order.append(node_id)
                stack.pop()
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(_inside(flow, child, nodes))))
    reverse: dict[str, list[str]] = {n: [] for n in nodes}
    for node_id in nodes:
        for target in _inside(flow, node_id, nodes):
            reverse[target].append(node_id)
    components, assigned = [], set()
    for root in reversed(order):
        if root in assigned:
            continue
        component, todo = {root}, [root]
        assigned.add(root)
        while todo:
            for source in reverse[todo.pop()]:
                if source not in assigned:
                    assigned.add(source)
                    component.add(source)
                    todo.append(source)
        components.append(component)
    return components


def _inside(flow: Flow, node_id: str, nodes: Iterable[str]) -> list[str]:
    return [t for t in successors(flow, flow.nodes[node_id]) if t in nodes]


def _cycle_order(flow: Flow, loop: set[str], first: str) -> list[str]:
    """A walk from ``first`` around the loop, for the message."""
    walk, current = [first], first
    while True:
        following = [t for t in successors(flow, flow.nodes[current]) if t in loop]
        nxt = next((t for t in following if t == first), None) or next((t for t in following if t not in walk), None)
        if nxt is None or nxt == first:
            return walk
        walk.append(nxt)
        current = nxt
