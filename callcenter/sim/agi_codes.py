"""What the AGI command handlers share: result codes and res_agi's argument parser."""

from __future__ import annotations

#: Handler results (res_agi.c RESULT_*); any other int means "Unknown Result" on AMI.
SUCCESS, SHOWUSAGE, FAILURE = 0, 1, 2


def parse_args(line: str) -> list[str]:
    """res_agi.c parse_args: blanks split, double quotes group, backslash escapes one char."""
    args: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and current is None:
                current = []
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                args.append("".join(current))
                current = None
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if current is None:
            current = []
        current.append(char)
        escaped = False
    if current is not None:
        args.append("".join(current))
    return args
