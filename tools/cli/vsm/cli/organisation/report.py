"""A plan for people: one line per change, grouped by viable system, and a count at the end."""

from __future__ import annotations

from rich.text import Text

from vsm.cli.organisation.steps import Action, Plan, Step

MARKS = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "replace": ("-/+", "yellow"),
    "remove": ("-", "red"),
    "unlisted": ("?", "magenta"),
}


def subject(step: Step) -> str:
    if step.kind == "agent":
        return f"agent {step.name}"
    return f"meta-system {step.vsm_id}" if step.kind == "meta_system" else step.kind


def line(step: Step) -> Text:
    mark, style = MARKS[step.action]
    text = Text(f"  {mark} {subject(step)}", style)
    if step.detail:
        text.append(f": {step.detail}")
    if step.action == "unlisted":
        text.append(" (kept; --prune removes it)", "dim")
    return text


def describe(plan: Plan) -> Text:
    out = Text()
    system = None
    for step in plan.steps:
        if step.vsm_id != system:
            system = step.vsm_id
            out.append(f"{system}\n", "bold")
        out.append_text(line(step))
        out.append("\n")
    out.append(summary(plan))
    return out


VERBS: dict[Action, str] = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "remove": "removed",
}


def summary(plan: Plan, *, applied: bool = False) -> str:
    if not plan.changes:
        text = "No changes: the running system matches the file."
    elif applied:
        text = "Applied: " + ", ".join(f"{plan.count(a)} {v}" for a, v in VERBS.items()) + "."
    else:
        text = "Plan: " + ", ".join(f"{plan.count(a)} to {a}" for a in VERBS) + "."
    unlisted = plan.count("unlisted")
    if unlisted:
        text += f" {unlisted} not in the file (kept; --prune removes them)."
    return text


def done(step: Step) -> Text:
    where = "" if step.kind == "meta_system" else f" of {step.vsm_id}"
    return Text(f"{VERBS[step.action]} {subject(step)}{where}", MARKS[step.action][1])
