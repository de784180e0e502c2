"""Budgets on Cypher typed by a user, checked before a store sees the query.

Tenants are isolated by the store itself (each group is its own FalkorDB graph
or Neo4j database, see :mod:`graphmem.store.base`), so this module does not
try to prove a query confined to a group. It keeps one user from hurting the
others or the host:

- **Parsing cost.** FalkorDB's parser is exponential in nesting: every level
  of brackets, ``CASE`` or prefix operator (``NOT``, unary ``-``/``+``)
  multiplies its time by about four, and no query timeout covers parsing
  (a 109-character query of 21 nested lists took 15 s). A ``NOT`` nests
  without any bracket too: its operand runs on to the next ``AND``/``OR``/``XOR``,
  comma or clause, so each ``NOT`` of ``true = NOT true = NOT true ...`` is one
  level deeper (20 of them took 15 s to parse). A linear tokenizer measures the
  nesting and refuses anything deeper than :attr:`Budget.max_depth`, along with
  queries longer than :attr:`Budget.max_chars` characters or
  :attr:`Budget.max_tokens` tokens.
- **One huge value.** ``range(1, 10000000000)`` asks the store for one list of
  ten billion items in a single allocation, which no timeout interrupts: the
  store process aborts. ``range()`` bounds must be integers or integer
  parameters, and the list at most :attr:`Budget.max_range` items.
- **Parameters.** The store reads parameters as text before the query, outside
  its timeout: at most :attr:`Budget.max_param_values` values in all.
- **Planning cost.** FalkorDB plans a chain of ``OPTIONAL MATCH`` clauses in about
  cubic time, also outside the timeout: at most :attr:`Budget.max_optional`.
- **Rows.** The row limit is written into the query the store runs: every
  top-level ``RETURN`` gets ``LIMIT n`` (an existing ``LIMIT`` of an integer or a
  parameter is lowered to ``n``), so a store never materialises more rows than
  the caller will read.
- **Reach.** Without ``write``: no write clauses, no ``LOAD CSV`` (it opens
  files and URLs on the store's host), no ``USE`` or administration commands
  (they switch databases on Neo4j), and ``CALL`` only for the read procedures
  in :data:`READ_PROCEDURES`. The store also runs such queries read-only.

Not covered here: the time and memory one expression takes once it runs.
FalkorDB checks a query's timeout between records, not inside an expression, so
a comprehension over a large list, or a list doubled clause after clause, runs
(and allocates) past ``timeout_ms``; no token budget can bound that (see
docs/security.md, known limits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from graphmem.errors import InputError

#: clauses that write (refused unless ``write``)
WRITE_WORDS = frozenset({"CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "FOREACH"})
#: administration and database switching (refused unless ``write``)
ADMIN_WORDS = frozenset({"USE", "SHOW", "GRANT", "DENY", "REVOKE", "ALTER", "TERMINATE"})
#: procedures a read-only user query may CALL: each reads only the graph the query runs on
READ_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshiptypes",
        "db.propertykeys",
        "db.indexes",
        "db.constraints",
        "db.idx.vector.querynodes",
        "db.idx.vector.queryrelationships",
        "db.idx.fulltext.querynodes",
        "db.index.vector.querynodes",
        "db.index.vector.queryrelationships",
        "db.index.fulltext.querynodes",
        "db.index.fulltext.queryrelationships",
    }
)

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<param>\$(?:[^\W\d]\w*|\d+|`(?:[^`]|``)*`))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<word>[^\W\d]\w*)
  | (?P<op><>|<=|>=|=~|\+=|\.\.|->|<-|!=|[-+*/%^=<>(){}\[\],.:;|!&?])
""",
    re.VERBOSE | re.DOTALL,
)
_MAP_KEY = re.compile(r"\s*:")
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}
#: a token after which ``-``/``+`` is binary (it ends a value)
_VALUE_END_KINDS = {"string", "quoted", "param", "number"}
_VALUE_END_WORDS = {"NULL", "TRUE", "FALSE", "END"}


class CypherRefused(InputError):
    """The query breaks a budget or reaches beyond what the caller may; the message says how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Budget:
    """Limits on one user query (see the module docstring for why each exists)."""

    max_chars: int = 20_000
    max_tokens: int = 4_000
    #: brackets, CASE and chains of prefix operators, counted together; at depth 10
    #: FalkorDB parses in a few milliseconds, each further level costs about 4x
    max_depth: int = 10
    #: items in one range() list: 16 MB in the store, built in about 0.1 s that no timeout
    #: interrupts (10 million took 1 s)
    max_range: int = 1_000_000
    #: values in the parameters (list items, map entries and scalars, counted together):
    #: the store parses them as query text, outside the timeout (a million took 0.5 s)
    max_param_values: int = 100_000
    #: OPTIONAL MATCH clauses: FalkorDB plans them in about cubic time, before any timeout
    #: runs (64 take 50 ms, 128 take 0.2 s, 443 took 9 s)
    max_optional: int = 64


@dataclass(frozen=True)
class Token:
    kind: str  # word, string, quoted, param, number, op
    text: str
    start: int
    end: int
    depth: int  # brackets/CASE open around it

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokenize(text: str, budget: Budget = Budget()) -> list[Token]:
    """The tokens of ``text`` (comments and white space dropped), in one linear pass,
    refusing queries over the ``budget``'s size and nesting limits."""
    if len(text) > budget.max_chars:
        raise CypherRefused(f"the query has {len(text)} characters; the limit is {budget.max_chars}")
    tokens: list[Token] = []
    # frames of open brackets, CASE and NOT: (closer, depth of the frame). A NOT frame
    # has no closing token: it ends where NOT's operand ends (see _ends_not_operand)
    frames: list[tuple[str, int]] = []
    prefix_run = 0  # unary -/+ in a row just before the current position
    position, size = 0, len(text)
    previous: Token | None = None
    while position < size:
        match = _TOKEN.match(text, position)
        if match is None:
            raise CypherRefused(_unreadable(text, position))
        kind = match.lastgroup or ""
        position = match.end()
        if kind in {"space", "comment"}:
            continue
        value = match.group()
        if value == "/" and text.startswith("/*", match.start()):  # the comment pattern found no end
            raise CypherRefused(_unreadable(text, match.start()))
        upper = value.upper() if kind == "word" else ""
        # a word used as a keyword: not a property (n.end), label (:Case) or map key ({not: 1})
        keyword = kind == "word" and not (
            previous is not None and previous.text in {".", ":"} or _MAP_KEY.match(text, position)
        )
        if _ends_not_operand(kind, value, upper, keyword and not text.startswith(".", position), previous):
            while frames and frames[-1][0] == "NOT":
                frames.pop()
        depth = frames[-1][1] if frames else 0
        sign = kind == "op" and value in "-+" and not _ends_value(previous)
        if sign:
            prefix_run += 1
            if depth + prefix_run > budget.max_depth:
                raise _too_deep(budget)
        token = Token(kind, value, match.start(), match.end(), depth)
        postfix = upper == "NOT" and previous is not None and previous.upper == "IS"  # IS NOT NULL: flat
        if kind == "op" and value in _OPEN or keyword and not postfix and upper in {"CASE", "NOT"}:
            opened = depth + 1 + prefix_run
            if opened > budget.max_depth:
                raise _too_deep(budget)
            frames.append((_OPEN.get(value, "END" if upper == "CASE" else "NOT"), opened))
            prefix_run = 0
        elif kind == "op" and value in _CLOSE or (keyword and upper == "END" and frames and frames[-1][0] == "END"):
            closer = value if kind == "op" else "END"
            if not frames or frames[-1][0] != closer:
                raise CypherRefused(f"unbalanced {value!r} at offset {match.start()}")
            frames.pop()
            token = Token(kind, value, match.start(), match.end(), frames[-1][1] if frames else 0)
            prefix_run = 0
        elif not sign:
            prefix_run = 0
        tokens.append(token)
        previous = token
        if len(tokens) > budget.max_tokens:
            raise CypherRefused(f"the query has more than {budget.max_tokens} tokens; split it")
    open_frames = [closer for closer, _ in frames if closer != "NOT"]
    if open_frames:
        raise CypherRefused(f"unbalanced: {len(open_frames)} bracket(s) or CASE left open at the end of the query")
    return tokens


#: keywords that end the operand of a NOT (it binds looser than comparisons and arithmetic,
#: tighter than AND/OR/XOR); WITH only as a clause, not in STARTS WITH / ENDS WITH
_NOT_OPERAND_ENDS = frozenset(
    {
        "AND",
        "OR",
        "XOR",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
        "AS",
        "RETURN",
        "WITH",
        "WHERE",
        "ORDER",
        "SKIP",
        "LIMIT",
        "UNION",
        "MATCH",
        "OPTIONAL",
        "UNWIND",
        "CALL",
        "YIELD",
    }
)


def _ends_not_operand(kind: str, value: str, upper: str, keyword: bool, previous: Token | None) -> bool:
    """True when this token ends the operands of the NOTs open in the current bracket.
    Erring towards False only counts a NOT longer than the parser nests it (a stricter
    budget), never shorter."""
    if kind == "op":
        return value in {",", "|", ";"} or value in _CLOSE
    if not keyword or upper not in _NOT_OPERAND_ENDS:
        return False
    return not (upper == "WITH" and previous is not None and previous.upper in {"STARTS", "ENDS"})


def _ends_value(token: Token | None) -> bool:
    if token is None:
        return False
    if token.kind in _VALUE_END_KINDS:
        return True
    if token.kind == "word":
        return token.upper not in _OPERATOR_WORDS or token.upper in _VALUE_END_WORDS
    return token.text in {")", "]", "}"}


#: words after which a ``-``/``+`` starts a new value (clause and operator keywords)
_OPERATOR_WORDS = frozenset(
    {
        "RETURN",
        "WITH",
        "WHERE",
        "AND",
        "OR",
        "XOR",
        "NOT",
        "IN",
        "WHEN",
        "THEN",
        "ELSE",
        "CASE",
        "SKIP",
        "LIMIT",
        "UNWIND",
        "BY",
        "IS",
        "CONTAINS",
        "STARTS",
        "ENDS",
        "DISTINCT",
        "SET",
        "YIELD",
        "AS",
        "ORDER",
    }
)


def _too_deep(budget: Budget) -> CypherRefused:
    return CypherRefused(
        f"the query nests brackets, CASE or prefix operators (NOT, unary -) more than "
        f"{budget.max_depth} levels deep; flatten it (parsing cost grows fourfold per level)"
    )


def _unreadable(text: str, position: int) -> str:
    opener = text[position]
    if opener in "'\"":
        return f"unterminated string literal starting at offset {position}"
    if opener == "`":
        return f"unterminated backtick name starting at offset {position}"
    if text.startswith("/*", position):
        return f"unterminated /* comment starting at offset {position}"
    return f"unexpected character {opener!r} at offset {position}"


def _is_keyword(tokens: list[Token], i: int) -> bool:
    """True when word token ``i`` is used as a keyword: not a property (``n.set``),
    a label or type (``:Set``), a map key (``{set: 1}``) or a function namespace."""
    before = tokens[i - 1].text if i > 0 and tokens[i - 1].kind == "op" else ""
    after = tokens[i + 1].text if i + 1 < len(tokens) and tokens[i + 1].kind == "op" else ""
    return before not in {".", ":", "|"} and after not in {":", "."}


def _procedure_name(tokens: list[Token], start: int) -> tuple[str, int]:
    """The dotted name after CALL at ``start`` and the index after it."""
    parts: list[str] = []
    i = start
    while i < len(tokens) and tokens[i].kind in {"word", "quoted"}:
        parts.append(tokens[i].text.strip("`").lower())
        if i + 1 < len(tokens) and tokens[i + 1].text == ".":
            i += 2
        else:
            i += 1
            break
    return ".".join(parts), i


def check(
    text: str, *, write: bool = False, budget: Budget = Budget(), params: dict[str, Any] | None = None
) -> list[Token]:
    """Tokenize ``text`` under ``budget`` and refuse what a read-only user query may not do
    (unless ``write``: then only the budgets apply). ``params``: the values the query's
    parameters will hold (a ``range()`` bound may be one). Returns the tokens."""
    if not text.strip():
        raise CypherRefused("the query is empty")
    tokens = tokenize(text, budget)
    _check_ranges(tokens, params or {}, budget)
    optional = sum(
        1 for i, t in enumerate(tokens) if t.kind == "word" and t.upper == "OPTIONAL" and _is_keyword(tokens, i)
    )
    if optional > budget.max_optional:
        raise CypherRefused(
            f"the query has {optional} OPTIONAL MATCH clauses; the limit is {budget.max_optional} "
            "(planning them costs the store about the cube of their number)"
        )
    if write:
        return tokens
    for i, token in enumerate(tokens):
        if token.kind != "word" or not _is_keyword(tokens, i):
            continue
        word = token.upper
        if word in WRITE_WORDS:
            raise CypherRefused(f"this query writes ({word}); pass --write to allow it (the REST API never writes)")
        if word == "LOAD":
            raise CypherRefused(
                "LOAD CSV reads files and URLs on the store's host; it needs --write (the REST API never allows it)"
            )
        if word in ADMIN_WORDS:
            raise CypherRefused(f"{word} commands (databases, users, privileges) are not allowed in a read-only query")
        if word == "CALL" and not (i + 1 < len(tokens) and tokens[i + 1].text == "{"):
            name, _ = _procedure_name(tokens, i + 1)
            if name not in READ_PROCEDURES:
                raise CypherRefused(
                    f"procedure {name or '?'!r} is not allowed in a read-only query; allowed: "
                    + ", ".join(sorted(READ_PROCEDURES))
                )
    return tokens


def _check_ranges(tokens: list[Token], params: dict[str, Any], budget: Budget) -> None:
    """Refuse a ``range()`` call whose list could exceed ``budget.max_range`` items: the
    store builds it in one step that no timeout interrupts, so its bounds must be known
    now (integer literals or integer parameters)."""
    for i, token in enumerate(tokens):
        name = token.text.strip("`").lower() if token.kind in {"word", "quoted"} else ""
        if (
            name != "range"
            or i + 1 >= len(tokens)
            or tokens[i + 1].text != "("
            or (i > 0 and tokens[i - 1].text == ".")
        ):
            continue
        values: list[int] = []
        j = i + 2
        while True:  # ARG (',' ARG)* ')' where ARG is [-+]INTEGER or $PARAM; at most three
            sign = 1
            if j < len(tokens) and tokens[j].text in {"-", "+"}:
                sign = -1 if tokens[j].text == "-" else 1
                j += 1
            if len(values) == 3:
                raise CypherRefused(f"range() at offset {token.start} takes two or three integers (start, end, step)")
            value = _integer(tokens[j], params) if j < len(tokens) else None
            if value is None:
                raise CypherRefused(
                    f"range() at offset {token.start}: write its bounds and step as integers or "
                    f"$parameters holding integers, so its size (at most {budget.max_range:,} "
                    "items) is known before the query runs"
                )
            values.append(sign * value)
            j += 1
            if j < len(tokens) and tokens[j].text == ",":
                j += 1
                continue
            break
        if len(values) < 2 or j >= len(tokens) or tokens[j].text != ")":
            raise CypherRefused(f"range() at offset {token.start} takes two or three integers (start, end, step)")
        start, end, step = values[0], values[1], values[2] if len(values) == 3 else 1
        items = 0 if step == 0 or (end - start) * step < 0 else abs(end - start) // abs(step) + 1
        if items > budget.max_range:
            raise CypherRefused(
                f"range() at offset {token.start} would hold {items:,} items; the limit is "
                f"{budget.max_range:,} (the store builds the whole list at once)"
            )


def _check_params(params: dict[str, Any], budget: Budget) -> None:
    """Refuse parameters holding more than ``budget.max_param_values`` values: each
    parameter and each item or entry inside one. Counted without recursion (any nesting
    depth is fine to look at), and a list's length before its items, so a huge list is
    refused without walking it."""
    count = 0
    stack: list[Any] = [params]
    while stack:
        value = stack.pop()
        items = value.values() if isinstance(value, dict) else value
        count += len(items)
        if count > budget.max_param_values:
            raise CypherRefused(
                f"the parameters hold more than {budget.max_param_values:,} values; pass fewer "
                "(the store parses them before the query, outside its timeout)"
            )
        stack.extend(v for v in items if isinstance(v, (dict, list, tuple)))


def _integer(token: Token, params: dict[str, Any]) -> int | None:
    """The integer a number token or parameter stands for (None if it is not one)."""
    if token.kind == "number":
        text = token.text.lower()
        if text.startswith("0x"):
            return int(text, 16)
        return int(text) if text.isdigit() else None
    if token.kind == "param":
        value = params.get(token.text[1:].strip("`"))
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return None


def limit_rows(text: str, tokens: list[Token], max_rows: int, params: dict[str, Any] | None = None) -> str:
    """``text`` with every top-level RETURN limited to ``max_rows`` rows.

    A missing LIMIT is added; an existing ``LIMIT <integer>`` or ``LIMIT $param`` is
    lowered to ``max_rows`` when larger; any other LIMIT expression is refused, since
    its value cannot be known before the query runs.
    """
    params = params or {}
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in text offsets
    # top-level parts of the query, split at UNION
    parts: list[list[int]] = [[]]
    for i, token in enumerate(tokens):
        if token.depth == 0 and token.kind == "word" and token.upper == "UNION" and _is_keyword(tokens, i):
            parts.append([])
        else:
            parts[-1].append(i)
    for part in parts:
        returns = [
            i
            for i in part
            if tokens[i].depth == 0
            and tokens[i].kind == "word"
            and tokens[i].upper == "RETURN"
            and _is_keyword(tokens, i)
        ]
        if not returns:
            continue
        after = [i for i in part if i > returns[-1]]
        while after and tokens[after[-1]].text == ";":
            after.pop()
        limits = [
            i
            for i in after
            if tokens[i].depth == 0
            and tokens[i].kind == "word"
            and tokens[i].upper == "LIMIT"
            and _is_keyword(tokens, i)
        ]
        if not limits:
            end = tokens[after[-1]].end if after else tokens[returns[-1]].end
            edits.append((end, end, f" LIMIT {max_rows}"))
            continue
        expression = [tokens[i] for i in after if i > limits[-1]]
        value = _limit_value(expression, params)
        if value > max_rows:
            edits.append((expression[0].start, expression[-1].end, str(max_rows)))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _limit_value(expression: list[Token], params: dict[str, Any]) -> int:
    if len(expression) == 1 and expression[0].kind == "number":
        try:
            return int(expression[0].text, 0)
        except ValueError:
            pass
    elif len(expression) == 1 and expression[0].kind == "param":
        value = params.get(expression[0].text[1:].strip("`"))
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    shown = " ".join(t.text for t in expression) or "(nothing)"
    raise CypherRefused(f"LIMIT {shown}: write the limit as an integer or a $parameter holding one")


def prepare(
    text: str,
    params: dict[str, Any] | None = None,
    *,
    write: bool = False,
    max_rows: int | None = None,
    budget: Budget = Budget(),
) -> str:
    """Check ``text`` (see :func:`check`) and push ``max_rows`` into it; the query to run."""
    _check_params(params or {}, budget)
    tokens = check(text, write=write, budget=budget, params=params)
    return limit_rows(text, tokens, max_rows, params) if max_rows is not None else text
