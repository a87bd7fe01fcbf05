"""The rule expression language: a small, typed subset of Python expressions, checked once.

An expression is parsed with ``ast`` and walked by a whitelist: anything not listed here
(attribute access other than ``card.<name>``, ``merchant.<name>`` and ``terminal.<name>``,
calls other than the few functions below, subscripts, lambdas, comprehensions, f-strings,
dunders) is refused with the position of the offending piece. The walk also type-checks
every node and rewrites it into plain Python that reads local variables, so a rule costs
what the equivalent hand-written ``if`` would.

Missing values (``score`` when the model did not score, ``card.age_days`` when the card's age
is unknown, ...) follow one rule: any comparison that involves a missing value is false
(including ``!=``, ``in`` and ``not in``). ``missing(x)`` and ``present(x)`` test for it.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field

from authhost.rules.variables import ACCEPTORS, VARIABLES, Kind, Variable, local_name

MAX_EXPRESSION_CHARS = 4000
LIST_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
BOOL_NAMES = {"true": True, "false": False, "True": True, "False": False}


class ExpressionError(ValueError):
    """An expression that cannot be accepted; ``line``/``column`` are 1-based within it."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class Typ:
    """The static type of a sub-expression."""

    kind: Kind | str  # Kind, or "list" (a named list) / "set" (a literal tuple)
    nullable: bool = False
    code_width: int = 0
    element: Kind | None = None  # for "set": the element kind
    var: str = ""  # the variable this is, when it is exactly one (its domain is checked)


@dataclass
class Compiled:
    """A checked expression rewritten to Python source over local variable names."""

    source: str
    variables: set[str] = field(default_factory=set)
    lists: set[str] = field(default_factory=set)


def list_local(name: str) -> str:
    """Identifier of a named list in the generated code."""
    return "l_" + name.encode().hex()


def _fail(node: ast.AST, message: str) -> ExpressionError:
    line = getattr(node, "lineno", 1)
    column = getattr(node, "col_offset", 0) + (0 if line == 1 else 1)  # line 1 has the "("
    return ExpressionError(message, line, max(column, 1))


_COMPARE_SYMBOLS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)
NUMBER, TEXT, BOOL = Typ(Kind.NUMBER), Typ(Kind.TEXT), Typ(Kind.BOOL)


class _Checker:
    """Walks one expression: validates, types and rewrites each node."""

    def __init__(self) -> None:
        self.variables: set[str] = set()
        self.lists: set[str] = set()

    # -- entry point -------------------------------------------------------------------
    def compile(self, text: str) -> Compiled:
        if len(text) > MAX_EXPRESSION_CHARS:
            raise ExpressionError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
        if not text.strip():
            raise ExpressionError("expression is empty")
        try:
            # parenthesised so that an expression may span lines without backslashes
            tree = ast.parse("(" + text + "\n)", mode="eval")
        except SyntaxError as exc:
            line = min(exc.lineno or 1, text.count("\n") + 1)
            column = (exc.offset or 2) - (1 if line == 1 else 0)
            raise ExpressionError(f"syntax error: {exc.msg}", line, max(column, 1)) from None
        node, typ = self.visit(tree.body)
        if typ.kind != Kind.BOOL:
            raise _fail(tree.body, f"a rule must be true or false, this is a {typ.kind}")
        return Compiled(ast.unparse(node), self.variables, self.lists)

    def visit(self, node: ast.AST) -> tuple[ast.expr, Typ]:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise _fail(node, f"{_describe(node)} is not allowed in a rule")
        return method(node)

    # -- leaves ------------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant) -> tuple[ast.expr, Typ]:
        value = node.value
        if isinstance(value, bool):
            return node, BOOL
        if isinstance(value, float) and not math.isfinite(value):  # 1e999: no value reaches
            raise _fail(node, "number too large: it reads as infinity, which no value reaches")
        if isinstance(value, (int, float)):
            return node, NUMBER
        if isinstance(value, str):
            return node, TEXT
        raise _fail(node, f"literal {value!r} is not a number, text or true/false")

    def visit_Name(self, node: ast.Name) -> tuple[ast.expr, Typ]:
        if node.id in BOOL_NAMES:
            return ast.Constant(BOOL_NAMES[node.id]), BOOL
        if node.id == "card":
            raise _fail(node, "'card' needs an attribute, e.g. card.count_1h")
        return self._variable(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> tuple[ast.expr, Typ]:
        owner = node.value.id if isinstance(node.value, ast.Name) else ""
        if owner != "card" and owner not in ACCEPTORS:
            raise _fail(
                node,
                "attribute access is allowed only as card.<name>, merchant.<name> or "
                "terminal.<name>",
            )
        return self._variable(node, f"{owner}.{node.attr}")

    def _variable(self, node: ast.AST, name: str) -> tuple[ast.expr, Typ]:
        var = VARIABLES.get(name)
        if var is None:
            raise _fail(node, f"unknown variable {name!r}{_suggest(name)}")
        self.variables.add(name)
        return ast.Name(local_name(name), ast.Load()), _typ(var)

    # -- operators ---------------------------------------------------------------------
    def visit_BoolOp(self, node: ast.BoolOp) -> tuple[ast.expr, Typ]:
        values = []
        for value in node.values:
            new, typ = self.visit(value)
            if typ.kind != Kind.BOOL:
                word = "and" if isinstance(node.op, ast.And) else "or"
                raise _fail(value, f"'{word}' needs true/false on both sides, got a {typ.kind}")
            values.append(new)
        return ast.BoolOp(node.op, values), BOOL

    def visit_UnaryOp(self, node: ast.UnaryOp) -> tuple[ast.expr, Typ]:
        operand, typ = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            if typ.kind != Kind.BOOL:
                raise _fail(node, f"'not' needs true/false, got a {typ.kind}")
            return ast.UnaryOp(ast.Not(), operand), BOOL
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            if typ.kind != Kind.NUMBER:
                raise _fail(node, f"unary minus/plus needs a number, got a {typ.kind}")
            return ast.UnaryOp(node.op, operand), Typ(Kind.NUMBER, typ.nullable)
        raise _fail(node, "bitwise operators are not allowed")

    def visit_BinOp(self, node: ast.BinOp) -> tuple[ast.expr, Typ]:
        if not isinstance(node.op, _ARITHMETIC):
            raise _fail(node, "only + - * / // % are allowed between numbers")
        left, lt = self.visit(node.left)
        right, rt = self.visit(node.right)
        for side, typ in ((node.left, lt), (node.right, rt)):
            if typ.kind != Kind.NUMBER:
                raise _fail(side, f"arithmetic needs numbers, got a {typ.kind}")
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and _literal(right) == 0:
            raise _fail(node.right, "division by zero: the rule would fail on every request")
        return ast.BinOp(left, node.op, right), Typ(Kind.NUMBER, lt.nullable or rt.nullable)

    def visit_Compare(self, node: ast.Compare) -> tuple[ast.expr, Typ]:
        left, lt = self.visit(node.left)
        operands, types = [left], [lt]
        for op, raw in zip(node.ops, node.comparators, strict=True):
            symbol = _COMPARE_SYMBOLS.get(type(op))
            if symbol is None:
                raise _fail(node, "'is' / 'is not' are not allowed; use missing(x) or ==")
            prev_node, prev_typ = operands[-1], types[-1]
            if symbol in ("in", "not in"):
                if prev_typ.kind not in (Kind.TEXT, Kind.NUMBER):
                    raise _fail(node, f"'{symbol}' needs a number or text on its left")
                right, rt = self._membership_right(raw, prev_typ)
                if isinstance(right, ast.Set) and _is_variable(prev_node, prev_typ):
                    for element, value in zip(raw.elts, right.elts, strict=True):  # type: ignore[attr-defined]
                        _check_domain(prev_typ.var, symbol, _literal(value), element)
            else:
                right, rt = self.visit(raw)
                coerced_prev, coerced = self._coerce_pair(
                    node, symbol, prev_node, prev_typ, right, rt
                )
                # a number padded into a code is text from here on (the next link of a chain
                # compares with it as text: `mcc <= 3999 < amount` must be refused)
                if coerced is not right:
                    rt = prev_typ
                if coerced_prev is not prev_node:
                    types[-1] = rt
                prev_node, right = coerced_prev, coerced
                operands[-1] = prev_node
                _check_link(raw, symbol, prev_node, types[-1], right, rt)
            operands.append(right)
            types.append(rt)
        new = ast.Compare(operands[0], list(node.ops), operands[1:])
        return _guarded(new), BOOL

    def _coerce_pair(
        self,
        node: ast.AST,
        symbol: str,
        left: ast.expr,
        lt: Typ,
        right: ast.expr,
        rt: Typ,
    ) -> tuple[ast.expr, ast.expr]:
        """Check two comparison operands; zero-pad number literals compared with digit codes."""
        if lt.kind == Kind.TEXT and rt.kind == Kind.NUMBER:
            return left, _as_code(right, lt, node)
        if lt.kind == Kind.NUMBER and rt.kind == Kind.TEXT:
            return _as_code(left, rt, node), right
        if lt.kind != rt.kind:
            raise _fail(node, f"cannot compare a {lt.kind} with a {rt.kind} using {symbol}")
        if lt.kind == Kind.BOOL and symbol not in ("==", "!="):
            raise _fail(node, f"true/false values cannot be ordered with {symbol}")
        return left, right

    def _membership_right(self, node: ast.AST, left: Typ) -> tuple[ast.expr, Typ]:
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            if not node.elts:
                raise _fail(node, "an empty list of values never matches; remove the test")
            values = []
            for element in node.elts:
                if not isinstance(element, ast.Constant) or isinstance(element.value, bool):
                    raise _fail(element, "values in ( ... ) must be number or text literals")
                new, typ = self.visit_Constant(element)
                if left.kind == Kind.TEXT and typ.kind == Kind.NUMBER:
                    new = _as_code(new, left, element)
                elif typ.kind != left.kind:
                    raise _fail(element, f"{element.value!r} is a {typ.kind}, not a {left.kind}")
                values.append(new)
            return ast.Set(values), Typ("set", element=left.kind)  # type: ignore[arg-type]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "list"
        ):
            if left.kind != Kind.TEXT:
                raise _fail(node, "named lists hold text; only text values can be looked up")
            return self._named_list(node), Typ("list")
        raise _fail(node, "'in' needs a list of literals like (1, 2) or list(\"name\")")

    def _named_list(self, node: ast.Call) -> ast.expr:
        if node.keywords or len(node.args) != 1:
            raise _fail(node, 'list() takes one list name, e.g. list("merchant_block")')
        arg = node.args[0]
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            raise _fail(arg, "the list name must be a quoted literal")
        if not LIST_NAME.match(arg.value):
            raise _fail(arg, f"bad list name {arg.value!r} (letters, digits, _ . - only)")
        self.lists.add(arg.value)
        return ast.Name(list_local(arg.value), ast.Load())

    # -- calls -------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> tuple[ast.expr, Typ]:
        if not isinstance(node.func, ast.Name):
            raise _fail(
                node, "only the functions abs, min, max, missing, present, starts_with, contains"
            )
        name = node.func.id
        if node.keywords:
            raise _fail(node, f"{name}() takes no keyword arguments")
        if name == "list":
            raise _fail(node, 'list("name") can only be used after in / not in')
        if name in ("missing", "present"):
            return self._presence(node, name)
        if name in ("abs", "min", "max"):
            return self._numeric_call(node, name)
        if name == "starts_with":
            return self._starts_with(node)
        if name == "contains":
            return self._contains(node)
        raise _fail(node, f"function {name!r} is not allowed{_suggest_function(name)}")

    def _presence(self, node: ast.Call, name: str) -> tuple[ast.expr, Typ]:
        if len(node.args) != 1 or not isinstance(node.args[0], (ast.Name, ast.Attribute)):
            raise _fail(node, f"{name}() takes one variable, e.g. {name}(score)")
        arg, typ = self.visit(node.args[0])
        if not typ.nullable:
            raise _fail(node, f"{ast.unparse(node.args[0])} is never missing")
        op: ast.cmpop = ast.Is() if name == "missing" else ast.IsNot()
        return ast.Compare(arg, [op], [ast.Constant(None)]), BOOL

    def _numeric_call(self, node: ast.Call, name: str) -> tuple[ast.expr, Typ]:
        if name == "abs" and len(node.args) != 1:
            raise _fail(node, "abs() takes one number")
        if name != "abs" and len(node.args) < 2:
            raise _fail(node, f"{name}() takes two or more numbers")
        args, nullable = [], False
        for raw in node.args:
            if isinstance(raw, ast.Starred):
                raise _fail(raw, "* arguments are not allowed")
            new, typ = self.visit(raw)
            if typ.kind != Kind.NUMBER:
                raise _fail(raw, f"{name}() needs numbers, got a {typ.kind}")
            args.append(new)
            nullable = nullable or typ.nullable
        call = ast.Call(ast.Name(name, ast.Load()), args, [])
        return call, Typ(Kind.NUMBER, nullable)

    def _text_and_texts(
        self, node: ast.Call, name: str, what: str, example: str, empty_ok: bool
    ) -> tuple[ast.expr, tuple[str, ...]]:
        """The two arguments of a text function: a text expression, then one quoted text or a
        tuple of them (``what``: how the error names them)."""
        if len(node.args) != 2:
            raise _fail(node, f"{name}() takes a text and a {what}, e.g. {example}")
        subject, typ = self.visit(node.args[0])
        if typ.kind != Kind.TEXT:
            raise _fail(node.args[0], f"{name}() needs text, got a {typ.kind}")
        given = node.args[1]
        elements = given.elts if isinstance(given, ast.Tuple) else [given]
        if not elements or not all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) and (e.value or empty_ok)
            for e in elements
        ):
            raise _fail(given, f"the {what} must be a quoted text or a tuple of quoted texts")
        return subject, tuple(e.value for e in elements)  # type: ignore[attr-defined]

    def _starts_with(self, node: ast.Call) -> tuple[ast.expr, Typ]:
        example = 'starts_with(card.bin, "4000")'
        subject, prefixes = self._text_and_texts(node, "starts_with", "prefix", example, True)
        if isinstance(subject, ast.Name) and subject.id in _LOCAL_TO_NAME:
            _check_prefixes(VARIABLES[_LOCAL_TO_NAME[subject.id]], prefixes, node.args[1])
        method = ast.Attribute(subject, "startswith", ast.Load())
        return _guarded(ast.Call(method, [ast.Constant(prefixes)], [])), BOOL

    def _contains(self, node: ast.Call) -> tuple[ast.expr, Typ]:
        example = 'contains(merchant_name, "CASINO")'
        subject, parts = self._text_and_texts(node, "contains", "part", example, False)
        needles = tuple(part.upper() for part in parts)  # _contains ignores case
        call = ast.Call(ast.Name("_contains", ast.Load()), [subject, ast.Constant(needles)], [])
        return _guarded(call), BOOL

    # -- parenthesised tuples outside 'in' ---------------------------------------------
    def visit_Tuple(self, node: ast.Tuple) -> tuple[ast.expr, Typ]:
        raise _fail(node, "a list of values ( ... ) can only follow in / not in")

    visit_List = visit_Tuple
    visit_Set = visit_Tuple


def _typ(var: Variable) -> Typ:
    return Typ(var.kind, var.nullable, var.code_width, var=var.name)


# -- values a variable cannot take: a test that never matches is refused ---------------------

_LOCAL_TO_NAME = {local_name(name): name for name in VARIABLES}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _literal(node: ast.AST) -> object:
    """The value of a number or text literal (``-5`` included), else None."""
    if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
        return node.value if isinstance(node.value, (int, float, str)) else None
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    return None


def _is_variable(node: ast.expr, typ: Typ) -> bool:
    return bool(typ.var) and isinstance(node, ast.Name) and node.id == local_name(typ.var)


def _check_link(
    where: ast.AST, symbol: str, left: ast.expr, lt: Typ, right: ast.expr, rt: Typ
) -> None:
    """One comparison of a variable with a literal, either way round."""
    if _is_variable(left, lt) and _literal(right) is not None:
        _check_domain(lt.var, symbol, _literal(right), where)
    elif _is_variable(right, rt) and _literal(left) is not None:
        _check_domain(rt.var, _FLIPPED[symbol], _literal(left), where)


def _check_domain(name: str, symbol: str, value: object, where: ast.AST) -> None:
    """Refuse ``name <symbol> value`` when no value the variable can take makes it true, and
    ``!=`` / ``not in`` a value it can never have (always true: surely a typo)."""
    domain = VARIABLES[name].domain
    if domain is None or value is None:
        return
    equality = symbol in ("==", "!=", "in", "not in")
    verdict = "is always true" if symbol in ("!=", "not in") else "can never be true"
    test = f"{name} {symbol} {value!r} {verdict}"
    if symbol.endswith("in"):
        test = f"{name} is never {value!r} (in its '{symbol}' list)"
    if isinstance(value, str):
        if not equality:
            if domain.digits and not (value.isdigit() and len(value) == domain.digits):
                raise _fail(
                    where,
                    f"{name} {symbol} {value!r}: {name} is {domain.describe}; compare whole codes",
                )
            return
        possible = (
            (not domain.values or value in domain.values)
            and (not domain.digits or value == "" or _digits(value, domain.digits))
            and (not domain.pattern or re.fullmatch(domain.pattern, value) is not None)
        )
        if possible and domain.known and value not in domain.known:
            raise _fail(where, f"{test}: {value!r} is not {domain.describe}")
        if not possible:
            raise _fail(where, f"{test}: {name} is {domain.describe}")
        return
    number = float(value)  # type: ignore[arg-type]
    low, high = domain.minimum, domain.maximum
    if equality:
        never = (
            (low is not None and number < low)
            or (high is not None and number > high)
            or (domain.whole and not number.is_integer())
        )
    else:
        never = {
            "<": low is not None and number <= low,
            "<=": low is not None and number < low,
            ">": high is not None and number >= high,
            ">=": high is not None and number > high,
        }[symbol]
    if never:
        raise _fail(where, f"{test}: {name} is {domain.describe}")


def _digits(value: str, width: int) -> bool:
    return len(value) == width and value.isascii() and value.isdigit()


def _check_prefixes(var: Variable, prefixes: tuple[str, ...], where: ast.AST) -> None:
    """starts_with() of a code or a closed set of values: a prefix none can start with."""
    domain = var.domain
    if domain is None:
        return
    for prefix in prefixes:
        if domain.values:
            possible = any(v.startswith(prefix) for v in domain.values)
        elif domain.digits:
            possible = len(prefix) <= domain.digits and (
                prefix == "" or (prefix.isascii() and prefix.isdigit())
            )
        else:
            continue
        if not possible:
            raise _fail(
                where,
                f"starts_with({var.name}, {prefix!r}) can never be true: "
                f"{var.name} is {domain.describe}",
            )


def _as_code(node: ast.expr, text: Typ, where: ast.AST) -> ast.expr:
    """A number literal compared with a digit code becomes the zero-padded code text."""
    if (
        text.code_width
        and isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
        and 0 <= node.value < 10**text.code_width
    ):
        return ast.Constant(str(node.value).zfill(text.code_width))
    # it said 'quote the value, e.g. "5967"' whatever the value: for mcc == 59671, quoting
    # only led to the next refusal (a code of the wrong width)
    number = isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
    if number and text.code_width and not isinstance(node.value, bool):
        raise _fail(
            where,
            f"{node.value!r} can never be a {text.code_width}-digit code: compare with a code "
            f"of {text.code_width} digits",
        )
    if number:
        raise _fail(where, f'cannot compare text with a number; quote the value: "{node.value}"')
    raise _fail(where, "cannot compare text with a number")


def _guarded(expr: ast.expr) -> ast.expr:
    """Prefix a test with 'x is not None and ...' for each nullable variable it reads.

    Inner comparisons and boolean sub-expressions are already guarded (or are presence tests
    like ``missing(x)``), so the walk does not descend into them.
    """
    nullable = sorted(_nullable_names(expr, top=True))
    if not nullable:
        return expr
    checks: list[ast.expr] = [
        ast.Compare(ast.Name(n, ast.Load()), [ast.IsNot()], [ast.Constant(None)]) for n in nullable
    ]
    return ast.BoolOp(ast.And(), [*checks, expr])


def _nullable_names(node: ast.AST, top: bool = False) -> set[str]:
    if not top and isinstance(node, (ast.BoolOp, ast.Compare)):
        return set()
    if isinstance(node, ast.Name):
        return {node.id} if node.id in _NULLABLE_LOCALS else set()
    found: set[str] = set()
    for child in ast.iter_child_nodes(node):
        found |= _nullable_names(child)
    return found


_NULLABLE_LOCALS = {local_name(v.name) for v in VARIABLES.values() if v.nullable}


def _describe(node: ast.AST) -> str:
    names = {
        "Subscript": "indexing [ ]",
        "Lambda": "lambda",
        "JoinedStr": "an f-string",
        "IfExp": "'x if c else y'",
        "NamedExpr": "':='",
        "ListComp": "a comprehension",
        "GeneratorExp": "a comprehension",
        "Dict": "a dict",
        "Starred": "'*'",
    }
    return names.get(type(node).__name__, type(node).__name__)


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(VARIABLES), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _suggest_function(name: str) -> str:
    return " (allowed: abs, min, max, missing, present, starts_with, contains, list)"


def compile_expression(text: str) -> Compiled:
    """Check one expression and rewrite it to Python source; raises ExpressionError."""
    return _Checker().compile(text)
