"""Just enough PromQL structure for the monitoring tests (no dependency beyond Python).

An alert's expression is a condition: in a healthy cluster it returns nothing, so "does
it return data?" must be asked of what it compares, not of the comparison. data_parts()
splits an expression at its top-level set operators (or, and, unless) and comparison
operators (== != > < >= <=), following PromQL's precedence, and returns the operands
that select series, e.g.

    sum without (state) (a{state="known"}) - sum without (state) (a{state="up"}) > 0
        -> ['sum without (state) (a{state="known"}) - sum without (state) (a{state="up"})']
    x > 1000 and deriv(x[10m]) > 0      -> ['x', 'deriv(x[10m])']
    a < ignoring(state) group_left b    -> ['a', 'b']

and skeleton() takes the thresholds out but keeps the vector matching:

    x > 1000 and deriv(x[10m]) > 0      -> '(x) and (deriv(x[10m]))'

Operands without a series selector (14 * 86400, 0.25) are left out. Arithmetic (+ - * /
^ %) is not split: `a - b` returns data only if both sides match, which is the point.
Parentheses, braces, brackets and string literals are skipped over, so operators inside
label matchers, subqueries, function calls or strings are never split on.
"""

import re

_WORD = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER_ONLY = re.compile(r"^[\s0-9.eE+\-*/%^()]*$|^\s*(Inf|NaN)\s*$", re.IGNORECASE)
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_OPEN = {"(": ")", "{": "}", "[": "]"}


def _scan(expr):
    """Yields (index, char) of expr's top-level characters (depth 0, outside strings)."""
    depth = []
    i = 0
    n = len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" and c != "`" else 1
            i = j + 1
            continue
        if c in _OPEN:
            if not depth:
                yield i, c
            depth.append(_OPEN[c])
        elif depth and c == depth[-1]:
            depth.pop()
            if not depth:
                yield i, c
        elif c in ")}]":
            raise ValueError("unbalanced %r at %d in %r" % (c, i, expr))
        elif not depth:
            yield i, c
        i += 1
    if depth:
        raise ValueError("unclosed %r in %r" % (depth[-1], expr))


def _top_level_operators(expr):
    """(start, end, operator) of each operator at depth 0: set operators and comparisons."""
    out = []
    chars = list(_scan(expr))
    top = {i for i, _ in chars}
    k = 0
    while k < len(chars):
        i, c = chars[k]
        if c.isalpha() or c == "_":
            m = _WORD.match(expr, i)
            word = m.group(0)
            if word in ("and", "or", "unless"):
                out.append((i, m.end(), word))
            k += len(word)
            continue
        two = expr[i:i + 2]
        if two in ("==", "!=", ">=", "<=") and i + 1 in top:
            out.append((i, i + 2, two))
            k += 2
            continue
        if c in "<>":
            out.append((i, i + 1, c))
        k += 1
    return out


def _split_modifiers(rhs):
    """(modifiers, operand): `bool`, `on(...)`/`ignoring(...)` and `group_left(...)`/
    `group_right(...)` in front of a right-hand operand, and the operand itself."""
    s = rhs.lstrip()
    mods = []
    while True:
        m = re.match(r"(bool|on|ignoring|group_left|group_right)\b\s*", s)
        if not m:
            return " ".join(mods), s
        s = s[m.end():]
        word = m.group(1)
        if word != "bool" and s.startswith("("):
            end = s.index(")")
            word += s[:end + 1]
            s = s[end + 1:].lstrip()
        mods.append(word)


def _unwrap(expr):
    """expr without parentheses around the whole of it."""
    s = expr.strip()
    while s.startswith("(") and s.endswith(")"):
        first_close = next(i for i, c in _scan(s) if c == ")")
        if first_close != len(s) - 1:
            break
        s = s[1:-1].strip()
    return s


def split(expr):
    """(left, operator, modifiers, right) at the loosest top-level set or comparison
    operator, or None when there is none."""
    s = _unwrap(expr)
    ops = _top_level_operators(s)
    for group in (("or",), ("and", "unless"), _COMPARISONS):
        found = [o for o in ops if o[2] in group]
        if found:
            start, end, op = found[-1]  # left-associative: the last one binds loosest
            mods, right = _split_modifiers(s[end:])
            return s[:start].strip(), op, mods, right
    return None


def _is_number(expr):
    return bool(_NUMBER_ONLY.match(expr))


def data_parts(expr):
    """The operands of expr's top-level set and comparison operators that select series."""
    parts = split(expr)
    if parts is None:
        s = _unwrap(expr)
        return [] if _is_number(s) else [s]
    out = []
    for p in (parts[0], parts[3]):
        for q in data_parts(p):
            if q not in out:
                out.append(q)
    return out


def skeleton(expr):
    """expr with its thresholds taken out but its vector matching kept: a comparison with a
    number becomes its other side, one between two vectors gets `bool` (so it keeps every
    matched pair), `unless` keeps its left side, `and`/`or` stay. It returns data when the
    alert's series exist and match each other, whatever their values, so it fails for a
    misspelt metric or label and for an `and` whose sides can never match."""
    parts = split(expr)
    if parts is None:
        return _unwrap(expr)
    left, op, mods, right = parts
    if op in _COMPARISONS:
        if _is_number(_unwrap(right)):
            return skeleton(left)
        if _is_number(_unwrap(left)):
            return skeleton(right)
        mods = " ".join(["bool"] + [m for m in mods.split() if m != "bool"])
    if op == "unless":
        return skeleton(left)
    return " ".join(w for w in ("(%s)" % skeleton(left), op, mods, "(%s)" % skeleton(right)) if w)


def has_comparison(expr):
    """Whether expr filters by a top-level comparison or set operator (an alert condition)."""
    return split(expr) is not None


def substitute_grafana(expr, variables):
    """Grafana's template variables ($name, ${name}, ${name:raw}) replaced by concrete values."""
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise KeyError("no value for Grafana variable $%s in %r" % (name, expr))
        return variables[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)
