"""A flow as a Graphviz diagram.

``to_dot(flow)`` writes DOT text (no library needed); ``render`` turns it
into SVG/PNG/PDF with the ``dot`` program when it is installed, and
otherwise writes the DOT text next to the requested file and says so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ivr_flows.model import (
    CallbackNode, CollectNode, ConditionNode, Flow, GotoNode, LookupNode, MenuNode, Node, PlayNode, QueueNode,
    SetNode, SubflowNode, TicketNode, TransferNode, VerifyNode, VoicemailNode,
)

STYLE = {
    "play": ("box", "#e8f0fe"), "menu": ("diamond", "#fff4d6"), "collect": ("parallelogram", "#fff4d6"),
    "verify": ("parallelogram", "#fce8e6"),
    "lookup": ("cylinder", "#e6f4ea"), "condition": ("diamond", "#f3e8fd"), "set": ("note", "#f1f3f4"),
    "queue": ("doubleoctagon", "#d2e3fc"), "transfer": ("doubleoctagon", "#d2e3fc"),
    "voicemail": ("doubleoctagon", "#d2e3fc"), "callback": ("cylinder", "#e6f4ea"),
    "ticket": ("cylinder", "#e6f4ea"), "hangup": ("Msquare", "#fce8e6"), "goto": ("cds", "#f1f3f4"),
    "subflow": ("component", "#f1f3f4"), "return": ("Msquare", "#fce8e6"),
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _detail(node: Node) -> str:
    if isinstance(node, PlayNode):
        return ", ".join(i.prompt if i.kind == "prompt" else f"{i.kind} {i.expr.source if i.expr else ''}"
                         for i in node.items)
    if isinstance(node, (MenuNode, CollectNode)):
        text = " & ".join(node.prompts)
        return text + (f"\n-> {node.into}" if isinstance(node, CollectNode) else "")
    if isinstance(node, VerifyNode):
        return " & ".join(node.prompts) + "\nchecked by the CRM"
    if isinstance(node, LookupNode):
        return f"by {node.by}" + (f" {node.key.source}" if node.key else "")
    if isinstance(node, SetNode):
        parts = [f"{k}={v}" for k, v in (("queue", node.queue), ("priority", node.priority),
                                           ("language", node.language)) if v is not None]
        parts += [f"{name}={expr.source if expr else ''}" for name, expr in node.assign]
        return "\n".join(parts)
    if isinstance(node, QueueNode):
        return f"queue {node.queue or '(chosen)'}"
    if isinstance(node, TransferNode):
        return f"to {node.target}"
    if isinstance(node, VoicemailNode):
        return f"box {node.mailbox}"
    if isinstance(node, CallbackNode):
        return f"number {node.number.source if node.number else ''}"
    if isinstance(node, TicketNode):
        return node.category
    if isinstance(node, (GotoNode, SubflowNode)) and node.flow:
        return f"flow {node.flow}"
    return ""


def _edge_label(node: Node, label: str) -> str:
    if isinstance(node, ConditionNode) and label.startswith("branch "):
        expr = node.branches[int(label.split()[1]) - 1][0]
        return expr.source if expr else label
    return label.replace("choice ", "")


def to_dot(flow: Flow) -> str:
    lines = [f"digraph {_quote(flow.name)} {{",
             "  rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10, style=filled];',
             '  edge [fontname="Helvetica", fontsize=9];',
             f"  label={_quote(flow.name + (': ' + flow.description.strip() if flow.description else ''))};",
             '  "__start" [shape=circle, label="start", fillcolor="#34a853", fontcolor=white, width=0.5];',
             f'  "__start" -> {_quote(flow.start)};']
    fallback_used = False
    for node in flow.nodes.values():
        shape, colour = STYLE[node.type]
        label = f"{node.id}\n[{node.type}]" + (f"\n{_detail(node)}" if _detail(node) else "")
        lines.append(f"  {_quote(node.id)} [shape={shape}, fillcolor={_quote(colour)}, label={_quote(label)}];")
        for edge in node.edges:
            lines.append(f"  {_quote(node.id)} -> {_quote(edge.target)} [label={_quote(_edge_label(node, edge.label))}];")
        if isinstance(node, (MenuNode, CollectNode, VerifyNode)) and not node.fallback:
            fallback_used = True
            why = "not verified" if isinstance(node, VerifyNode) else "max tries"
            lines.append(f'  {_quote(node.id)} -> "__fallback" [label={_quote(why)}, style=dashed];')
    if fallback_used:
        lines.append('  "__fallback" [shape=doubleoctagon, label="fallback queue\\n(dialplan)", fillcolor="#fce8e6"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(flow: Flow, output: str | Path, dot_program: str | None = None) -> tuple[Path, str]:
    """Write the diagram; returns (file written, a sentence about it)."""
    output = Path(output)
    text = to_dot(flow)
    fmt = output.suffix.lstrip(".").lower() or "svg"
    if fmt in ("dot", "gv"):
        output.write_text(text, encoding="utf-8")
        return output, f"wrote DOT text to {output}"
    program = dot_program or shutil.which("dot")
    if program is None:
        fallback = output.with_suffix(".dot")
        fallback.write_text(text, encoding="utf-8")
        return fallback, (f"graphviz 'dot' is not installed: wrote DOT text to {fallback} instead of {output} "
                          f"(render it elsewhere with: dot -T{fmt} {fallback} -o {output})")
    subprocess.run([program, f"-T{fmt}", "-o", str(output)], input=text.encode("utf-8"), check=True,
                   capture_output=True, timeout=60)
    return output, f"wrote {output}"
