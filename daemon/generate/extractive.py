"""Extractive text analysis for the offline backend: sentences, TextRank, key terms.

This module owns everything the offline generator knows about *language*: rebuilding
sentences from caption cues (each keeping the time it starts), ranking them with
TextRank (PageRank over a sparse cosine-similarity graph) and finding key terms. It
never formats markdown; :mod:`daemon.generate.offline` does that.

Cost stays bounded on long videos: similarities come from one sparse matrix product,
each sentence keeps only its ``NEIGHBOURS`` strongest edges, and beyond ``MAX_NODES``
sentences adjacent ones are ranked as merged passages.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy import sparse

from vault_tools.models import Segment

MAX_NODES = 2500  # sentences ranked one by one; more are merged into passages
NEIGHBOURS = 12  # strongest similarity edges kept per sentence
WINDOW_WORDS = 20  # sentence size when captions carry no punctuation
MAX_SENTENCE_WORDS = 60

# English function words and lecture filler, plus the commonest words of a few other
# languages; any language's filler is also caught by ``_too_common``.
STOPWORDS = frozenset("""
a about above actually after again against ago all almost also although always am among an
and another any anybody anyone anything anyway are aren't around as ask asked at away back
basically be became because become becomes been before being below better between big both
but by came can can't cannot come comes could couldn't course did didn't different do does
doesn't doing don't done down during each either else enough even ever every everybody
everyone everything example exactly fact far few find first for from front get gets getting
give given go goes going gonna good got gotta great had has hasn't have haven't having he
he'd he'll he's her here here's hers herself him himself his how however i i'd i'll i'm
i've idea if important in instead into is isn't it it's its itself just keep kind know
known last later least left less let let's like little look looking lot lots made make
makes making many may maybe me mean means might mine minute minutes moment more most much
must my myself need needs never new next nice no nobody none nor not nothing now number of
off often oh ok okay old on once one ones only onto or other others otherwise our ours
ourselves out over own part people perhaps point pretty probably put quite rather really
right said same saw say saying says second see seen seems she she'd she'll she's should
shouldn't show simply since so some somebody someone something sometimes sort still
stuff such sure take talk talking tell than thank thanks that that's the their theirs them
themselves then there there's these they they'd they'll they're they've thing things think
this those though three through to today together too took toward towards try
trying turn two uh um under understand until up upon us use used uses using usually very
want wanted wants was wasn't way ways we we'd we'll we're we've well went were weren't what
what's whatever when where whether which while who who's whole whom whose why will with
within without won't word words work works would wouldn't yeah year years yes yet you you'd
you'll you're you've your yours yourself yourselves call called calling calls named
alright morning afternoon everyone everybody welcome week weeks monday tuesday wednesday
thursday friday saturday sunday bit bunch remember along found says said tells
six seven eight nine ten eleven twelve twenty thirty forty fifty sixty hundred thousand
million third fourth fifth half twice once zero four five
el la los las un una unos unas y o de del que en es por para con se lo como más pero sus
le les des et ou du au aux est pour pas dans sur avec ce cette qui ne une il elle nous vous
der die das und ist nicht ein eine zu den mit von sich auf für dem auch es ich wir sie
il lo gli della di che non per con è sono uma um os as não com para mais
""".split())

# Fine inside a phrase ("round-trip time") but too vague as a key term on their own.
_GENERIC = frozenset("""time times day days hour hours month months person people place
problem question answer case way student students class lecture""".split())

# Words that join other words (arithmetic, comparison, logic): "low plus high divided by
# two" holds no phrase "low plus" or "plus high". Never a key term, never part of a pair.
FUNCTION_WORDS = frozenset("""plus minus times divided multiplied equals equal equalling
squared cubed per versus via amongst whereas thus hence therefore furthermore moreover
unlike besides beyond across despite except""".split())

_OPENERS = frozenset({"so", "now", "and", "but", "well", "okay", "the", "a", "an", "this"})
_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*$")
_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "prof.", "e.g.", "i.e.", "vs.", "st.", "etc.,",
                  "no.", "fig.", "approx.", "cf."}
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_CLAUSE = re.compile(r"[,;:.!?()\[\]\"“”—–]+|\s-\s")
_DEFINES = re.compile(r"\b(?:is|are|was|means?|refers? to|called|known as|defined as|stands for"
                      r"|is when|describes?)\b", re.I)


@dataclass(frozen=True)
class Sentence:
    start: float  # seconds: start of the cue holding the sentence's first word
    text: str

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class KeyTerm:
    term: str  # display form, e.g. "Calvin cycle", "TCP", "chlorophyll"
    count: int
    explained_in: int  # index of the sentence that best explains the term
    defined: bool = False  # that sentence reads as a definition ("X is ...", "called X")


def build_sentences(segments: Sequence[Segment]) -> list[Sentence]:
    """Join cues and split them into sentences (or ~20-word windows without punctuation)."""
    stream: list[tuple[str, float]] = [
        (word, seg.start) for seg in segments for word in seg.text.split()
    ]
    if not stream:
        return []
    enders = sum(1 for word, _ in stream if _END.search(word))
    punctuated = enders * 40 >= len(stream)
    limit = MAX_SENTENCE_WORDS if punctuated else WINDOW_WORDS
    sentences: list[Sentence] = []
    current: list[str] = []
    start = stream[0][1]
    for word, at in stream:
        if not current:
            start = at
        current.append(word)
        ends = punctuated and _END.search(word) and word.lower() not in _ABBREVIATIONS and not (
            len(word) == 2 and word[0].isupper())
        if ends or len(current) >= limit:
            sentences.append(Sentence(start, " ".join(current)))
            current = []
    if current:
        if sentences and len(current) < 4:
            last = sentences.pop()
            sentences.append(Sentence(last.start, f"{last.text} {' '.join(current)}"))
        else:
            sentences.append(Sentence(start, " ".join(current)))
    return sentences


def stem(word: str) -> str:
    """Very light English stemming so 'reactions' and 'reaction' meet; harmless elsewhere."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("xes", "ches", "shes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(text: str) -> list[str]:
    """Lowercase stems of the words that carry meaning (no stopwords, no numbers)."""
    return [stem(w) for w in (m.lower().strip("'’-") for m in _WORD.findall(text))
            if (len(w) > 2 or (len(w) == 2 and not w.isascii())) and w not in STOPWORDS]


class Analysis:
    """Ranked sentences of one transcript, with helpers to pick and label them."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.sentences = build_sentences(segments)
        self._tokens = [content_words(s.text) for s in self.sentences]
        self._common = _too_common(self._tokens)
        self._vectors = _tfidf(self._tokens, self._common)
        self.scores = rank(self._vectors)
        self._hits: dict[str, list[int]] = {}
        self._index: dict[str, set[int]] = {}  # stem -> sentences holding it
        for number, sentence in enumerate(self.sentences):
            for word in _WORD.findall(sentence.text):
                self._index.setdefault(stem(word.lower().strip("'’-")), set()).add(number)
        self._cohesions: np.ndarray | None = None

    # -- picking sentences ------------------------------------------------------------

    def top(self, count: int, *, start: float = 0.0, end: float = math.inf,
            min_words: int = 6, max_similarity: float = 0.5) -> list[int]:
        """Indices of the ``count`` best distinct sentences in [start, end), in time order."""
        pool = [i for i, s in enumerate(self.sentences) if start <= s.start < end]
        usable = [i for i in pool if self.sentences[i].words >= min_words] or pool
        order = sorted(usable, key=lambda i: -self._weighted(i))
        chosen: list[int] = []
        for index in order:
            if len(chosen) >= count:
                break
            if chosen:
                sims = self._vectors[chosen] @ self._vectors[index].T
                if sims.size and sims.max() > max_similarity:
                    continue
            chosen.append(index)
        return sorted(chosen)

    def _weighted(self, index: int) -> float:
        words = self.sentences[index].words
        length = min(1.0, words / 12) * (1.0 if words <= 45 else 45 / words)
        return float(self.scores[index]) * length

    def containing(self, term: str) -> list[int]:
        """Indices of the sentences that mention ``term`` (or its plural)."""
        if term not in self._hits:
            stems = [stem(w.lower().strip("'’-")) for w in _WORD.findall(term)]
            pool = set.intersection(*(self._index.get(s, set()) for s in stems)) if stems else (
                set(range(len(self.sentences))))
            pattern = re.compile(rf"(?<!\w){re.escape(term)}(?:e?s)?(?!\w)", re.I)
            self._hits[term] = sorted(i for i in pool if pattern.search(self.sentences[i].text))
        return self._hits[term]

    # -- sections ----------------------------------------------------------------------

    def boundaries(self, parts: int, end: float) -> list[float]:
        """Start times of about ``parts`` similar-length sections, cut where topics shift.

        Each cut lands near its even split point, at the sentence where the words
        before and after it overlap least (a light TextTiling).
        """
        starts = [s.start for s in self.sentences]
        if parts <= 1 or len(starts) < parts * 2 or end <= 0:
            return [0.0]
        span = end / parts
        cuts = [0.0]
        for k in range(1, parts):
            target = k * span
            candidates = [i for i in range(1, len(starts)) if abs(starts[i] - target) <= span / 4
                          and starts[i] > cuts[-1] + span / 2]
            if candidates:
                best = min(candidates, key=lambda i: (round(self._cohesion(i), 2),
                                                      abs(starts[i] - target)))
                cuts.append(starts[best])
        return cuts

    def _cohesion(self, index: int, reach: int = 4) -> float:
        """Cosine similarity of the ``reach`` sentences before ``index`` and from it on."""
        if self._cohesions is None:
            n = len(self.sentences)
            before = _band(n, -reach, 0) @ self._vectors  # row i: sentences i-reach .. i-1
            after = _band(n, 0, reach) @ self._vectors  # row i: sentences i .. i+reach-1
            dots = np.asarray(before.multiply(after).sum(axis=1)).ravel()
            norms = (np.sqrt(np.asarray(before.multiply(before).sum(axis=1)).ravel())
                     * np.sqrt(np.asarray(after.multiply(after).sum(axis=1)).ravel()))
            self._cohesions = np.divide(dots, norms, out=np.zeros(n), where=norms > 0)
        return float(self._cohesions[index])

    # -- key terms ---------------------------------------------------------------------

    def key_terms(self, limit: int = 12) -> list[KeyTerm]:
        """Frequent content words, bigrams and capitalised names, best first.

        Terms the talk defines ("X is ...", "called X") count for more, and a phrase
        replaces the single words it mostly explains.
        """
        candidates = _term_candidates(self.sentences, self._common)
        shortlist = sorted(candidates.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit * 3]
        scored: list[tuple[float, str, KeyTerm]] = []
        for key, (score, count, surface) in shortlist:
            hits = self.containing(surface)
            if hits:
                index, level = self._explaining(surface, hits)
                term = KeyTerm(surface, count, index, level >= 2)
                scored.append((score * (1.6 if level >= 2 else 1.0), key, term))
        scored.sort(key=lambda item: (-item[0], item[1]))
        chosen: dict[str, KeyTerm] = {}
        for _score, key, term in scored:
            if len(chosen) >= limit:
                break
            parts = key.split()
            if len(parts) == 1 and any(key in taken.split() for taken in chosen):
                continue
            if len(parts) > 1:
                if all(p in chosen for p in parts):
                    continue
                for part in parts:
                    if part in chosen and term.count * 3 >= chosen[part].count:
                        del chosen[part]
            chosen[key] = term
        return list(chosen.values())

    def _explaining(self, term: str, hits: list[int]) -> tuple[int, int]:
        """(index, level) of the sentence that explains ``term`` best.

        Level 4: opens with "X is/means ...", 3: "X is" later on, 2: "called X", 1: a
        defining verb after X, 0: none (then the best-ranked sentence mentioning X).
        """
        escaped = re.escape(term)
        subject = re.compile(rf"(?<!\w){escaped}(?:e?s)?,?\s+(?:which\s+)?(?:is|are|means?"
                             rf"|refers? to|describes?|stands for)\b", re.I)
        named = re.compile(rf"\b(?:called|known as|named|defined as|is|are)\s+"
                           rf"(?:an?\s+|the\s+)?{escaped}", re.I)
        loose = re.compile(rf"(?<!\w){escaped}", re.I)

        def quality(index: int) -> tuple[int, float]:
            sentence = self.sentences[index]
            if sentence.words < 6:
                return (0, self._weighted(index))
            found = loose.search(sentence.text)
            defining = subject.search(sentence.text)
            opening = {w.strip(",").lower() for w in sentence.text[:defining.start()].split()
                       } if defining else {"-"}
            if defining and opening <= _OPENERS:
                level = 4  # the sentence opens with it: "The congestion window is ..."
            elif defining:
                level = 3
            elif named.search(sentence.text):
                level = 2
            else:
                level = 1 if found and _DEFINES.search(sentence.text, found.end()) else 0
            return (level, self._weighted(index))
        best = max(hits, key=quality)
        return best, quality(best)[0]

    def label(self, start: float, end: float, terms: Sequence[KeyTerm], size: int = 3) -> str:
        """A short topic label for a time range: the key terms most particular to it."""
        inside = {i for i, s in enumerate(self.sentences) if start <= s.start < end}
        scored: list[tuple[float, str]] = []
        for term in terms:
            hits = self.containing(term.term)
            local = sum(1 for i in hits if i in inside)
            if local and hits:
                weight = 1.3 if " " in term.term else 1.0
                scored.append((local * local / len(hits) * weight, term.term))
        chosen: list[str] = []
        for _score, term in sorted(scored, key=lambda st: (-st[0], st[1])):
            words = set(term.lower().split())
            if any(words & set(c.lower().split()) for c in chosen):
                continue
            chosen.append(term)
            if len(chosen) == size:
                break
        return ", ".join(chosen)


def rank(vectors: sparse.csr_matrix) -> np.ndarray:
    """TextRank scores (PageRank over top-k cosine similarities), one per row."""
    n = vectors.shape[0]
    if n == 0:
        return np.zeros(0)
    group = max(1, math.ceil(n / MAX_NODES))
    if group > 1:  # rank passages of ``group`` adjacent sentences, then share the score
        members = sparse.csr_matrix(
            (np.ones(n), (np.arange(n) // group, np.arange(n))), shape=(math.ceil(n / group), n))
        passages = _normalise(members @ vectors)
        passage_scores = rank(passages)
        fit = np.asarray((vectors.multiply(passages[np.arange(n) // group])).sum(axis=1)).ravel()
        return passage_scores[np.arange(n) // group] * (0.5 + 0.5 * fit)
    sims = (vectors @ vectors.T).toarray()
    np.fill_diagonal(sims, 0.0)
    k = min(NEIGHBOURS, n - 1)
    if k <= 0 or not sims.any():
        return np.full(n, 1.0 / n)
    cutoff = np.partition(sims, n - k - 1, axis=1)[:, n - k - 1: n - k] if k < n - 1 else 0.0
    sims = np.where(sims >= cutoff, sims, 0.0)
    sims = np.maximum(sims, sims.T)
    graph = nx.from_scipy_sparse_array(sparse.csr_matrix(sims))
    try:
        ranks = nx.pagerank(graph, weight="weight", max_iter=200)
    except nx.PowerIterationFailedConvergence:
        ranks = dict(graph.degree(weight="weight"))
    return np.array([ranks.get(i, 0.0) for i in range(n)], dtype=float)


def _band(n: int, low: int, high: int) -> sparse.csr_matrix:
    """n x n matrix with ones where ``low <= column - row < high``."""
    offsets = list(range(low, high))
    return sparse.diags([np.ones(n - abs(k)) for k in offsets], offsets, shape=(n, n),
                        format="csr")


def _too_common(tokens: Sequence[Sequence[str]]) -> set[str]:
    """Words in over a quarter of all sentences: filler in any language, not topics."""
    if len(tokens) < 20:
        return set()
    df = Counter(t for sentence in tokens for t in set(sentence))
    return {t for t, c in df.items() if c > len(tokens) / 4}


def _tfidf(tokens: Sequence[Sequence[str]], common: set[str]) -> sparse.csr_matrix:
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    df = Counter(t for sentence in tokens for t in set(sentence))
    n = len(tokens)
    for row, sentence in enumerate(tokens):
        for token, tf in Counter(t for t in sentence if t not in common).items():
            col = vocab.setdefault(token, len(vocab))
            rows.append(row)
            cols.append(col)
            vals.append((1 + math.log(tf)) * (1 + math.log(n / df[token])))
    matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(n, max(len(vocab), 1)))
    return _normalise(matrix)


def _normalise(matrix: sparse.spmatrix) -> sparse.csr_matrix:
    matrix = sparse.csr_matrix(matrix, dtype=float)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


def _term_candidates(sentences: Sequence[Sentence], common: set[str]
                     ) -> dict[str, tuple[float, int, str]]:
    """key -> (score, count, display form) for unigrams, bigrams and capitalised names."""
    counts: Counter[str] = Counter()
    surfaces: dict[str, Counter[str]] = {}
    weights = {1: 1.0, 2: 2.5}

    def note(key: str, surface: str, times: int = 1) -> None:
        counts[key] += times
        surfaces.setdefault(key, Counter())[surface] += 1

    for sentence in sentences:
        for number, clause in enumerate(_CLAUSE.split(sentence.text)):
            words = [w.strip("'’-") for w in _WORD.findall(clause)]
            if number == 0 and words and not words[0].isupper():
                words[0] = words[0].lower()  # sentence-initial capitals are not names
            keys = [stem(w.lower()) for w in words]
            good = [len(w) > 2 and w.lower() not in STOPWORDS and k not in common
                    and w.lower() not in FUNCTION_WORDS
                    for w, k in zip(words, keys, strict=True)]
            run: list[str] = []  # capitalised names of three or more words
            for word in [*words, ""]:
                if _is_name(word) and word.lower() not in STOPWORDS:
                    run.append(word)
                    continue
                if 3 <= len(run) <= 4:
                    note(" ".join(stem(w.lower()) for w in run), " ".join(run))
                run = []
            for i, word in enumerate(words):
                if not good[i]:
                    continue
                if word.lower() not in _GENERIC:
                    note(keys[i], word if _is_name(word) else word.lower())
                if i + 1 < len(words) and good[i + 1]:
                    pair = f"{word} {words[i + 1]}"
                    note(f"{keys[i]} {keys[i + 1]}", pair if _is_name(word) else pair.lower())
    inside_pairs: Counter[str] = Counter()  # a word counts less when a phrase explains it
    for key, count in counts.items():
        parts = key.split()
        if len(parts) > 1 and count >= 2:
            for part in parts:
                inside_pairs[part] = max(inside_pairs[part], count)
    result: dict[str, tuple[float, int, str]] = {}
    for key, count in counts.items():
        size = len(key.split())
        if size > 1 and count < 2:
            continue
        surface = surfaces[key].most_common(1)[0][0]
        bonus = 1.3 if _is_name(surface.split()[0]) else 1.0
        residual = count - inside_pairs[key] / 2 if size == 1 else count
        result[key] = (residual * weights.get(size, 2.5) * bonus, count, surface)
    return result


def _is_name(word: str) -> bool:
    return len(word) > 1 and word[0].isupper() and (word[1:].islower() or word.isupper())
