"""Budgets on Cypher typed by a user, checked before a store sees the query.

Tenants are isolated by the store itself (each group is its own FalkorDB graph
or Neo4j database, see :mod:`graphmem.store.base`), so this module does not
try to prove a query confined to a group. It keeps one user from hurting the
others or the host:

- **Parsing cost.** FalkorDB's parser is exponential in nesting: every level
  of brackets, ``CASE`` or prefix operator (``NOT``, unary ``-``/``+``)
  multiplies its time by about four, and no query timeout covers parsing
  (a 109-character query of 21 nested lists took 15 s). A linear tokenizer
  measures the nesting and refuses anything deeper than :attr:`Budget.max_depth`,
  along with queries longer than :attr:`Budget.max_chars` characters or
  :attr:`Budget.max_tokens` tokens.
- **Rows.** The row limit is written into the query the store runs: every
  top-level ``RETURN`` gets ``LIMIT n`` (an existing ``LIMIT`` of an integer or a
  parameter is lowered to ``n``), so a store never materialises more rows than
  the caller will read.
- **Reach.** Without ``write``: no write clauses, no ``LOAD CSV`` (it opens
  files and URLs on the store's host), no ``USE`` or administration commands
  (they switch databases on Neo4j), and ``CALL`` only for the read procedures
  in :data:`READ_PROCEDURES`. The store also runs such queries read-only.
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
READ_PROCEDURES = frozenset({
    "db.labels", "db.relationshiptypes", "db.propertykeys", "db.indexes", "db.constraints",
    "db.idx.vector.querynodes", "db.idx.vector.queryrelationships", "db.idx.fulltext.querynodes",
    "db.index.vector.querynodes", "db.index.vector.queryrelationships", "db.index.fulltext.querynodes",
    "db.index.fulltext.queryrelationships",
})

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<param>\$(?:[^\W\d]\w*|\d+|`(?:[^`]|``)*`))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<word>[^\W\d]\w*)
  | (?P<op><>|<=|>=|=~|\+=|\.\.|->|<-|!=|[-+*/%^=<>(){}\[\],.:;|!&?])
""", re.VERBOSE | re.DOTALL)
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
    # frames of open brackets / CASE: (closer, depth of the frame)
    frames: list[tuple[str, int]] = []
    prefix_run = 0  # prefix operators in a row just before the current position
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
        depth = frames[-1][1] if frames else 0
        upper = value.upper() if kind == "word" else ""
        prefix = (kind == "word" and upper == "NOT") or (
            kind == "op" and value in "-+" and not _ends_value(previous))
        if prefix:
            prefix_run += 1
            if depth + prefix_run > budget.max_depth:
                raise _too_deep(budget)
        token = Token(kind, value, match.start(), match.end(), depth)
        if kind == "op" and value in _OPEN or upper == "CASE":
            if upper == "CASE" and (previous is not None and previous.text in {".", ":"}
                                    or _MAP_KEY.match(text, position)):
                pass  # a property, label or map key called case
            else:
                opened = depth + 1 + prefix_run
                if opened > budget.max_depth:
                    raise _too_deep(budget)
                frames.append((_OPEN.get(value, "END"), opened))
                prefix_run = 0
        elif kind == "op" and value in _CLOSE or (upper == "END" and frames and frames[-1][0] == "END"):
            closer = value if kind == "op" else "END"
            if not frames or frames[-1][0] != closer:
                raise CypherRefused(f"unbalanced {value!r} at offset {match.start()}")
            frames.pop()
            token = Token(kind, value, match.start(), match.end(), frames[-1][1] if frames else 0)
            prefix_run = 0
        elif not prefix:
            prefix_run = 0
        tokens.append(token)
        previous = token
        if len(tokens) > budget.max_tokens:
            raise CypherRefused(f"the query has more than {budget.max_tokens} tokens; split it")
    if frames:
        raise CypherRefused(f"unbalanced: {len(frames)} bracket(s) or CASE left open at the end of the query")
    return tokens


def _ends_value(token: Token | None) -> bool:
    if token is None:
        return False
    if token.kind in _VALUE_END_KINDS:
        return True
    if token.kind == "word":
        return token.upper not in _OPERATOR_WORDS or token.upper in _VALUE_END_WORDS
    return token.text in {")", "]", "}"}


#: words after which a ``-``/``+`` starts a new value (clause and operator keywords)
_OPERATOR_WORDS = frozenset({
    "RETURN", "WITH", "WHERE", "AND", "OR", "XOR", "NOT", "IN", "WHEN", "THEN", "ELSE", "CASE", "SKIP",
    "LIMIT", "UNWIND", "BY", "IS", "CONTAINS", "STARTS", "ENDS", "DISTINCT", "SET", "YIELD", "AS", "ORDER",
})


def _too_deep(budget: Budget) -> CypherRefused:
    return CypherRefused(f"the query nests brackets, CASE or prefix operators (NOT, unary -) more than "
                         f"{budget.max_depth} levels deep; flatten it (parsing cost grows fourfold per level)")


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


def check(text: str, *, write: bool = False, budget: Budget = Budget()) -> list[Token]:
    """Tokenize ``text`` under ``budget`` and refuse what a read-only user query may not do
    (unless ``write``: then only the size and nesting budgets apply). Returns the tokens."""
    if not text.strip():
        raise CypherRefused("the query is empty")
    tokens = tokenize(text, budget)
    if write:
        return tokens
    for i, token in enumerate(tokens):
        if token.kind != "word" or not _is_keyword(tokens, i):
            continue
        word = token.upper
        if word in WRITE_WORDS:
            raise CypherRefused(f"this query writes ({word}); pass --write to allow it (the REST API never writes)")
        if word == "LOAD":
            raise CypherRefused("LOAD CSV reads files and URLs on the store's host; it needs --write "
                                "(the REST API never allows it)")
        if word in ADMIN_WORDS:
            raise CypherRefused(f"{word} commands (databases, users, privileges) are not allowed in a read-only "
                                "query")
        if word == "CALL" and not (i + 1 < len(tokens) and tokens[i + 1].text == "{"):
            name, _ = _procedure_name(tokens, i + 1)
            if name not in READ_PROCEDURES:
                raise CypherRefused(f"procedure {name or '?'!r} is not allowed in a read-only query; allowed: "
                                    + ", ".join(sorted(READ_PROCEDURES)))
    return tokens


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
        returns = [i for i in part if tokens[i].depth == 0 and tokens[i].kind == "word"
                   and tokens[i].upper == "RETURN" and _is_keyword(tokens, i)]
        if not returns:
            continue
        after = [i for i in part if i > returns[-1]]
        while after and tokens[after[-1]].text == ";":
            after.pop()
        limits = [i for i in after if tokens[i].depth == 0 and tokens[i].kind == "word"
                  and tokens[i].upper == "LIMIT" and _is_keyword(tokens, i)]
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


def prepare(text: str, params: dict[str, Any] | None = None, *, write: bool = False,
            max_rows: int | None = None, budget: Budget = Budget()) -> str:
    """Check ``text`` (see :func:`check`) and push ``max_rows`` into it; the query to run."""
    tokens = check(text, write=write, budget=budget)
    return limit_rows(text, tokens, max_rows, params) if max_rows is not None else text
