"""Confining user Cypher (``POST /v1/cypher``) to read-only access to one group.

A store holds every tenant in one graph, so an API user's Cypher must be kept
inside the group its key allows. The approach, and why each step is needed:

1. **Lexing.** String literals, comments and backtick-quoted names are blanked
   out first, so nothing inside them counts as a keyword or a pattern.
2. **No writes, no procedures.** The clauses CREATE, MERGE, SET, DELETE,
   DETACH, REMOVE, DROP, FOREACH, LOAD (CSV) and CALL are refused. CALL is
   refused whole: procedures can write, and read procedures such as the vector
   and full-text index queries scan every group. The query then also runs in
   the store's read-only mode (FalkorDB ``GRAPH.RO_QUERY``, a Neo4j read
   transaction), so a write the lexer missed still fails.
3. **Anchored patterns.** Relationships never cross groups (ingestion only
   links nodes of one group), so a query cannot leave its group by walking
   edges; it can only start somewhere else. Every node pattern ``( ... )`` in
   the query (in MATCH, WHERE, EXISTS/COUNT subqueries, pattern
   comprehensions) must therefore be *anchored*: it carries
   ``group_id: $group_id`` in its property map, or reuses a variable an
   anchored pattern bound earlier, or sits on one path (joined by
   relationships) with an anchored node. ``MATCH (n) RETURN n`` is refused;
   ``MATCH (n:Entity {group_id: $group_id})-[:FACT]->(m) RETURN m`` is fine.
4. **Binding.** ``$group_id`` is always bound by the server to the request's
   group; a ``group_id`` the caller puts in ``params`` is refused.
5. **Post-check.** As defence in depth, every returned node or map carrying a
   ``group_id`` must carry the request's group, or the whole answer is refused.

The check is deliberately conservative: a safe query it cannot prove safe is
refused with a message saying which pattern to anchor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

WRITE_CLAUSES = ("CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "FOREACH", "LOAD", "CALL")
_ANCHOR = re.compile(r"\bgroup_id\s*:\s*\$group_id\b")
_NODE = re.compile(r"\(\s*(?P<var>[A-Za-z_][A-Za-z0-9_]*)?\s*(?P<labels>(?::\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:\|\s*:?\s*[A-Za-z_][A-Za-z0-9_]*\s*)*)*)"
                   r"(?P<props>\{[^{}()]*\})?\s*\)")
_KEYWORD = re.compile(r"\b(" + "|".join(WRITE_CLAUSES) + r")\b", re.IGNORECASE)
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_]")
# words after which "(" opens a pattern or an expression, never a function call
_KEYWORDS = {"MATCH", "OPTIONAL", "WHERE", "AND", "OR", "XOR", "NOT", "RETURN", "WITH", "IN", "AS", "UNWIND",
             "DISTINCT", "CASE", "WHEN", "THEN", "ELSE", "END", "IS", "NULL", "BY", "ORDER", "UNION", "ALL",
             "SKIP", "LIMIT", "CONTAINS", "STARTS", "ENDS", "ASC", "DESC", "ASCENDING", "DESCENDING", "YIELD"}


class CypherRefused(ValueError):
    """The query is not allowed through the API; the message says why and what to do."""


@dataclass(frozen=True)
class _Node:
    start: int
    end: int
    var: str | None
    anchored: bool


def strip_literals(text: str) -> str:
    """``text`` with string literals, comments and backtick names blanked (same length).

    Strings become ``'...'`` of spaces, backtick names become ``_x...``, comments spaces,
    so offsets stay valid and nothing inside them can look like Cypher.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise CypherRefused("unterminated string literal")
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        elif c == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise CypherRefused("unterminated backtick name")
            out.append("_" + "x" * (j - i))
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise CypherRefused("unterminated /* comment")
            out.append(" " * (j + 2 - i))
            i = j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


_INNER = re.compile(r"\([^()]*\)")
_CLAUSE_END = re.compile(r"\b(MATCH|OPTIONAL|WHERE|RETURN|UNWIND|ORDER|WITH|LIMIT|SKIP|UNION)\b", re.IGNORECASE)
_SCOPE = re.compile(r"\b(WITH|UNION|UNWIND)\b", re.IGNORECASE)


def _node_patterns(code: str) -> list[_Node]:
    """Every node pattern; raises for a parenthesised pattern it cannot read (e.g. ``(n:!A)``)."""
    nodes = []
    for m in _INNER.finditer(code):
        word = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", code[:m.start()])
        if word and word.group(1).upper() not in _KEYWORDS:
            continue  # a function call such as count(n), not a node pattern
        before = code[:m.start()].rstrip()
        after = code[m.end():].lstrip()
        in_path = before.endswith(("-", ">", "<")) or after.startswith(("-", "<"))
        after_match = bool(re.search(r"\bMATCH\s*(?:[A-Za-z_][A-Za-z0-9_]*\s*=\s*)?(?:\w+\s*\(\s*)*$", before,
                                     re.IGNORECASE)) or before.endswith(",") and _in_match(code, m.start())
        node = _NODE.fullmatch(m.group(0))
        if node is None:
            if in_path or after_match:
                raise CypherRefused(f"cannot check the pattern {m.group(0)!r}: write node patterns as "
                                    "(var:Label {group_id: $group_id, ...})")
            continue  # a parenthesised expression
        if not node.group("var") and not node.group("labels") and not node.group("props") \
                and not (in_path or after_match):
            continue  # "()" outside a pattern
        nodes.append(_Node(m.start(), m.end(), node.group("var"),
                           bool(_ANCHOR.search(node.group("props") or ""))))
    return nodes


def _in_match(code: str, pos: int) -> bool:
    """True when ``pos`` lies in a MATCH clause (the last clause keyword before it is MATCH)."""
    keywords = list(_CLAUSE_END.finditer(code[:pos]))
    return bool(keywords) and keywords[-1].group(1).upper() in {"MATCH", "OPTIONAL"}


def _joined(code: str, left: _Node, right: _Node) -> bool:
    """True when only a relationship pattern (``-[...]->`` etc.) lies between two nodes."""
    between = code[left.end:right.start]
    return bool(re.fullmatch(r"\s*<?\s*-\s*(\[[^\[\]]*\])?\s*-\s*>?\s*", between))


def _rescope(code: str, start: int, end: int, bound: set[str]) -> set[str]:
    """Apply the WITH / UNION / UNWIND clauses in ``code[start:end]`` to the bound variables:
    WITH keeps only variables it passes on unchanged, UNION forgets all, UNWIND ... AS v rebinds v."""
    for m in _SCOPE.finditer(code, start, end):
        word = m.group(1).upper()
        rest_end = _CLAUSE_END.search(code, m.end())
        items = code[m.end():rest_end.start() if rest_end else len(code)]
        if word == "UNION":
            bound = set()
        elif word == "UNWIND":
            alias = re.search(r"\bAS\s+([A-Za-z_][A-Za-z0-9_]*)", items, re.IGNORECASE)
            if alias:
                bound = bound - {alias.group(1)}
        else:
            kept: set[str] = set()
            for item in _split_top(items.replace("DISTINCT", " ").replace("distinct", " ")):
                item = item.strip()
                if item == "*":
                    kept |= bound
                    continue
                plain = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:\s+AS\s+([A-Za-z_][A-Za-z0-9_]*))?", item,
                                     re.IGNORECASE)
                if plain and (plain.group(2) is None or plain.group(2) == plain.group(1)) and plain.group(1) in bound:
                    kept.add(plain.group(1))
            bound = kept
    return bound


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for c in text:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


def check_query(text: str) -> None:
    """Raise :class:`CypherRefused` unless ``text`` is a read-only query confined to ``$group_id``."""
    if not text.strip():
        raise CypherRefused("the query is empty")
    code = strip_literals(text)
    found = _KEYWORD.search(code)
    if found:
        word = found.group(1).upper()
        what = "calls procedures" if word == "CALL" else f"writes ({word})" if word != "LOAD" else "loads files (LOAD CSV)"
        raise CypherRefused(f"this query {what}; /v1/cypher runs read-only queries without CALL")
    if "$group_id" not in code:
        raise CypherRefused("the query must filter on $group_id, e.g. MATCH (n:Entity {group_id: $group_id}) ...")
    nodes = _node_patterns(code)
    if not nodes:
        raise CypherRefused("the query matches no node pattern anchored with {group_id: $group_id}")
    # paths: runs of node patterns joined by relationship patterns
    paths: list[list[_Node]] = []
    for node in nodes:
        if paths and _joined(code, paths[-1][-1], node):
            paths[-1].append(node)
        else:
            paths.append([node])
    bound: set[str] = set()
    position = 0
    for path in paths:
        bound = _rescope(code, position, path[0].start, bound)
        position = path[-1].end
        anchored = any(n.anchored or (n.var is not None and n.var in bound) for n in path)
        if not anchored:
            shown = text[path[0].start:path[-1].end]
            raise CypherRefused(f"pattern {shown!r} is not confined to the group: give one of its nodes "
                                "{group_id: $group_id} or reuse a variable bound by such a pattern")
        bound.update(n.var for n in path if n.var)


def check_result(rows: list[list[Any]], group_id: str) -> None:
    """Defence in depth: refuse a result holding any node/map of another group."""

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "group_id" in value and value["group_id"] != group_id:
                raise CypherRefused("the result holds data of another group; anchor every pattern on $group_id")
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(rows)
