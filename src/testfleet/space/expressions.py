"""A small, safe expression language for constraints, specs and triggers (never ``eval``).

Grammar, loosest binding first::

    expr     := implies
    implies  := or ( ("->" | "=>") implies )?          right-associative: a -> b -> c = a -> (b -> c)
    or       := and ( ("or" | "||") and )*
    and      := not ( ("and" | "&&") not )*
    not      := ("not" | "!") not | compare
    compare  := sum ( OP sum )*                         chained like Python: a < b <= c
    OP       := == != < <= > >= in, not in
    sum      := product ( ("+" | "-") product )*
    product  := unary ( ("*" | "/" | "//" | "%") unary )*
    unary    := "-" unary | atom
    atom     := NUMBER[unit | "%"] | STRING | true | false | null | NAME | `quoted name`
              | NAME "(" args ")" | "[" items "]" | "(" expr ")"

Names may contain dots (``db.pool_size``); anything else goes in backticks. Numbers may carry a
size unit (``64MB``, KB = 1024 bytes) or a duration unit (``250ms``, seconds as the base).
A number written with ``%`` right after it and no operand following (``cpu > 80%``) is that
number itself (a percentage as its metric counts it); ``7 % 3`` stays the remainder.
Functions: ``len min max abs present``.

Limits, so that no input can exhaust the stack: an expression is at most ``MAX_LENGTH``
characters, brackets, ``not`` and unary minus nest at most ``MAX_NESTING`` levels, and the tree
is at most ``MAX_DEPTH`` operations deep. Chains of ``and`` / ``or`` are one flat node each, so
thousands of terms cost no depth; a chain of 1,000 ``+`` is refused (split it, or sum a list).
An ordered comparison with ``null`` is false (as in SQL), never an error, so constraints over
optional parameters read naturally.

The parser builds a tuple tree once; :meth:`Expression.evaluate` walks it for one point and
:meth:`Expression.evaluate_columns` evaluates it over numpy columns (one call for a batch of
sampled points, which is what makes random generation fast).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from testfleet.errors import SpaceError

SIZE_UNITS = {"b": 1, "kb": 1024, "kib": 1024, "mb": 1024**2, "mib": 1024**2, "gb": 1024**3,
              "gib": 1024**3, "tb": 1024**4, "tib": 1024**4}
#: Longest expression text, deepest bracket / not / unary-minus nesting and deepest tree read.
MAX_LENGTH = 100_000
MAX_NESTING = 50
MAX_DEPTH = 100
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0,
                  "h": 3600.0, "d": 86400.0}


class _Missing:
    """The value of an optional key that is absent (distinct from JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING = _Missing()

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)(?P<unit>[A-Za-z]+)?
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`[^`]+`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>->|=>|==|!=|<=|>=|//|&&|\|\||[-+*/%<>!()\[\],])
""", re.VERBOSE)

_KEYWORDS = {"true": True, "True": True, "false": False, "False": False, "null": None,
             "None": None}
COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}
ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod}


def _present(value: Any) -> bool:
    return value is not MISSING


FUNCTIONS: dict[str, Callable[..., Any]] = {"len": len, "min": min, "max": max, "abs": abs,
                                            "present": _present}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    value: Any
    pos: int


def _unit_value(number: str, unit: str, text: str, pos: int) -> float | int:
    base = float(number)
    key = unit.lower()
    if not math.isfinite(base * SIZE_UNITS.get(key, 1)):
        raise SpaceError(f"number {number}{unit} is too large in {text!r}",
                         place=f"column {pos + 1}", expected="a finite number")
    if key in SIZE_UNITS:
        scaled = base * SIZE_UNITS[key]
        return int(scaled) if scaled == int(scaled) else scaled
    if unit in DURATION_UNITS:
        return base * DURATION_UNITS[unit]
    raise SpaceError(f"unknown unit {unit!r} after {number} in {text!r}", place=f"column {pos + 1}",
                     expected="a size unit (B, KB, MB, GB, TB, KiB...) or a duration unit "
                              "(ns, us, ms, s, m, h, d)")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise SpaceError(f"unexpected character {text[pos]!r} in {text!r}",
                             place=f"column {pos + 1}", expected="an expression")
        kind = match.lastgroup
        if kind == "unit":
            kind = "number"
        token_text = match.group(0)
        if match.group("number") is not None:
            number, unit = match.group("number"), match.group("unit")
            if unit:
                value: Any = _unit_value(number, unit, text, pos)
            else:
                try:
                    value = float(number) if any(c in number for c in ".eE") else int(number)
                except ValueError:  # more digits than Python converts
                    raise SpaceError(f"number too long in {text!r}", place=f"column {pos + 1}",
                                     expected="a number of at most 4300 digits") from None
            tokens.append(_Token("number", token_text, value, pos))
        elif kind == "string":
            body = token_text[1:-1]
            value = re.sub(r"\\(.)", r"\1", body)
            tokens.append(_Token("string", token_text, value, pos))
        elif kind == "quoted":
            tokens.append(_Token("name", token_text, token_text[1:-1], pos))
        elif kind == "name":
            if token_text in _KEYWORDS:
                tokens.append(_Token("const", token_text, _KEYWORDS[token_text], pos))
            elif token_text in ("and", "or", "not", "in"):
                tokens.append(_Token("op", token_text, token_text, pos))
            else:
                tokens.append(_Token("name", token_text, token_text, pos))
        elif kind == "op":
            tokens.append(_Token("op", token_text, token_text, pos))
        pos = match.end()
    tokens.append(_Token("end", "", None, len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.names: set[str] = set()
        self.nesting = 0

    def enter(self, token: _Token) -> None:
        """One more level of brackets, ``not`` or unary minus; refused past MAX_NESTING."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise SpaceError(f"expression nested more than {MAX_NESTING} levels deep",
                             place=f"column {token.pos + 1}",
                             expected=f"at most {MAX_NESTING} nested brackets, 'not' or '-'")

    def peek(self, *ops: str) -> bool:
        token = self.tokens[self.i]
        return token.kind == "op" and token.text in ops

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, op: str) -> None:
        token = self.take()
        if token.kind != "op" or token.text != op:
            self.fail(token, f"{op!r}")

    def fail(self, token: _Token, expected: str) -> None:
        seen = "the end" if token.kind == "end" else repr(token.text)
        raise SpaceError(f"unexpected {seen} in {self.text!r}", place=f"column {token.pos + 1}",
                         expected=expected)

    def parse(self) -> tuple[Any, ...]:
        tree = self.implies()
        if self.tokens[self.i].kind != "end":
            self.fail(self.tokens[self.i], "an operator or the end of the expression")
        return tree

    def implies(self) -> tuple[Any, ...]:
        left = self.or_()
        if self.peek("->", "=>"):
            self.take()
            return ("implies", left, self.implies())
        return left

    def or_(self) -> tuple[Any, ...]:
        terms = [self.and_()]
        while self.peek("or", "||"):
            self.take()
            terms.append(self.and_())
        return terms[0] if len(terms) == 1 else ("or", *terms)  # flat: no depth per term

    def and_(self) -> tuple[Any, ...]:
        terms = [self.not_()]
        while self.peek("and", "&&"):
            self.take()
            terms.append(self.not_())
        return terms[0] if len(terms) == 1 else ("and", *terms)

    def not_(self) -> tuple[Any, ...]:
        if self.peek("not", "!"):
            self.enter(self.take())
            inner = self.not_()
            self.nesting -= 1
            return ("not", inner)
        return self.compare()

    def compare(self) -> tuple[Any, ...]:
        operands = [self.sum()]
        ops: list[str] = []
        while True:
            if self.peek(*COMPARE, "in"):
                ops.append(self.take().text)
            elif self.peek("not") and self.tokens[self.i + 1].text == "in":
                self.i += 2
                ops.append("not in")
            else:
                break
            operands.append(self.sum())
        return operands[0] if not ops else ("compare", tuple(ops), tuple(operands))

    def sum(self) -> tuple[Any, ...]:
        left = self.product()
        while self.peek("+", "-"):
            left = ("arith", self.take().text, left, self.product())
        return left

    def product(self) -> tuple[Any, ...]:
        left = self.unary()
        while self.peek("*", "/", "//", "%"):
            if self._percent_sign():
                self.take()  # ``80%``: the number itself
                continue
            left = ("arith", self.take().text, left, self.unary())
        return left

    def _percent_sign(self) -> bool:
        """A ``%`` glued to the number before it and followed by no operand is a unit."""
        sign, before, after = self.tokens[self.i], self.tokens[self.i - 1], self.tokens[self.i + 1]
        if sign.text != "%" or before.kind != "number" or before.pos + len(before.text) != sign.pos:
            return False
        starts_operand = after.kind in ("number", "string", "const", "name") or (
            after.kind == "op" and after.text in ("(", "[", "-", "+", "!", "not"))
        return not starts_operand

    def unary(self) -> tuple[Any, ...]:
        if self.peek("-", "+"):
            token = self.take()
            self.enter(token)
            inner = self.unary()
            self.nesting -= 1
            return ("neg", inner) if token.text == "-" else inner
        return self.atom()

    def atom(self) -> tuple[Any, ...]:
        token = self.take()
        if token.kind in ("number", "string", "const"):
            return ("const", token.value)
        if token.kind == "name":
            if self.peek("("):
                if token.value not in FUNCTIONS:
                    raise SpaceError(f"unknown function {token.value!r} in {self.text!r}",
                                     place=f"column {token.pos + 1}",
                                     expected="one of " + ", ".join(sorted(FUNCTIONS)))
                self.enter(self.take())
                args = self.items(")")
                self.nesting -= 1
                return ("call", token.value, args)
            self.names.add(token.value)
            return ("name", token.value)
        if token.kind == "op" and token.text == "(":
            self.enter(token)
            inner = self.implies()
            self.expect(")")
            self.nesting -= 1
            return inner
        if token.kind == "op" and token.text == "[":
            self.enter(token)
            items = self.items("]")
            self.nesting -= 1
            return ("list", items)
        self.fail(token, "a value, a name or '('")
        raise AssertionError  # unreachable: fail raises

    def items(self, closing: str) -> tuple[Any, ...]:
        items: list[tuple[Any, ...]] = []
        if self.peek(closing):
            self.take()
            return ()
        while True:
            items.append(self.implies())
            if self.peek(","):
                self.take()
                continue
            self.expect(closing)
            return tuple(items)


def _compare_one(op: str, left: Any, right: Any) -> bool:
    if op == "in":
        return left in right
    if op == "not in":
        return left not in right
    if op in ("==", "!="):
        return bool(COMPARE[op](left, right))
    if left is None or right is None or left is MISSING or right is MISSING:
        return False  # an ordered comparison with null is false, as in SQL
    return bool(COMPARE[op](left, right))


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its source text, the names it reads and its tree."""

    text: str
    tree: tuple[Any, ...] = field(repr=False)
    names: frozenset[str]

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        try:
            return _eval(self.tree, env)
        except KeyError as exc:
            raise SpaceError(f"{self.text!r} reads {exc.args[0]!r}, which has no value",
                             expected="a parameter of the space") from None
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            return None  # a type mismatch (e.g. 'abc' * None) makes the expression undefined

    def holds(self, env: Mapping[str, Any]) -> bool:
        """True when the expression evaluates truthy (an undefined result does not hold)."""
        return bool(self.evaluate(env))

    def evaluate_columns(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Truth of the expression for each of n points given as columns; exact per-point
        semantics are kept by falling back to :meth:`holds` where numpy cannot vectorise."""
        from testfleet.space.columns import NotVectorisable, eval_columns  # it imports this

        try:
            with np.errstate(all="ignore"):
                out = eval_columns(self.tree, columns)
            out = np.asarray(out)
            if out.shape == ():
                return np.full(n, bool(out))
            if out.dtype == bool:
                return out
            if out.dtype == object and out.shape == (n,) and all(
                    isinstance(x, (bool, np.bool_)) for x in out):
                return out.astype(bool)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, NotVectorisable):
            pass
        plain = {name: columns[name].tolist() for name in self.names}  # Python values, exact
        rows = ({name: plain[name][i] for name in self.names} for i in range(n))
        return np.fromiter((self.holds(row) for row in rows), dtype=bool, count=n)


def parse(text: str) -> Expression:
    """Parse an expression once; errors name the column and what was expected."""
    if not isinstance(text, str) or not text.strip():
        raise SpaceError(f"empty or non-text expression {text!r}", expected="an expression")
    if len(text) > MAX_LENGTH:
        raise SpaceError(f"expression of {len(text)} characters is too long: {text[:40]!r}...",
                         expected=f"at most {MAX_LENGTH} characters")
    parser = _Parser(text)
    try:
        tree = parser.parse()
    except RecursionError:  # not expected within MAX_NESTING; kept so no traceback escapes
        raise SpaceError(f"expression nested too deeply: {text[:40]!r}...",
                         expected="fewer nested parentheses and operators") from None
    depth = tree_depth(tree)
    if depth > MAX_DEPTH:
        raise SpaceError(f"expression is {depth} operations deep (a long chain of '+', '*', "
                         f"'->' or comparisons?): {text[:40]!r}...",
                         expected=f"at most {MAX_DEPTH} levels: split it into several "
                                  "constraints or shorter chains")
    return Expression(text=text, tree=tree, names=frozenset(parser.names))


def tree_depth(tree: tuple[Any, ...]) -> int:
    """Depth of a parsed tree, walked with an explicit stack (it may be too deep to recurse)."""
    deepest, todo = 0, [(tree, 1)]
    while todo:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        for child in node[1:]:
            if isinstance(child, tuple) and child and isinstance(child[0], str):
                todo.append((child, depth + 1))
            elif isinstance(child, tuple):  # operands of compare / items of list and call
                todo.extend((item, depth + 1) for item in child
                            if isinstance(item, tuple) and item and isinstance(item[0], str))
    return deepest


def _eval(tree: tuple[Any, ...], env: Mapping[str, Any]) -> Any:
    kind = tree[0]
    if kind == "const":
        return tree[1]
    if kind == "name":
        return env[tree[1]]
    if kind == "and":
        return all(bool(_eval(term, env)) for term in tree[1:])
    if kind == "or":
        return any(bool(_eval(term, env)) for term in tree[1:])
    if kind == "implies":
        return (not _eval(tree[1], env)) or bool(_eval(tree[2], env))
    if kind == "not":
        return not _eval(tree[1], env)
    if kind == "compare":
        values = [_eval(t, env) for t in tree[2]]
        return all(_compare_one(op, values[i], values[i + 1]) for i, op in enumerate(tree[1]))
    if kind == "arith":
        left, right = _eval(tree[2], env), _eval(tree[3], env)
        return ARITH[tree[1]](left, right)
    if kind == "neg":
        return -_eval(tree[1], env)
    if kind == "list":
        return [_eval(t, env) for t in tree[1]]
    if kind == "call":
        return FUNCTIONS[tree[1]](*[_eval(t, env) for t in tree[2]])
    raise AssertionError(kind)
