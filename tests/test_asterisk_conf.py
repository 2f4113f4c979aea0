"""asterisk_conf/: the Asterisk 20/22 configuration the daemon expects.

Every .conf file is read with a small parser that follows Asterisk's config.c
rules (``;`` comments, ``\\;`` escapes, ``[name](!)`` templates, ``=>``,
``#include``). The dialplan is then checked two ways:

* statically: no caller- or daemon-supplied data (``${CALLERID(...)}``,
  ``${EXTEN}``, ``${DIGITS}``, ``${CC_*}`` or a variable derived from them)
  reaches Dial/Queue/ChanSpy/Goto/System/Exec other than through ``FILTER()``;
  every variable name is a contract constant, a global or a local;
* dynamically: a small interpreter runs calls through the dialplan
  (substitution, ``$[...]`` expressions, FILTER/IF/REGEX/QUEUE_EXISTS/
  DIALPLAN_EXISTS, Goto/GotoIf/Gosub) and explores every outcome of
  Queue/Dial/MusicOnHold, so "no call is lost" is checked path by path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callcenter.asterisk import channel_vars as cv

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "asterisk_conf"
LAB_DIR = ROOT / "tests" / "fixtures" / "asterisk-22"


# =============================================================================
# Config file parser (Asterisk main/config.c semantics, the parts used here)
# =============================================================================


class ConfParseError(Exception):
    pass


@dataclass
class Category:
    name: str
    template: bool
    bases: list[str]
    line: int
    items: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass
class ConfFile:
    path: Path
    categories: list[Category]
    directives: list[tuple[str, str, int]]

    def named(self, name: str) -> list[Category]:
        return [c for c in self.categories if c.name == name]

    def one(self, name: str) -> Category:
        found = [c for c in self.named(name) if not c.template]
        assert len(found) == 1, f"{self.path.name}: expected one [{name}], found {len(found)}"
        return found[0]

    def resolved(self, cat: Category) -> list[tuple[str, str]]:
        """Items of a category with its templates' items first (as Asterisk does)."""
        items: list[tuple[str, str]] = []
        for base in cat.bases:
            templates = [c for c in self.categories if c.name == base and c.line < cat.line]
            if not templates:
                raise ConfParseError(f"{self.path.name}:{cat.line}: unknown template {base!r}")
            items.extend(self.resolved(templates[-1]))
        items.extend((k, v) for k, v, _ in cat.items)
        return items

    def settings(self, cat: Category) -> dict[str, str]:
        """Resolved items as a dict: the last value of a key wins."""
        return dict(self.resolved(cat))


def _strip_comment(raw: str, in_block: int) -> tuple[str, int]:
    """Remove ; comments and ;-- --; blocks; \\; is a literal semicolon."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        if in_block:
            if raw.startswith("--;", i):
                in_block -= 1
                i += 3
            elif raw.startswith(";--", i):
                in_block += 1
                i += 3
            else:
                i += 1
            continue
        ch = raw[i]
        if ch == ";":
            if out and out[-1] == "\\":
                out[-1] = ";"
                i += 1
                continue
            if raw.startswith(";--", i):
                in_block += 1
                i += 3
                continue
            break
        out.append(ch)
        i += 1
    return "".join(out), in_block


_CATEGORY_RE = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?$")


def parse_conf(path: Path) -> ConfFile:
    """Parse one Asterisk .conf file; raise ConfParseError naming file:line."""
    categories: list[Category] = []
    directives: list[tuple[str, str, int]] = []
    current: Category | None = None
    in_block = 0
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line, in_block = _strip_comment(raw, in_block)
        line = line.strip()
        if not line:
            continue
        where = f"{path.name}:{lineno}"
        if line.startswith("#"):
            match = re.match(r"^#(include|tryinclude|exec)\s+\"?([^\"]+)\"?$", line)
            if not match:
                raise ConfParseError(f"{where}: bad directive {line!r}")
            directives.append((match.group(1), match.group(2).strip(), lineno))
            continue
        if line.startswith("["):
            match = _CATEGORY_RE.match(line)
            if not match:
                raise ConfParseError(f"{where}: bad category line {line!r}")
            opts = [o.strip() for o in (match.group(2) or "").split(",") if o.strip()]
            current = Category(
                name=match.group(1).strip(),
                template="!" in opts,
                bases=[o for o in opts if o != "!"],
                line=lineno,
            )
            for base in current.bases:
                if not any(c.name == base for c in categories):
                    raise ConfParseError(f"{where}: template {base!r} is not defined above")
            categories.append(current)
            continue
        if current is None:
            raise ConfParseError(f"{where}: setting outside of any [category]")
        if "=" not in line:
            raise ConfParseError(f"{where}: expected 'name = value' or 'name => value'")
        key, value = line.split("=", 1)
        if value.startswith(">"):
            value = value[1:]
        key = key.strip()
        if not key or not re.match(r"^[A-Za-z0-9_.+-]+$", key):
            raise ConfParseError(f"{where}: bad key {key!r}")
        current.items.append((key, value.strip(), lineno))
    if in_block:
        raise ConfParseError(f"{path.name}: unterminated ;-- block comment")
    return ConfFile(path, categories, directives)


# =============================================================================
# Dialplan model
# =============================================================================


@dataclass(frozen=True)
class Step:
    context: str
    exten: str
    priority: int
    label: str | None
    app: str
    data: str
    line: int


_APP_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:\((.*)\))?$", re.S)


def split_app(call: str, where: str) -> tuple[str, str]:
    match = _APP_RE.match(call.strip())
    if not match:
        raise ConfParseError(f"{where}: bad application call {call!r}")
    return match.group(1), match.group(2) or ""


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """An Asterisk extension pattern (_X, Z, N, [..], ., !) as a regex."""
    out = []
    i = 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "X":
            out.append("[0-9]")
        elif ch == "Z":
            out.append("[1-9]")
        elif ch == "N":
            out.append("[2-9]")
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "[":
            end = pattern.index("]", i)
            out.append("[" + re.escape(pattern[i + 1 : end]).replace("\\-", "-") + "]")
            i = end
        elif ch == "-":
            pass
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.S)


class Dialplan:
    def __init__(self, conf: ConfFile):
        self.conf = conf
        self.globals = {k: v for k, v, _ in conf.one("globals").items}
        self.general = {k: v for k, v, _ in conf.one("general").items}
        self.steps: dict[str, dict[str, dict[int, Step]]] = {}
        self.labels: dict[tuple[str, str], dict[str, int]] = {}
        self.includes: dict[str, list[str]] = {}
        for cat in conf.categories:
            if cat.name in ("general", "globals"):
                continue
            assert not cat.template, f"dialplan templates are not used: [{cat.name}]"
            self._add_context(cat)

    def _add_context(self, cat: Category) -> None:
        ctx = cat.name
        assert ctx not in self.steps, f"context [{ctx}] defined twice"
        self.steps[ctx] = {}
        self.includes[ctx] = []
        last_exten: str | None = None
        for key, value, lineno in cat.items:
            where = f"extensions.conf:{lineno}"
            if key == "include":
                self.includes[ctx].append(value)
                continue
            if key == "exten":
                last_exten, rest = value.split(",", 1)
                last_exten = last_exten.strip()
            elif key == "same":
                assert last_exten is not None, f"{where}: 'same' before any 'exten'"
                rest = value
            else:
                raise ConfParseError(f"{where}: unexpected key {key!r} in a context")
            prio_text, call = rest.split(",", 1)
            prio_text = prio_text.strip()
            if prio_text == "hint":
                continue
            match = re.match(r"^(n|\d+)(?:\(([A-Za-z0-9_-]+)\))?$", prio_text)
            if not match:
                raise ConfParseError(f"{where}: bad priority {prio_text!r}")
            existing = self.steps[ctx].setdefault(last_exten, {})
            priority = max(existing, default=0) + 1 if match.group(1) == "n" else int(match.group(1))
            assert priority not in existing, f"{where}: priority {priority} of {last_exten} twice"
            app, data = split_app(call, where)
            step = Step(ctx, last_exten, priority, match.group(2), app, data, lineno)
            existing[priority] = step
            if step.label:
                self.labels.setdefault((ctx, last_exten), {})[step.label] = priority

    def all_steps(self) -> list[Step]:
        return [s for exts in self.steps.values() for prios in exts.values() for s in prios.values()]

    def match(self, ctx: str, exten: str, _seen: frozenset = frozenset()) -> tuple[str, str] | None:
        """(context, extension key) that handles exten: exact, pattern, then includes."""
        if ctx not in self.steps or ctx in _seen:
            return None
        if exten in self.steps[ctx]:
            return ctx, exten
        hits = [k for k in self.steps[ctx] if k.startswith("_") and pattern_regex(k).match(exten)]
        assert len(hits) <= 1, f"[{ctx}] {exten}: ambiguous patterns {hits}"
        if hits:
            return ctx, hits[0]
        for inc in self.includes[ctx]:
            found = self.match(inc, exten, _seen | {ctx})
            if found:
                return found
        return None

    def resolve_priority(self, ctx: str, key: str, prio: str) -> int | None:
        prio = prio.strip()
        if prio.isdigit():
            return int(prio)
        return self.labels.get((ctx, key), {}).get(prio)


# =============================================================================
# Substitution, functions and $[...] expressions
# =============================================================================


class SimError(Exception):
    pass


def find_close(text: str, start: int, open_ch: str, close_ch: str) -> int:
    depth = 1
    for i in range(start, len(text)):
        if text[i] == open_ch:
            depth += 1
        elif text[i] == close_ch:
            depth -= 1
            if depth == 0:
                return i
    raise SimError(f"unbalanced {open_ch}{close_ch} in {text!r}")


def split_top(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on sep outside (), [] and ${}; like ast_app_separate_args."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0 and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def _encoded_char(text: str, i: int) -> tuple[str | None, int]:
    """ast_get_encoded_char(): one (possibly escaped) character and its length."""
    if i >= len(text):
        return None, 0
    if text[i] != "\\":
        return text[i], 1
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if nxt in "nrt":
        return {"n": "\n", "r": "\r", "t": "\t"}[nxt], 2
    if nxt == "x":
        digits = re.match(r"[0-9A-Fa-f]{1,2}", text[i + 2 :])
        if not digits:
            raise SimError(f"bad hex escape in {text!r}")
        return chr(int(digits.group(0), 16)), 2 + len(digits.group(0))
    if nxt == "0":
        digits = re.match(r"[0-7]*", text[i + 2 :]).group(0)
        return chr(int(digits or "0", 8)), 2 + len(digits)
    return nxt, 2


def filter_allowed(allowed: str) -> set[str]:
    """The character set FILTER(allowed,...) keeps (func_strings.c filter())."""
    chars: set[str] = set()
    i = 0
    while i < len(allowed):
        c1, used = _encoded_char(allowed, i)
        i += used
        if i < len(allowed) and allowed[i] == "-":
            c2, used2 = _encoded_char(allowed, i + 1)
            if c2 is None:
                c2 = c1
            i += used2 + 1
            if ord(c2) < ord(c1):
                raise SimError(f"range wraps in FILTER({allowed})")
            chars.update(chr(c) for c in range(ord(c1), ord(c2) + 1))
        else:
            chars.add(c1)
    return chars


def _num(value: str) -> int | None:
    value = value.strip()
    return int(value) if re.fullmatch(r"-?\d+", value) else None


def _truthy(value: str) -> bool:
    number = _num(value)
    return value.strip() != "" and (number is None or number != 0)


_TOKEN_RE = re.compile(r'\s*(?:"([^"]*)"|(!=|<=|>=|[=<>|&+\-*/%!()])|([^\s"=<>|&+\-*/%!()]+))')


def evaluate_expression(text: str) -> str:
    """$[...] after substitution: | & comparisons + - * / % ! and ()."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            raise SimError(f"bad expression {text!r}")
        pos = match.end()
        if match.group(1) is not None:
            tokens.append(("val", match.group(1)))
        elif match.group(2) is not None:
            tokens.append(("op", match.group(2)))
        else:
            tokens.append(("val", match.group(3)))
    index = 0

    def peek() -> tuple[str, str] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal index
        if index >= len(tokens):
            raise SimError(f"expression ends early: {text!r}")
        index += 1
        return tokens[index - 1]

    def binary(next_level, ops, apply):
        def level() -> str:
            left = next_level()
            while peek() is not None and peek()[0] == "op" and peek()[1] in ops:
                op = take()[1]
                left = apply(op, left, next_level())
            return left

        return level

    def primary() -> str:
        kind, value = take()
        if kind == "op" and value == "(":
            result = or_level()
            if take() != ("op", ")"):
                raise SimError(f"missing ) in {text!r}")
            return result
        if kind == "op" and value == "!":
            return "0" if _truthy(primary()) else "1"
        if kind == "op" and value == "-":
            number = _num(primary())
            if number is None:
                raise SimError(f"unary - on a string in {text!r}")
            return str(-number)
        if kind == "op":
            raise SimError(f"unexpected {value!r} in {text!r}")
        return value

    def arith(op: str, left: str, right: str) -> str:
        a, b = _num(left), _num(right)
        if a is None or b is None:
            raise SimError(f"non-numeric operand of {op} in {text!r}")
        return str({"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else 0, "%": a % b if b else 0}[op])

    def compare(op: str, left: str, right: str) -> str:
        a, b = _num(left), _num(right)
        if a is None or b is None:
            a, b = left, right
        result = {"=": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return "1" if result else "0"

    def logic(op: str, left: str, right: str) -> str:
        if op == "|":
            return left if _truthy(left) else right
        return left if _truthy(left) and _truthy(right) else "0"

    mult = binary(primary, ("*", "/", "%"), arith)
    add = binary(mult, ("+", "-"), arith)
    cmp_level = binary(add, ("=", "!=", "<", ">", "<=", ">="), compare)
    and_level = binary(cmp_level, ("&",), logic)
    or_level = binary(and_level, ("|",), logic)
    result = or_level()
    if index != len(tokens):
        raise SimError(f"trailing tokens in {text!r}")
    return result


# =============================================================================
# The interpreter
# =============================================================================


@dataclass(frozen=True)
class Agi:
    """What the FastAGI session leaves behind on the channel."""

    status: str = "SUCCESS"
    vars: tuple[tuple[str, str], ...] = ()


UNREACHABLE = Agi(status="FAILURE")


def agi(status: str = "SUCCESS", **variables: str) -> Agi:
    return Agi(status, tuple(variables.items()))


@dataclass
class CallPath:
    start: tuple[str, str]
    events: list[tuple] = field(default_factory=list)
    end: str = ""
    env: dict[str, str] = field(default_factory=dict)
    branches: list[tuple[int, int]] = field(default_factory=list)

    def apps(self, name: str) -> list[tuple]:
        return [e for e in self.events if e[0] == name]

    @property
    def queues(self) -> list[str]:
        return [e[1]["queue"] for e in self.apps("Queue")]


START_CLOCK = 1_800_000_000
QUEUE_OUTCOMES = ("answered", "TIMEOUT", "JOINEMPTY", "LEAVEEMPTY")
DIAL_OUTCOMES = ("answered", "NOANSWER", "BUSY", "CHANUNAVAIL")


class Interpreter:
    def __init__(self, dialplan: Dialplan, queues: set[str]):
        self.dp = dialplan
        self.queues = queues

    # --- values -------------------------------------------------------------
    def substitute(self, text: str, st: dict) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("${", i):
                end = find_close(text, i + 2, "{", "}")
                inner = text[i + 2 : end]
                if "${" in inner or "$[" in inner:
                    inner = self.substitute(inner, st)
                out.append(self.variable(inner, st))
                i = end + 1
            elif text.startswith("$[", i):
                end = find_close(text, i + 2, "[", "]")
                out.append(evaluate_expression(self.substitute(text[i + 2 : end], st)))
                i = end + 1
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def variable(self, inner: str, st: dict) -> str:
        depth, name, offset = 0, inner, None
        for idx, ch in enumerate(inner):
            depth += ch == "("
            depth -= ch == ")"
            if ch == ":" and depth == 0:
                name, offset = inner[:idx], inner[idx + 1 :]
                break
        if name.endswith(")") and "(" in name:
            value = self.function(name[: name.index("(")], name[name.index("(") + 1 : -1], st)
        else:
            value = self.lookup(name, st)
        if offset is not None:
            parts = offset.split(":")
            start = int(parts[0] or 0)
            length = int(parts[1]) if len(parts) > 1 and parts[1] else None
            start = start if start >= 0 else max(len(value) + start, 0)
            if length is None:
                value = value[start:]
            elif length >= 0:
                value = value[start : start + length]
            else:
                value = value[start : len(value) + length]
        return value

    def lookup(self, name: str, st: dict) -> str:
        builtins = {
            "EXTEN": st["exten"],
            "CONTEXT": st["context"],
            "PRIORITY": str(st["priority"]),
            "EPOCH": str(st["clock"]),
        }
        if name in st["env"]:
            return st["env"][name]
        if name in builtins:
            return builtins[name]
        return self.dp.globals.get(name, "")

    def function(self, name: str, args: str, st: dict) -> str:
        if name == "FILTER":
            allowed, string = (split_top(args, ",", 1) + [""])[:2]
            keep = filter_allowed(allowed)
            return "".join(ch for ch in string if ch in keep)
        if name == "IF":
            cond, _, rest = args.partition("?")
            true, _, false = rest.partition(":")
            if '"' in true + false or "\\" in true + false:
                raise SimError(f"IF branches with quotes/backslashes are not modelled: {args!r}")
            return true if _truthy(cond) else false
        if name == "QUEUE_EXISTS":
            if not args:
                raise SimError("QUEUE_EXISTS() without a queue name")
            return "1" if args in self.queues else "0"
        if name == "DIALPLAN_EXISTS":
            ctx, exten, prio = (split_top(args, ",") + ["", ""])[:3]
            found = self.dp.match(ctx, exten) if exten else (ctx, "") if ctx in self.dp.steps else None
            if not found:
                return "0"
            if not exten:
                return "1"
            number = self.dp.resolve_priority(found[0], found[1], prio or "1")
            return "1" if number in self.dp.steps[found[0]][found[1]] else "0"
        if name == "REGEX":
            match = re.match(r'^"([^"]*)" ?(.*)$', args, re.S)
            if not match:
                raise SimError(f"REGEX needs a quoted expression: {args!r}")
            return "1" if re.search(match.group(1), match.group(2)) else "0"
        if name == "LEN":
            return str(len(args))
        if name in ("CALLERID", "CHANNEL"):
            default = "en" if args == "language" else ""
            return st["env"].get(f"{name}({args})", default)
        raise SimError(f"function {name}() is not modelled")

    # --- execution ----------------------------------------------------------
    def run(self, context, exten, *, env=None, agi_result=UNREACHABLE, moh_outcomes=("timeout",),
            choices=(), max_steps=400) -> CallPath:
        st = {"context": context, "exten": exten, "priority": 1, "clock": START_CLOCK,
              "env": dict(env or {}), "stack": []}
        path = CallPath(start=(context, exten))

        def choose(options: tuple[str, ...]) -> str:
            depth = len(path.branches)
            pick = choices[depth] if depth < len(choices) else 0
            path.branches.append((len(options), pick))
            return options[pick]

        def goto(target: str) -> bool:
            parts = [p.strip() for p in split_top(target, ",")]
            if len(parts) == 1:
                ctx, ext, prio = st["context"], st["exten"], parts[0]
            elif len(parts) == 2:
                ctx, ext, prio = st["context"], parts[0], parts[1]
            else:
                ctx, ext, prio = parts[0], parts[1], parts[2]
            found = self.dp.match(ctx, ext)
            number = self.dp.resolve_priority(*found, prio) if found else None
            if number is None:
                path.end = f"no-such-extension {ctx},{ext},{prio}"
                return False
            st.update(context=ctx, exten=ext, priority=number)
            return True

        for _ in range(max_steps):
            found = self.dp.match(st["context"], st["exten"])
            step = self.dp.steps[found[0]][found[1]].get(st["priority"]) if found else None
            if step is None:
                path.end = "fell-off" if found else f"no-such-extension {st['context']},{st['exten']}"
                break
            data = self.substitute(step.data, st)
            app = step.app.lower()
            where = (step.context, step.exten, step.priority)
            st["priority"] += 1
            if app in ("noop", "answer", "ringing", "progress", "verbose"):
                continue
            if app == "set":
                name, _, value = data.partition("=")
                name = name.strip()
                if "(" not in name:
                    name = name.lstrip("_")
                if value == "" and "(" not in name:
                    st["env"].pop(name, None)
                else:
                    st["env"][name] = value
                path.events.append(("Set", name, value, where))
            elif app == "goto":
                if not goto(data):
                    break
            elif app == "gotoif":
                cond, _, branches = data.partition("?")
                true, _, false = branches.partition(":")
                target = true if _truthy(cond) else false
                if target and not goto(target):
                    break
            elif app == "gosub":
                st["stack"].append((st["context"], st["exten"], st["priority"]))
                if not goto(data):
                    break
            elif app == "return":
                if not st["stack"]:
                    path.end = "return-without-gosub"
                    break
                ctx, ext, prio = st["stack"].pop()
                st.update(context=ctx, exten=ext, priority=prio)
            elif app == "agi":
                path.events.append(("AGI", data, where))
                st["env"]["AGISTATUS"] = agi_result.status
                st["env"].update(dict(agi_result.vars))
            elif app == "queue":
                args = split_top(data, ",") + [""] * 5
                info = {"queue": args[0], "options": args[1], "timeout": args[4],
                        "prio": st["env"].get("QUEUE_PRIO", ""), "exists": args[0] in self.queues,
                        "where": where}
                path.events.append(("Queue", info))
                timeout = _num(args[4]) or 0
                if not info["exists"]:
                    st["env"]["QUEUESTATUS"] = "UNKNOWN"
                    continue
                options = QUEUE_OUTCOMES if timeout > 0 else tuple(o for o in QUEUE_OUTCOMES if o != "TIMEOUT")
                outcome = choose(options)
                if outcome == "answered":
                    if "c" not in args[1]:
                        path.end = "answered"
                        break
                    outcome = "CONTINUE"
                if outcome == "TIMEOUT":
                    st["clock"] += timeout
                st["env"]["QUEUESTATUS"] = outcome
            elif app == "dial":
                args = split_top(data, ",") + ["", ""]
                path.events.append(("Dial", {"target": args[0], "timeout": args[1], "options": args[2],
                                             "where": where}))
                outcome = choose(DIAL_OUTCOMES)
                if outcome == "answered":
                    if "g" not in args[2]:
                        path.end = "answered"
                        break
                    outcome = "ANSWER"
                if outcome == "NOANSWER":
                    st["clock"] += _num(args[1]) or 30
                st["env"]["DIALSTATUS"] = outcome
            elif app == "musiconhold":
                moh_class, _, duration = data.partition(",")
                path.events.append(("MusicOnHold", {"class": moh_class, "duration": duration, "where": where}))
                seconds = _num(duration) or 0
                if seconds <= 0:
                    path.end = "stuck in MusicOnHold without a timeout"
                    break
                if choose(moh_outcomes) == "bridged":
                    st["env"]["BRIDGEPEER"] = "PJSIP/6001-0000002a"
                    st["clock"] += 60
                else:
                    st["clock"] += seconds
            elif app == "wait":
                st["clock"] += _num(data) or 0
            elif app in ("playback", "voicemail", "chanspy"):
                path.events.append((step.app, data, where))
            elif app == "hangup":
                path.events.append(("Hangup", where))
                path.end = "hangup"
                break
            else:
                raise SimError(f"application {step.app} at {where} is not modelled")
        else:
            path.end = "loop"
        path.env = st["env"]
        return path

    def explore(self, context, exten, *, limit=400, **kwargs) -> list[CallPath]:
        """Run every combination of Queue/Dial/MusicOnHold outcomes."""
        paths: list[CallPath] = []
        pending: list[tuple[int, ...]] = [()]
        while pending:
            prefix = pending.pop()
            path = self.run(context, exten, choices=prefix, **kwargs)
            paths.append(path)
            assert len(paths) <= limit, "too many paths: a loop in the dialplan?"
            for depth in range(len(prefix), len(path.branches)):
                count = path.branches[depth][0]
                chosen = tuple(pick for _, pick in path.branches[:depth])
                pending.extend(chosen + (k,) for k in range(1, count))
        return paths


# =============================================================================
# Fixtures and helpers
# =============================================================================

CONF_FILES = sorted(CONF_DIR.glob("*.conf"))


@pytest.fixture(scope="module")
def conf():
    return {p.name: parse_conf(p) for p in CONF_FILES}


@pytest.fixture(scope="module")
def dialplan(conf):
    return Dialplan(conf["extensions.conf"])


@pytest.fixture(scope="module")
def queue_names(conf):
    return {c.name for c in conf["queues.conf"].categories if not c.template and c.name != "general"}


@pytest.fixture(scope="module")
def sim(dialplan, queue_names):
    return Interpreter(dialplan, queue_names)


CALLER = {"CALLERID(num)": "5551001", "CALLERID(name)": "Jane Doe"}
CONTRACT_VARS = {v for k, v in vars(cv).items() if k.isupper() and isinstance(v, str) and v.startswith("CC_")}
RESULTS = {v for k, v in vars(cv).items() if k.startswith("RESULT_")}
DNIS_SAMPLES = ["4000", "4001", "4010", "4050", "4099"]


def inbound(sim, dnis="4000", agi_result=UNREACHABLE, **kwargs) -> list[CallPath]:
    return sim.explore("from-pstn", dnis, env=CALLER, agi_result=agi_result, **kwargs)


def first_queue(paths: list[CallPath]) -> set[str]:
    return {p.queues[0] if p.queues else None for p in paths}


def assert_every_path_ends_cleanly(paths: list[CallPath]) -> None:
    for path in paths:
        assert path.end in ("hangup", "answered"), (path.start, path.end, path.events)


def assert_fallback_before_hangup(paths: list[CallPath]) -> None:
    """A caller is hung up only after the fallback queue was tried (and returned)."""
    for path in paths:
        if path.end == "hangup":
            assert cv.FALLBACK_QUEUE in path.queues, (path.start, path.events)


_REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(\(|:|\})")
TAINTED_FUNCTIONS = {"CALLERID", "CONNECTEDLINE", "REDIRECTING", "PJSIP_HEADER", "SIP_HEADER", "PJSIP_HEADERS"}
TAINTED_VARS = {"EXTEN", "DIGITS", "DNID", "RDNIS"}
SINKS = {"dial", "queue", "system", "trysystem", "exec", "tryexec", "execif", "chanspy", "extenspy",
         "goto", "gosub", "gotoif", "originate"}


def refs(text: str) -> list[tuple[str, bool]]:
    """(name, is_function) of every ${...} reference, nested ones included."""
    return [(m.group(1), m.group(2) == "(") for m in _REF_RE.finditer(text)]


def strip_filters(text: str) -> str:
    """text without its ${FILTER(<literal chars>,...)} spans."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("${FILTER(", i):
            end = find_close(text, i + 2, "{", "}")
            allowed = text[i + len("${FILTER(") : end].split(",", 1)[0]
            assert "$" not in allowed, f"FILTER with non-literal allowed chars: {text!r}"
            i = end + 1
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def tainted(text: str, tainted_locals: set[str]) -> list[str]:
    bad = []
    for name, is_function in refs(strip_filters(text)):
        if is_function and name in TAINTED_FUNCTIONS:
            bad.append(name)
        elif not is_function and (name in TAINTED_VARS or name.startswith("CC_") or name in tainted_locals):
            bad.append(name)
    return bad


def sink_text(step: Step) -> str:
    if step.app.lower() == "gotoif":
        return split_top(step.data, "?", 1)[-1]
    return step.data


def tainted_locals(dp: Dialplan) -> set[str]:
    names: set[str] = set()
    changed = True
    while changed:
        changed = False
        for step in dp.all_steps():
            if step.app.lower() != "set":
                continue
            name, _, value = step.data.partition("=")
            name = name.strip().lstrip("_")
            if name not in names and tainted(value, names):
                names.add(name)
                changed = True
    return names


def filter_calls(text: str) -> list[tuple[str, str]]:
    """(allowed chars, filtered expression) of every FILTER() in text."""
    calls, start = [], 0
    while (i := text.find("${FILTER(", start)) >= 0:
        end = find_close(text, i + 2, "{", "}")
        allowed, _, value = text[i + len("${FILTER(") : end - 1].partition(",")
        calls.append((allowed, value))
        start = i + 2
    return calls


# =============================================================================
# Every file parses
# =============================================================================


def test_configuration_directory_has_every_expected_file():
    """asterisk_conf/ ships the dialplan, AMI, queue, MOH, module and PJSIP files."""
    names = {p.name for p in CONF_FILES}
    assert {"extensions.conf", "manager.conf", "queues.conf", "musiconhold.conf", "modules.conf",
            "pjsip.conf"} <= names
    assert (CONF_DIR / "README.md").is_file()


@pytest.mark.parametrize("path", CONF_FILES, ids=lambda p: p.name)
def test_every_conf_file_parses(path):
    """Each .conf file parses with Asterisk's syntax rules and has categories."""
    parsed = parse_conf(path)
    assert parsed.categories
    for cat in parsed.categories:
        parsed.resolved(cat)
    assert not [d for d in parsed.directives if d[0] == "exec"], "#exec runs a shell command"


LAB_CONF_FILES = sorted(LAB_DIR.glob("**/lab-config/*.conf"))


@pytest.mark.parametrize("path", LAB_CONF_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_parser_reads_the_real_lab_configs(path):
    """The parser accepts the configs a real Asterisk 22.10.1 ran with."""
    assert parse_conf(path).categories


def test_parser_follows_asterisk_comment_and_template_rules(tmp_path):
    """Escaped semicolons stay, comments go, templates resolve in order."""
    sample = tmp_path / "x.conf"
    sample.write_text("[t](!)\na = 1\nb = 2 ; note\n[q](t)\nb => x\\;y\n;-- block\n c = 9 --;\n")
    parsed = parse_conf(sample)
    assert parsed.settings(parsed.one("q")) == {"a": "1", "b": "x;y"}
    bad = tmp_path / "bad.conf"
    bad.write_text("[a]\nno equals sign here\n")
    with pytest.raises(ConfParseError, match="bad.conf:2"):
        parse_conf(bad)


@pytest.mark.parametrize("name", ["modules.conf", "musiconhold.conf"])
def test_parser_agrees_with_pyst2_on_plain_files(name):
    """pyst2's asterisk.config reader sees the same settings in the template-free files."""
    import asterisk.config as pyst2_config  # pyst2: a runtime dependency, fine in tests (not in the reactor)
    theirs = [(c.name, [(i.name, i.value.strip()) for i in c.items])
              for c in pyst2_config.Config(str(CONF_DIR / name)).categories]
    ours = [(c.name, [(k, v) for k, v, _ in c.items]) for c in parse_conf(CONF_DIR / name).categories]
    assert theirs == ours


def test_interpreter_reproduces_the_lab_hotline_call():
    """Run on the lab dialplan, the recorded call (CC_QUEUE=support) reaches Queue(support)."""
    lab = Dialplan(parse_conf(LAB_DIR / "lab-config" / "extensions.conf"))
    lab_sim = Interpreter(lab, {"support", "sales", "vip"})
    paths = lab_sim.explore("from-pstn", "4000", env=CALLER, agi_result=agi(CC_QUEUE="support"))
    assert {p.queues[0] for p in paths} == {"support"}
    assert paths[0].apps("AGI")[0][1] == "agi://127.0.0.1:4573/ivr?dnis=4000"
    unset = lab_sim.explore("from-pstn", "4000", env=CALLER)
    assert {p.end for p in unset} == {"hangup"} and not unset[0].queues


def test_expression_evaluator_matches_asterisk_operators():
    """$[...] compares numbers numerically, strings as strings, and knows | & + -."""
    assert evaluate_expression('"" = ""') == "1"
    assert evaluate_expression("030 > 0") == "1"
    assert evaluate_expression("1800000100 - 1800000000 >= 300") == "0"
    assert evaluate_expression('"abc" != "abd" & 2') == "1"
    assert evaluate_expression('0 & 2') == "0"
    assert evaluate_expression('"" = "x" | "ANSWER" = "ANSWER"') == "1"
    with pytest.raises(SimError):
        evaluate_expression(" = 0")


def test_filter_emulation_decodes_ranges_and_escapes():
    """FILTER's allowed-chars syntax: ranges, a leading '-', \\x hex and \\ escapes."""
    assert filter_allowed("-_0-9") == set("-_0123456789")
    assert filter_allowed("a-c\\x3b\\-") == set("abc;-")
    assert filter_allowed("+0-9") == set("+0123456789")


# =============================================================================
# Hotline DNIS -> FastAGI IVR
# =============================================================================


def test_hotline_vip_and_service_lines_are_defined(dialplan):
    """[from-pstn] has 4000 (hotline), 4001 (VIP) and a digits-only service-line pattern."""
    extens = set(dialplan.steps["from-pstn"])
    assert {"4000", "4001"} <= extens
    patterns = [e for e in extens if e.startswith("_")]
    assert patterns, "no service-line pattern"
    for pattern in patterns:
        assert "." not in pattern and "!" not in pattern, "a wildcard DNIS would put non-digits in the AGI URL"


@pytest.mark.parametrize("dnis", DNIS_SAMPLES)
def test_every_hotline_dnis_goes_to_the_fastagi_ivr(sim, dialplan, dnis):
    """Each DNIS answers and runs AGI(agi://${CTI_AGI_HOST}/ivr?dnis=${EXTEN})."""
    found = dialplan.match("from-pstn", dnis)
    steps = dialplan.steps[found[0]][found[1]].values()
    assert [s.data for s in steps if s.app == "AGI"] == ["agi://${CTI_AGI_HOST}/ivr?dnis=${EXTEN}"]
    path = inbound(sim, dnis)[0]
    host = dialplan.globals["CTI_AGI_HOST"]
    assert [e[1] for e in path.apps("AGI")] == [f"agi://{host}/ivr?dnis={dnis}"]


def test_every_from_pstn_extension_runs_the_ivr(dialplan):
    """No DNIS in [from-pstn] bypasses the FastAGI IVR."""
    for exten, prios in dialplan.steps["from-pstn"].items():
        assert any(s.app == "AGI" for s in prios.values()), exten


def test_agi_host_is_a_global_pointing_at_the_daemon(dialplan):
    """CTI_AGI_HOST lives in [globals] and is host:port of the daemon's FastAGI server."""
    assert re.fullmatch(r"[A-Za-z0-9.-]+:\d+", dialplan.globals["CTI_AGI_HOST"])


def test_stale_result_variables_are_cleared_before_the_ivr(sim):
    """A CC_RESULT set before the AGI (trunk, Originate) cannot fake the daemon's answer."""
    forged = dict(CALLER, CC_RESULT="done", CC_QUEUE="vip", CC_TRANSFER_TO="6001")
    paths = sim.explore("from-pstn", "4000", env=forged, agi_result=UNREACHABLE)
    assert first_queue(paths) == {cv.FALLBACK_QUEUE}


# =============================================================================
# After the AGI: CC_RESULT decides, with the fallback queue as default
# =============================================================================


@pytest.mark.parametrize("status", ["FAILURE", "SUCCESS", "NOTFOUND", "HANGUP"])
def test_unset_result_sends_caller_to_fallback_queue(sim, status):
    """Server unreachable or daemon stopped mid-call (CC_RESULT unset): Queue(FALLBACK_QUEUE)."""
    paths = inbound(sim, agi_result=agi(status))
    assert first_queue(paths) == {cv.FALLBACK_QUEUE}
    assert_every_path_ends_cleanly(paths)
    assert_fallback_before_hangup(paths)


@pytest.mark.parametrize("result", [cv.RESULT_FALLBACK, "", "garbage", "QUEUE", "queue,x", "dONe"])
def test_fallback_or_unknown_result_uses_fallback_queue(sim, result):
    """CC_RESULT=fallback, or anything the dialplan does not know, means the fallback queue."""
    paths = inbound(sim, agi_result=agi(CC_RESULT=result, CC_QUEUE="sales"))
    assert first_queue(paths) == {cv.FALLBACK_QUEUE}
    assert_every_path_ends_cleanly(paths)


@pytest.mark.parametrize("status", ["SUCCESS", "FAILURE"])
def test_queue_result_uses_the_daemon_queue_even_when_agistatus_is_failure(sim, status):
    """CC_RESULT decides first: a failed AGI command (AGISTATUS=FAILURE) does not override it."""
    paths = inbound(sim, agi_result=agi(status, CC_RESULT=cv.RESULT_QUEUE, CC_QUEUE="sales", CC_PRIORITY="5"))
    assert first_queue(paths) == {"sales"}
    assert {p.apps("Queue")[0][1]["prio"] for p in paths} == {"5"}


def test_queue_that_returns_tries_fallback_queue_then_last_resort(sim):
    """sales returns (timeout/empty) -> fallback queue -> announcement -> Hangup."""
    paths = inbound(sim, agi_result=agi(CC_RESULT="queue", CC_QUEUE="sales"))
    assert_every_path_ends_cleanly(paths)
    assert_fallback_before_hangup(paths)
    sequences = {tuple(p.queues) for p in paths}
    assert sequences == {("sales",), ("sales", cv.FALLBACK_QUEUE)}
    for path in paths:
        if path.end == "hangup":
            assert path.apps("Playback"), "no last-resort announcement"


def test_daemon_choosing_the_fallback_queue_is_not_queued_twice(sim):
    """CC_QUEUE=FALLBACK_QUEUE that returns goes straight to the last resort."""
    paths = inbound(sim, agi_result=agi(CC_RESULT="queue", CC_QUEUE=cv.FALLBACK_QUEUE))
    assert {tuple(p.queues) for p in paths} == {(cv.FALLBACK_QUEUE,)}
    assert_every_path_ends_cleanly(paths)


@pytest.mark.parametrize("name", ["nosuch", "", "sales,,,,99", "sales&vip", "sales(t)", "../support;x", "s a l e s"])
def test_unknown_or_hostile_queue_name_never_reaches_queue_unfiltered(sim, name):
    """CC_QUEUE is FILTERed to queue-name characters and must exist, else the fallback queue."""
    paths = inbound(sim, agi_result=agi(CC_RESULT="queue", CC_QUEUE=name))
    for path in paths:
        for event in path.apps("Queue"):
            assert set(event[1]["queue"]) <= set(cv.QUEUE_NAME_CHARS)
            assert event[1]["exists"]
    expected = "sales" if name == "s a l e s" else cv.FALLBACK_QUEUE
    assert first_queue(paths) == {expected}


@pytest.mark.parametrize(("given", "prio"), [("7", "7"), ("7;System(rm -rf /)", "7"), ("12345", "123"),
                                             ("high", "0"), ("", "0")])
def test_queue_priority_is_reduced_to_at_most_three_digits(sim, given, prio):
    """QUEUE_PRIO comes from CC_PRIORITY's digits (max 3); otherwise the DNIS default."""
    paths = inbound(sim, agi_result=agi(CC_RESULT="queue", CC_QUEUE="billing", CC_PRIORITY=given))
    assert {p.apps("Queue")[0][1]["prio"] for p in paths} == {prio}


def test_vip_line_keeps_its_priority_when_the_cti_server_is_down(sim):
    """DNIS 4001 enters the fallback queue with a higher QUEUE_PRIO than the hotline."""
    vip = {p.apps("Queue")[0][1]["prio"] for p in inbound(sim, "4001")}
    hotline = {p.apps("Queue")[0][1]["prio"] for p in inbound(sim, "4000")}
    assert len(vip) == len(hotline) == 1
    assert int(vip.pop()) > int(hotline.pop())


def test_done_result_hangs_up_without_queueing(sim):
    """CC_RESULT=done: the IVR finished the call, Hangup and no Queue()."""
    paths = inbound(sim, agi_result=agi(CC_RESULT=cv.RESULT_DONE, CC_QUEUE="sales"))
    assert [(p.end, p.queues) for p in paths] == [("hangup", [])]


def test_transfer_result_dials_an_allow_listed_agent(sim):
    """CC_RESULT=transfer to 6002 dials Local/6002@agents/n; unanswered -> fallback queue."""
    paths = inbound(sim, agi_result=agi(CC_RESULT=cv.RESULT_TRANSFER, CC_TRANSFER_TO="6002"))
    assert {p.apps("Dial")[0][1]["target"] for p in paths} == {"Local/6002@agents/n"}
    assert_every_path_ends_cleanly(paths)
    assert_fallback_before_hangup(paths)
    assert any(p.queues == [cv.FALLBACK_QUEUE] for p in paths)


@pytest.mark.parametrize("target", ["999", "", "6002,9", "h", "s", "5551234", "6002&PJSIP/trunk/900"])
def test_transfer_to_anything_else_uses_the_fallback_queue(sim, target):
    """A transfer target outside [cc-transfer]'s allow-list never reaches Dial."""
    paths = inbound(sim, agi_result=agi(CC_RESULT="transfer", CC_TRANSFER_TO=target))
    digits = re.sub(r"\D", "", target)
    if re.fullmatch(r"6\d{3}", digits):
        assert {p.apps("Dial")[0][1]["target"] for p in paths} == {f"Local/{digits}@agents/n"}
    else:
        assert not any(p.apps("Dial") for p in paths)
        assert first_queue(paths) == {cv.FALLBACK_QUEUE}


def test_acd_result_waits_for_the_daemon_then_falls_back(sim, dialplan):
    """CC_RESULT=acd: MusicOnHold passes in cc-wait; with no daemon heartbeat, the fallback queue."""
    paths = inbound(sim, agi_result=agi(CC_RESULT=cv.RESULT_ACD))
    for path in paths:
        moh = path.apps("MusicOnHold")[0][1]
        assert moh["where"][0] == cv.CONTEXT_WAIT
        assert moh["duration"] == dialplan.globals["CTI_ACD_CHECK_SECS"]
    assert first_queue(paths) == {cv.FALLBACK_QUEUE}
    assert_every_path_ends_cleanly(paths)


def test_without_a_heartbeat_the_wait_ends_after_the_dead_time(sim, dialplan):
    """A caller in cc-wait whose beat never moves hears music for CTI_ACD_DEAD_SECS, then the fallback queue."""
    paths = sim.explore(cv.CONTEXT_WAIT, "s", env=dict(CALLER))
    waited = {sum(int(m[1]["duration"]) for m in p.apps("MusicOnHold")) for p in paths if p.end != "answered"}
    dead, check = int(dialplan.globals["CTI_ACD_DEAD_SECS"]), int(dialplan.globals["CTI_ACD_CHECK_SECS"])
    assert waited == {dead + (-dead) % check}
    assert first_queue(paths) == {cv.FALLBACK_QUEUE}


@pytest.mark.parametrize("result", sorted(RESULTS))
@pytest.mark.parametrize("dnis", ["4000", "4001", "4050"])
def test_every_result_ends_in_queue_or_hangup(sim, result, dnis):
    """For every CC_RESULT and every Queue/Dial outcome the call ends in an answer or Hangup."""
    paths = inbound(sim, dnis, agi_result=agi(CC_RESULT=result, CC_QUEUE="vip", CC_TRANSFER_TO="6001"))
    assert_every_path_ends_cleanly(paths)
    if result != cv.RESULT_DONE:
        assert_fallback_before_hangup(paths)


def test_result_strings_in_the_dialplan_are_the_contract_constants(dialplan):
    """The CC_RESULT values [cc-route] compares with are exactly RESULT_* (fallback is the default)."""
    compared = set()
    for step in dialplan.steps["cc-route"]["s"].values():
        compared.update(re.findall(r'"\$\{result\}" = "([a-z]+)"', step.data))
    assert compared == RESULTS - {cv.RESULT_FALLBACK}


def test_agistatus_is_only_logged_never_decided_upon(dialplan):
    """AGISTATUS appears only in NoOp() logging, never in a condition."""
    for step in dialplan.all_steps():
        if "AGISTATUS" in step.data:
            assert step.app == "NoOp", step


# =============================================================================
# Queue() always returns; the fallback queue exists
# =============================================================================


def test_fallback_queue_is_the_contract_constant_and_exists(dialplan, conf, queue_names):
    """CTI_FALLBACK_QUEUE == FALLBACK_QUEUE, defined in queues.conf with static members."""
    assert dialplan.globals["CTI_FALLBACK_QUEUE"] == cv.FALLBACK_QUEUE
    assert cv.FALLBACK_QUEUE in queue_names
    queues = conf["queues.conf"]
    members = [v for k, v in queues.resolved(queues.one(cv.FALLBACK_QUEUE)) if k == "member"]
    assert members, "the fallback queue must ring agents even before the daemon added any"


def test_contract_queues_exist(queue_names):
    """support, sales, vip, billing and complaints are defined."""
    assert {"support", "sales", "vip", "billing", "complaints"} <= queue_names


def test_every_queue_call_has_a_timeout_and_no_continue_option(dialplan):
    """Every Queue() passes a positive timeout (5th argument) and not option c."""
    calls = [s for s in dialplan.all_steps() if s.app == "Queue"]
    assert calls
    for step in calls:
        args = split_top(step.data, ",")
        assert len(args) >= 5, step
        timeout = args[4]
        timeout = dialplan.globals.get(timeout[2:-1], "") if timeout.startswith("${") else timeout
        assert timeout.isdigit() and int(timeout) > 0, step
        assert "c" not in args[1] and "n" not in args[1], step


def test_every_queue_can_send_callers_back_to_the_dialplan(conf, queue_names):
    """joinempty/leavewhenempty are factor lists covering unregistered or invalid phones."""
    queues = conf["queues.conf"]
    factors = {"paused", "penalty", "inuse", "ringing", "unavailable", "invalid", "unknown", "wrapup"}
    for name in queue_names:
        settings = queues.settings(queues.one(name))
        for key in ("joinempty", "leavewhenempty"):
            values = {v.strip() for v in settings[key].split(",")}
            assert values <= factors and {"unavailable", "invalid"} <= values, (name, key)
        assert settings.get("autopause", "no") == "no", name


def test_queue_strategies_and_timeouts_are_valid(conf, queue_names):
    """Each queue has a known strategy and a positive member ring timeout."""
    queues = conf["queues.conf"]
    strategies = {"ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear", "wrandom"}
    for name in queue_names:
        settings = queues.settings(queues.one(name))
        assert settings["strategy"] in strategies, name
        assert int(settings["timeout"]) > 0, name


REMOVED_QUEUE_KEYWORDS = {"eventwhencalled", "eventmemberstatus", "membermacro", "monitor-join"}
KNOWN_QUEUE_KEYWORDS = {
    "musicclass", "announce", "strategy", "servicelevel", "context", "penaltymemberslimit", "timeout", "retry",
    "timeoutpriority", "weight", "wrapuptime", "autofill", "autopause", "autopausedelay", "autopausebusy",
    "autopauseunavail", "maxlen", "setinterfacevar", "setqueueentryvar", "setqueuevar", "membergosub",
    "announce-frequency", "min-announce-frequency", "periodic-announce-frequency", "random-periodic-announce",
    "relative-periodic-announce", "announce-holdtime", "announce-position", "announce-to-first-user",
    "announce-position-limit", "announce-round-seconds", "announce-position-only-up", "periodic-announce",
    "joinempty", "leavewhenempty", "reportholdtime", "ringinuse", "memberdelay", "timeoutrestart",
    "defaultrule", "member",
}
KNOWN_QUEUE_GENERAL = {"persistentmembers", "autofill", "updatecdr", "shared_lastcall", "negative_penalty_invalid",
                       "log_membername_as_agent", "log_unpause_on_reason_change", "force_longest_waiting_caller"}


def test_queues_conf_uses_no_removed_or_unknown_keywords(conf):
    """No eventwhencalled/eventmemberstatus/membermacro/monitor-join; every key is a known keyword."""
    queues = conf["queues.conf"]
    for cat in queues.categories:
        keys = {k for k, _, _ in cat.items}
        assert not keys & REMOVED_QUEUE_KEYWORDS, (cat.name, keys & REMOVED_QUEUE_KEYWORDS)
        known = KNOWN_QUEUE_GENERAL if cat.name == "general" else KNOWN_QUEUE_KEYWORDS
        assert keys <= known, (cat.name, keys - known)


def test_static_members_ring_existing_agent_phones(conf, dialplan):
    """Static members are Local/6XXX@agents/n with the matching PJSIP endpoint as state interface."""
    queues, pjsip = conf["queues.conf"], conf["pjsip.conf"]
    endpoints = {c.name for c in pjsip.categories if not c.template and pjsip.settings(c).get("type") == "endpoint"}
    for cat in queues.categories:
        for key, value, _ in cat.items:
            if key != "member":
                continue
            interface, penalty, _name, state = [p.strip() for p in value.split(",")[:4]]
            match = re.fullmatch(r"Local/(\d+)@agents/n", interface)
            assert match and dialplan.match("agents", match.group(1)), value
            assert penalty.isdigit() and state == f"PJSIP/{match.group(1)}" and match.group(1) in endpoints, value


# =============================================================================
# Daemon-driven ACD, hold, transfer, click-to-dial, supervisor
# =============================================================================


def acd_env(**extra) -> dict:
    return dict(CALLER, acd_since=str(START_CLOCK), **extra)


@pytest.mark.parametrize("iface", ["Local/6001@agents/n", "Local/6001@agents", "PJSIP/6001"])
def test_connect_dials_the_picked_agent_and_returns_to_waiting(sim, iface):
    """cc-connect dials CC_AGENT_IFACE; NOANSWER/BUSY/CHANUNAVAIL go back to cc-wait."""
    paths = sim.explore(cv.CONTEXT_CONNECT, "s", env=acd_env(CC_AGENT_IFACE=iface))
    assert {p.apps("Dial")[0][1]["target"] for p in paths} == {iface}
    for path in paths:
        if path.end != "answered":
            assert path.apps("MusicOnHold")[0][1]["where"][0] == cv.CONTEXT_WAIT
    assert_every_path_ends_cleanly(paths)
    assert_fallback_before_hangup(paths)


@pytest.mark.parametrize("iface", ["", "Local/6001@agents/n,99,U(evil)", "PJSIP/6001&PJSIP/6002",
                                   "Local/6001@from-pstn/n", "DAHDI/g1/0900123", "Local/6001@cc-fallback"])
def test_connect_refuses_interfaces_outside_the_allow_list(sim, iface):
    """Anything but Local/<digits>@agents[/n] or PJSIP/<name> is not dialled; the caller waits again."""
    paths = sim.explore(cv.CONTEXT_CONNECT, "s", env=acd_env(CC_AGENT_IFACE=iface))
    assert not any(p.apps("Dial") for p in paths)
    assert {p.apps("MusicOnHold")[0][1]["where"][0] for p in paths} == {cv.CONTEXT_WAIT}


def test_connect_t_alias_behaves_like_connect(sim):
    """The lab's cc-connect-t name reaches the same Dial."""
    paths = sim.explore("cc-connect-t", "s", env=acd_env(CC_AGENT_IFACE="PJSIP/6002"))
    assert {p.apps("Dial")[0][1]["target"] for p in paths} == {"PJSIP/6002"}


@pytest.mark.parametrize(("given", "seconds"), [("45", "45"), ("0", None), ("", None), ("x9", "9"),
                                                ("99999", None), ("121", None), ("120", "120")])
def test_ring_time_of_an_offer_is_bounded(sim, dialplan, given, seconds):
    """CC_RING_SECS sets the ring time of one offer; empty, 0 or over 120 use CTI_AGENT_RING_SECS."""
    paths = sim.explore(cv.CONTEXT_CONNECT, "s", env=acd_env(CC_AGENT_IFACE="PJSIP/6001", CC_RING_SECS=given))
    expected = seconds or dialplan.globals["CTI_AGENT_RING_SECS"]
    assert {p.apps("Dial")[0][1]["timeout"] for p in paths} == {expected}


def test_acd_wait_is_bounded_in_total(sim, dialplan):
    """A caller past CTI_ACD_MAX_WAIT_SECS in the ACD goes to the fallback queue at once."""
    since = START_CLOCK - int(dialplan.globals["CTI_ACD_MAX_WAIT_SECS"])
    paths = sim.explore(cv.CONTEXT_WAIT, "s", env=dict(CALLER, acd_since=str(since)))
    assert not any(p.apps("MusicOnHold") for p in paths)
    assert first_queue(paths) == {cv.FALLBACK_QUEUE}


def test_acd_clock_restarts_after_a_conversation(sim):
    """A caller the daemon takes back from an agent (DIALSTATUS=ANSWER) gets a fresh wait."""
    env = dict(CALLER, acd_since=str(START_CLOCK - 100_000), DIALSTATUS="ANSWER")
    paths = sim.explore(cv.CONTEXT_WAIT, "s", env=env)
    assert {p.apps("MusicOnHold")[0][1]["where"][0] for p in paths} == {cv.CONTEXT_WAIT}


def test_hold_that_nobody_ends_falls_back_to_the_queue(sim):
    """A caller left on hold (daemon gone) reaches the fallback queue after CTI_HOLD_MAX_SECS."""
    paths = sim.explore(cv.CONTEXT_HOLD, "s", env=dict(CALLER, BRIDGEPEER="PJSIP/6001-00000001"),
                        moh_outcomes=("timeout", "bridged"))
    for path in paths:
        assert path.apps("MusicOnHold")[0][1]["duration"].isdigit()
        bridged = path.branches[0][1] == 1
        assert (path.queues == []) == bridged, path.events
    assert_every_path_ends_cleanly(paths)


def test_agent_hold_leg_is_bounded(sim):
    """The parked agent leg hangs up after CTI_HOLD_MAX_SECS at the latest."""
    paths = sim.explore(cv.CONTEXT_AGENT_HOLD, "s", env=CALLER)
    assert [p.end for p in paths] == ["hangup"]


def test_blind_transfer_target_context_dials_agents_only(sim, dialplan):
    """cc-transfer (AMI Redirect target) has only agent extensions and falls back when unanswered."""
    assert set(dialplan.steps[cv.CONTEXT_TRANSFER]) == {"_6XXX"}
    paths = sim.explore(cv.CONTEXT_TRANSFER, "6003", env=CALLER)
    assert {p.apps("Dial")[0][1]["target"] for p in paths} == {"Local/6003@agents/n"}
    assert_fallback_before_hangup(paths)


def test_consultation_calls_ring_agents_and_never_queue(sim, dialplan):
    """TRANSFER_CONTEXT (cc-consult) dials agents only and hangs up instead of queueing."""
    paths = sim.explore("cc-consult", "6004", env=CALLER)
    assert {p.apps("Dial")[0][1]["target"] for p in paths} == {"Local/6004@agents/n"}
    assert all(not p.queues for p in paths)
    prepare = dialplan.steps["cc-ivr-prepare"]["s"].values()
    assert "__TRANSFER_CONTEXT=cc-consult" in {s.data for s in prepare}


def test_agents_are_reached_through_local_channels_or_pjsip(sim):
    """Local/6001@agents rings PJSIP/6001."""
    paths = sim.explore(cv.CONTEXT_AGENTS, "6001", env=CALLER)
    assert {p.apps("Dial")[0][1]["target"] for p in paths} == {"PJSIP/6001"}
    assert_every_path_ends_cleanly(paths)


def test_agent_phones_can_only_call_agents(dialplan):
    """[agent-phones] includes [agents] and nothing that reaches the PSTN or the IVR."""
    assert dialplan.includes["agent-phones"] == [cv.CONTEXT_AGENTS]
    assert not dialplan.steps["agent-phones"]
    assert dialplan.match("agent-phones", "4000") is None
    assert dialplan.match("agent-phones", "004930123456") is None


@pytest.mark.parametrize(("number", "dialled"), [("5552001", "5552001"), ("+4930123456", "+4930123456"),
                                                 ("+4930&PJSIP/evil", "+4930"), ("0049,,G(x)", "0049"),
                                                 ("5552001)U(x", "5552001")])
def test_click_to_dial_dials_only_digits_and_plus(sim, dialplan, number, dialled):
    """cc-outbound FILTERs the customer number to digits and '+' before Dial()."""
    paths = sim.explore(cv.CONTEXT_OUTBOUND, number, env=CALLER)
    trunk = dialplan.globals["CTI_OUTBOUND_TRUNK"]
    assert {p.apps("Dial")[0][1]["target"] for p in paths} == {f"PJSIP/{dialled}@{trunk}"}
    assert {p.env["CALLERID(num)"] for p in paths} == {dialplan.globals["CTI_OUTBOUND_CALLERID"]}
    assert_every_path_ends_cleanly(paths)


def test_click_to_dial_rejects_non_numbers(dialplan):
    """Originate to cc-outbound with a non-number finds no extension."""
    for number in ("abc", "12", "s", "h", "*97", "+49&PJSIP/evil"):
        assert dialplan.match(cv.CONTEXT_OUTBOUND, number) is None, number


@pytest.mark.parametrize(("mode", "options"), [(cv.SPY_LISTEN, "qES"), (cv.SPY_WHISPER, "qwES"),
                                               (cv.SPY_BARGE, "qBES")])
def test_supervisor_modes_use_fixed_chanspy_options(sim, mode, options):
    """listen/whisper/barge run ChanSpy(<filtered target>,<fixed options>)."""
    target = "PJSIP/6001-0000000a"
    paths = sim.explore(cv.CONTEXT_SPY, mode, env=dict(CALLER, CC_SPY_TARGET=target))
    assert {p.apps("ChanSpy")[0][1] for p in paths} == {f"{target},{options}"}
    local = "Local/6001@agents-00000003;1"
    paths = sim.explore(cv.CONTEXT_SPY, mode, env=dict(CALLER, CC_SPY_TARGET=local))
    assert {p.apps("ChanSpy")[0][1] for p in paths} == {f"{local},{options}"}


@pytest.mark.parametrize("target", ["", "PJSIP", "PJSIP/", "PJSIP/6001", "PJSIP/6001-0001,qBx(1)", "all",
                                    "PJSIP/6001-0000000a,B"])
def test_supervisor_never_spies_on_a_prefix_or_with_injected_options(sim, target):
    """An empty, partial or option-carrying target is refused instead of spying on every channel."""
    for mode in (cv.SPY_LISTEN, cv.SPY_WHISPER, cv.SPY_BARGE):
        paths = sim.explore(cv.CONTEXT_SPY, mode, env=dict(CALLER, CC_SPY_TARGET=target))
        for path in paths:
            for event in path.apps("ChanSpy"):
                prefix, options = event[1].rsplit(",", 1)
                assert "," not in prefix and options in ("qES", "qwES", "qBES")
                assert re.fullmatch(r"[A-Za-z]+/[-_.@0-9A-Za-z]+-[0-9a-f]+(;[12])?", prefix)
        assert {p.end for p in paths} == {"hangup"}


def test_supervisor_context_offers_exactly_three_modes(dialplan):
    """cc-spy answers only listen, whisper, barge (and its internal refuse)."""
    assert set(dialplan.steps[cv.CONTEXT_SPY]) == {cv.SPY_LISTEN, cv.SPY_WHISPER, cv.SPY_BARGE, "refuse"}


@pytest.mark.parametrize("context", ["cc-wait", "cc-connect", "cc-hold", "cc-agent-hold", "cc-fallback",
                                     "cc-last-resort", "cc-route"])
def test_daemon_entry_points_end_cleanly_without_any_daemon_data(sim, context):
    """Redirected into a context with no CC_* variables at all, the caller still ends cleanly."""
    paths = sim.explore(context, "s", env=CALLER)
    assert_every_path_ends_cleanly(paths)
    assert_fallback_before_hangup([p for p in paths if context not in ("cc-agent-hold", "cc-last-resort")])


def test_contexts_named_in_channel_vars_exist(dialplan):
    """Every CONTEXT_* constant names a context of extensions.conf."""
    contexts = {v for k, v in vars(cv).items() if k.startswith("CONTEXT_")}
    assert contexts <= set(dialplan.steps)


def test_last_resort_plays_an_announcement_or_voicemail(sim, dialplan):
    """With no mailbox configured the caller hears CTI_LAST_RESORT_PROMPT, then Hangup."""
    assert dialplan.globals["CTI_LAST_RESORT_MAILBOX"] == ""
    paths = sim.explore("cc-last-resort", "s", env=CALLER)
    assert [(p.apps("Playback")[0][1], p.end) for p in paths] == [(dialplan.globals["CTI_LAST_RESORT_PROMPT"],
                                                                   "hangup")]
    with_box = sim.explore("cc-last-resort", "s", env=dict(CALLER, CTI_LAST_RESORT_MAILBOX="100@cc"))
    assert [p.apps("VoiceMail")[0][1] for p in with_box] == ["100@cc,u"]


# =============================================================================
# Static checks: untrusted data, variable names, applications
# =============================================================================


def test_no_caller_or_daemon_data_reaches_dangerous_applications_unfiltered(dialplan):
    """Dial/Queue/ChanSpy/Goto/Gosub/System/Exec arguments hold CALLERID/EXTEN/DIGITS/CC_* only inside FILTER()."""
    derived = tainted_locals(dialplan)
    offenders = []
    for step in dialplan.all_steps():
        if step.app.lower() in SINKS:
            bad = tainted(sink_text(step), derived)
            if bad:
                offenders.append((step.context, step.exten, step.priority, step.app, bad))
    assert offenders == []


def test_taint_check_catches_unfiltered_and_derived_data():
    """The static check itself flags direct, derived and function-based caller data."""
    assert tainted("${CC_QUEUE}", set()) == ["CC_QUEUE"]
    assert tainted("Local/${EXTEN}@agents", set()) == ["EXTEN"]
    assert tainted("${CALLERID(num)}", set()) == ["CALLERID"]
    assert tainted("${q}", {"q"}) == ["q"]
    assert tainted("${FILTER(0-9,${EXTEN})}", set()) == []
    assert tainted("${FILTER(0-9,${EXTEN})}${CC_X}", set()) == ["CC_X"]


def test_dialplan_never_runs_shell_commands(dialplan):
    """No System/TrySystem/Exec/TryExec/ExecIf and no SHELL()/EVAL() anywhere."""
    for step in dialplan.all_steps():
        assert step.app.lower() not in {"system", "trysystem", "exec", "tryexec", "execif", "originate"}, step
        assert not {n for n, is_fn in refs(step.data) if is_fn} & {"SHELL", "EVAL", "EVAL_EXTEN", "FILE"}, step


def test_filters_never_keep_argument_separators(dialplan):
    """No FILTER() allowed set contains , & ( ) ^ quotes \\ $ { } [ ] | : ? = or whitespace."""
    forbidden = set(",&()^\"'\\${}[]|:?= \t\r\n")
    for step in dialplan.all_steps():
        for allowed, _ in filter_calls(step.data):
            assert not filter_allowed(allowed) & forbidden, (step, allowed)


@pytest.mark.parametrize(("expression", "chars"), [
    ("${CC_QUEUE}", cv.QUEUE_NAME_CHARS),
    ("${CC_AGENT_IFACE}", cv.AGENT_IFACE_CHARS),
    ("${CC_SPY_TARGET}", cv.CHANNEL_NAME_CHARS),
    ("${CC_TRANSFER_TO}", cv.TRANSFER_TO_CHARS),
])
def test_filters_keep_exactly_the_contract_character_sets(dialplan, expression, chars):
    """FILTER() of each daemon value keeps exactly the set channel_vars.py documents."""
    sets = [filter_allowed(a) for s in dialplan.all_steps() for a, v in filter_calls(s.data) if v == expression]
    assert sets and all(s == set(chars) for s in sets)


def test_click_to_dial_filter_keeps_digits_and_plus(dialplan):
    """The customer number FILTER in cc-outbound keeps DIAL_NUMBER_CHARS."""
    steps = [s for prios in dialplan.steps[cv.CONTEXT_OUTBOUND].values() for s in prios.values()]
    sets = [filter_allowed(a) for s in steps for a, v in filter_calls(s.data) if v == "${EXTEN}"]
    assert len(sets) == 2 and all(s == set(cv.DIAL_NUMBER_CHARS) for s in sets)


BUILTIN_READS = {"EXTEN", "CONTEXT", "PRIORITY", "EPOCH", "AGISTATUS", "QUEUESTATUS", "DIALSTATUS", "BRIDGEPEER",
                 "QUEUE_PRIO"}
BUILTIN_WRITES = {"QUEUE_PRIO", "TRANSFER_CONTEXT", "BRIDGEPEER", "CALLERID(num)", "CHANNEL(language)"}


def _reads_and_writes(dialplan):
    reads, writes = set(), set()
    for step in dialplan.all_steps():
        reads.update(name for name, is_fn in refs(step.data) if not is_fn)
        if step.app == "Set":
            writes.add(step.data.split("=", 1)[0].strip().lstrip("_"))
    return reads, writes


def test_every_channel_variable_the_dialplan_reads_is_a_contract_constant(dialplan):
    """Reads are contract constants (CC_*), [globals], Asterisk's own, or locals this dialplan sets."""
    reads, writes = _reads_and_writes(dialplan)
    local = {w for w in writes if w.islower()}
    unknown = reads - CONTRACT_VARS - set(dialplan.globals) - BUILTIN_READS - local
    assert unknown == set()
    assert {r for r in reads if r.startswith("CC_")} <= CONTRACT_VARS
    assert {r for r in reads if r.islower()} <= local, "a local is read but never set"


def test_every_variable_the_dialplan_sets_is_known(dialplan):
    """Sets go to contract constants, documented Asterisk variables or lowercase locals."""
    _, writes = _reads_and_writes(dialplan)
    assert {w for w in writes if not w.islower()} <= CONTRACT_VARS | BUILTIN_WRITES


def test_every_global_is_defined_and_used(dialplan):
    """No ${CTI_*} typo and no dead [globals] entry."""
    reads, _ = _reads_and_writes(dialplan)
    used = {r for r in reads if r.startswith("CTI_")}
    assert used == set(dialplan.globals)


def test_dialplan_general_settings_protect_the_file(dialplan):
    """static + writeprotect: 'dialplan save' cannot rewrite extensions.conf."""
    assert dialplan.general["static"] == "yes" and dialplan.general["writeprotect"] == "yes"


APP_MODULES = {
    "Queue": "app_queue.so", "Dial": "app_dial.so", "AGI": "res_agi.so", "Gosub": "app_stack.so",
    "Return": "app_stack.so", "Playback": "app_playback.so", "ChanSpy": "app_chanspy.so",
    "MusicOnHold": "res_musiconhold.so",
}
CORE_APPS = {"NoOp", "Answer", "Set", "Goto", "GotoIf", "Hangup", "Wait"}
OPTIONAL_APPS = {"VoiceMail"}  # only with CTI_LAST_RESORT_MAILBOX set (and app_voicemail configured)
FUNCTION_MODULES = {
    "FILTER": "func_strings.so", "REGEX": "func_strings.so", "IF": "func_logic.so",
    "DIALPLAN_EXISTS": "func_dialplan.so", "CALLERID": "func_callerid.so", "CHANNEL": "func_channel.so",
    "QUEUE_EXISTS": "app_queue.so",
}


def test_modules_conf_requires_every_module_the_dialplan_uses(dialplan, conf):
    """Each application and function the dialplan uses is core or a 'require'd module."""
    modules = conf["modules.conf"].one("modules")
    required = {v for k, v, _ in modules.items if k == "require"}
    for step in dialplan.all_steps():
        if step.app not in CORE_APPS | OPTIONAL_APPS:
            assert APP_MODULES.get(step.app) in required, step.app
        for name, is_fn in refs(step.data):
            if is_fn:
                assert FUNCTION_MODULES.get(name) in required, name
    assert "pbx_config.so" in required


def test_modules_conf_never_loads_shell_access(conf):
    """app_system, func_shell and app_externalivr are noload'ed and nothing is both required and noload'ed."""
    modules = conf["modules.conf"].one("modules")
    noload = {v for k, v, _ in modules.items if k == "noload"}
    required = {v for k, v, _ in modules.items if k == "require"}
    assert {"app_system.so", "func_shell.so", "app_externalivr.so"} <= noload
    assert not noload & required


def test_music_on_hold_classes_in_use_exist(conf, dialplan, queue_names):
    """CTI_MOH_CLASS and every queue's musicclass are defined (mode=files, nothing custom)."""
    moh = conf["musiconhold.conf"]
    classes = {c.name for c in moh.categories if c.name != "general"}
    queues = conf["queues.conf"]
    used = {dialplan.globals["CTI_MOH_CLASS"]}
    used |= {queues.settings(queues.one(q)).get("musicclass", "default") for q in queue_names}
    assert used <= classes
    for cat in moh.categories:
        assert moh.settings(cat).get("mode", "files") == "files", cat.name


def test_agent_phones_land_in_the_agent_phones_context(conf, dialplan):
    """Every PJSIP endpoint of the example uses [agent-phones] and is an agent extension."""
    pjsip = conf["pjsip.conf"]
    endpoints = [c for c in pjsip.categories if not c.template and pjsip.settings(c).get("type") == "endpoint"]
    assert endpoints
    for cat in endpoints:
        settings = pjsip.settings(cat)
        assert settings["context"] == "agent-phones" and settings["context"] in dialplan.steps
        assert dialplan.match(cv.CONTEXT_AGENTS, cat.name), cat.name
        assert settings["direct_media"] == "no"
    assert not any("password" in k for c in pjsip.categories for k, _, _ in c.items), "no passwords in the repo"


# =============================================================================
# manager.conf: the least-privilege AMI user
# =============================================================================

AMI_CLASSES = {"system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf", "reporting", "cdr",
               "dialplan", "originate", "agi", "cc", "aoc", "test", "security", "message", "all", "none"}


@pytest.fixture(scope="module")
def cti_user(conf):
    manager = conf["manager.conf"]
    return manager, manager.one("cti")


def _classes(value: str) -> set[str]:
    return {v.strip() for v in value.split(",") if v.strip()}


def test_manager_user_has_exactly_the_chosen_classes(cti_user):
    """cti reads system,call,agent,dialplan and writes call,originate,agent,reporting."""
    manager, user = cti_user
    settings = manager.settings(user)
    assert _classes(settings["read"]) == {"system", "call", "agent", "dialplan"}
    assert _classes(settings["write"]) == {"call", "originate", "agent", "reporting"}
    assert _classes(settings["read"]) | _classes(settings["write"]) <= AMI_CLASSES


def test_manager_user_cannot_reach_a_shell_or_the_configuration(cti_user):
    """No write system/command/config/all, and no read of dtmf (caller PINs) or all."""
    manager, user = cti_user
    settings = manager.settings(user)
    assert not _classes(settings["write"]) & {"system", "command", "config", "all", "user", "agi"}
    assert not _classes(settings["read"]) & {"all", "dtmf", "command", "config", "security"}


def test_manager_permits_only_the_loopback_address(cti_user):
    """AMI binds to 127.0.0.1, the user denies everything and permits only 127.0.0.1."""
    manager, user = cti_user
    general = manager.settings(manager.one("general"))
    assert general["bindaddr"] == "127.0.0.1" and general["enabled"] == "yes"
    assert general["webenabled"] == "no"
    acl = [(k, v) for k, v, _ in user.items if k in ("deny", "permit", "acl")]
    assert acl == [("deny", "0.0.0.0/0.0.0.0"), ("permit", "127.0.0.1/255.255.255.255")]


def test_manager_secret_is_not_in_the_repository(cti_user):
    """The secret comes from an #include created at installation; no literal secret here."""
    manager, user = cti_user
    assert "secret" not in {k for k, _, _ in user.items}
    includes = [(kind, name, line) for kind, name, line in manager.directives if kind == "include"]
    assert len(includes) == 1 and includes[0][1] == "manager_cti_secret.conf"
    assert user.line < includes[0][2] < max(line for _, _, line in user.items)


def test_manager_write_timeout_survives_reactor_pauses(cti_user):
    """writetimeout is 5000 ms: a GC or DB pause does not drop the AMI session."""
    manager, user = cti_user
    assert manager.settings(user)["writetimeout"] == "5000"


def test_manager_logs_connects_and_limits_unauthenticated_sessions(cti_user):
    """displayconnects on, timestamps off (lab format), short auth timeout and limit."""
    manager, _ = cti_user
    general = manager.settings(manager.one("general"))
    assert general["displayconnects"] == "yes" and general["timestampevents"] == "no"
    assert int(general["authtimeout"]) <= 30 and int(general["authlimit"]) <= 50


def test_manager_has_no_other_users(cti_user):
    """Only [general] and [cti]: no leftover admin user with read/write=all."""
    manager, _ = cti_user
    assert [c.name for c in manager.categories] == ["general", "cti"]


# =============================================================================
# README
# =============================================================================


def test_readme_documents_every_contract_variable_context_and_file():
    """README.md names each CC_* variable, each daemon-facing context and each .conf file."""
    readme = (CONF_DIR / "README.md").read_text(encoding="utf-8")
    for name in sorted(CONTRACT_VARS):
        assert f"`{name}`" in readme, name
    for context in {v for k, v in vars(cv).items() if k.startswith("CONTEXT_")}:
        assert f"`{context}`" in readme, context
    for path in CONF_FILES:
        assert path.name in readme, path.name
    for result in RESULTS:
        assert f"`{result}`" in readme, result
