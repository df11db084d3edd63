"""The state machine drawn from its own table: a neutral graph of declared targets (no
sample runs), then Mermaid and a Markdown table.
`python -m ghostroll.appliance.diagram > docs/state-machine.md` regenerates the doc; a
test fails when the checked-in doc is stale."""

from __future__ import annotations

from ghostroll.appliance import machine as sm
from ghostroll.appliance.machine import State


def edges() -> list[tuple[State, str, State, str]]:
    """(from, message type, to, handler) for every declared move to another state."""
    out = []
    for (state, kind), row in sm.TABLE.items():
        for target in sorted(row.targets - {state}, key=list(State).index):
            out.append((state, kind.type, target, row.handler.__name__))
    return out


def mermaid() -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {sm.INITIAL.value}"]
    labels: dict[tuple[State, State], list[str]] = {}
    for src, kind, dst, _ in edges():
        labels.setdefault((src, dst), [])
        if kind not in labels[(src, dst)]:
            labels[(src, dst)].append(kind)
    for (src, dst), kinds in labels.items():
        lines.append(f"    {src.value} --> {dst.value}: {', '.join(kinds)}")
    return "\n".join(lines)


def markdown() -> str:
    rows = ["| state | message | handler | may lead to |", "|---|---|---|---|"]
    for (state, kind), row in sm.TABLE.items():
        if row.handler is sm.ignore:
            continue
        targets = ", ".join("(stays)" if t == state else t.value
                            for t in sorted(row.targets, key=list(State).index))
        rows.append(f"| {state.value} | {kind.type} | {row.handler.__name__} | {targets} |")
    return "\n".join(rows)


def document() -> str:
    return (
        "# Appliance state machine\n\n"
        "Generated from `ghostroll/appliance/machine.py` by "
        "`python -m ghostroll.appliance.diagram > docs/state-machine.md`; a test fails when "
        "this file is stale. Every (state, message type) pair is in the table, with the "
        "states its handler may lead to (declared in the table, checked on every step): a "
        "transition, `ignore` (explicitly nothing; not listed below) or `unexpected` "
        "(logged, nothing changes). \"(stays)\" rows update the model (progress, battery, "
        "link) without changing the screen. The messages are those of "
        "`ghostroll/appliance/protocol.py`.\n\n"
        f"```mermaid\n{mermaid()}\n```\n\n## Table\n\n{markdown()}\n")


if __name__ == "__main__":
    print(document(), end="")
