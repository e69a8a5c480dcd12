"""Text preprocessing: Treebank tokenisation and Snowball stemming.

This reproduces the original KTT preprocessing exactly::

    " ".join(stemmer.stem(w) if w not in STOP_WORDS else w
             for w in word_tokenize(text, preserve_line=True))

with ``stemmer = SnowballStemmer("english")``, an order of magnitude faster
and without any NLTK data package (no punkt, no stopwords corpus).

How it stays identical
----------------------
NLTK's ``NLTKWordTokenizer`` only inserts spaces and rewrites quote characters,
and apart from the line-end rules none of its regexes looks further than one
character across whitespace. A text is therefore cut at runs of whitespace
into *units* that are tokenised once, memoised, and re-used:

* A unit is keyed by its chunk alone when no context can change its tokens.
  The character before a chunk only matters when the chunk starts with a quote
  (``([ \\(\\[{<])(\\"|\\'{2})``, ``^\\"``), the one after it only when it ends
  with ``'`` (``([^'])'`` and a space). Such chunks are keyed with stand-ins for their
  neighbours: a space, a tab for any other whitespace, or nothing at the start
  of the text.
* The last unit also sees the end of the text, which matters only for the
  final-period rule and a trailing ``'``. The final-period rule can skip spaces
  and closing brackets/quotes, so trailing chunks made only of those are merged
  into the last unit, which is then keyed verbatim (prefixed with ``"\\n"``).
* Missing units are tokenised in batches: their stand-in contexts are joined
  with a private-use character that occurs in none of them, so one NLTK call
  serves thousands of units. Like the rest of a text, the delimiter after the
  whitespace keeps the line-end rules from firing.

"Whitespace" here is what the ``regex`` engine behind NLTK calls ``\\s``:
``str.split`` also splits on U+001C..U+001F, which the tokenizer's regexes treat
as ordinary characters, so those stay inside their chunk.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from functools import lru_cache
from itertools import chain, islice

__all__ = ["STOP_WORDS", "clear_caches", "preprocess", "preprocess_text", "tokenize"]

# NLTK's English stop-word list, ``nltk.corpus.stopwords.words("english")`` as
# shipped in the NLTK data package for NLTK 3.x (179 words). Embedded so that no
# corpus download is needed.
STOP_WORDS: frozenset[str] = frozenset(
    """
    i me my myself we our ours ourselves you you're you've you'll you'd your
    yours yourself yourselves he him his himself she she's her hers herself it
    it's its itself they them their theirs themselves what which who whom this
    that that'll these those am is are was were be been being have has had
    having do does did doing a an the and but if or because as until while of
    at by for with about against between into through during before after above
    below to from up down in out on off over under again further then once here
    there when where why how all any both each few more most other some such no
    nor not only own same so than too very s t can will just don don't should
    should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't
    doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn
    mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn
    wasn't weren weren't won won't wouldn wouldn't
    """.split()
)

_CACHE_SIZE = 2**20
_BLOCK = 2_048  # texts per batch in preprocess(), also the progress-bar step
_PROGRESS_MIN = 10_000
_BATCH_CHARS = 1 << 16  # length of one batched NLTK call

# Runs of the characters NLTK's regexes treat as whitespace: Python whitespace
# except the information separators U+001C..U+001F.
_SEP_SPLIT = re.compile(r"([^\S\x1c-\x1f]+)").split
# Characters the final-period rule may skip (with spaces) before the line end.
_TAIL_CHARS = "])}>\"'\u00bb\u201d\u2019"
# Chunks no tokenizer rule can touch: ASCII without punctuation the rules look
# at, and without the letters of the MacIntyre contractions (gonna, cannot...).
_PLAIN = re.compile(r"[A-Za-z0-9_+=/\\^|~]+").fullmatch
_CONTRACTION = re.compile(r"(?i)cannot|gimme|gonna|gotta|lemme|wanna").search

# Memoised results per unit key: the stemmed string, and the token tuple.
_STEMMED: dict[str, str] = {}
_TOKENS: dict[str, tuple[str, ...]] = {}


@lru_cache(maxsize=1)
def _word_tokenize():
    # NLTK is imported on first use: it takes about a second and pulls in
    # pandas and scikit-learn.
    from nltk.tokenize import word_tokenize

    return word_tokenize


@lru_cache(maxsize=1)
def _snowball_stem():
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("english").stem


def _nltk(text: str) -> list[str]:
    return _word_tokenize()(text, preserve_line=True)


@lru_cache(maxsize=_CACHE_SIZE)
def _stem(token: str) -> str:
    return token if token in STOP_WORDS else _snowball_stem()(token)


def clear_caches() -> None:
    """Empty the memoisation caches (for benchmarks, or to release memory)."""
    _STEMMED.clear()
    _TOKENS.clear()
    _stem.cache_clear()


def _trim(cache: dict) -> None:
    # Once the cache is full, evict the oldest entries down to half its size.
    excess = len(cache) - _CACHE_SIZE
    if excess > 0:
        try:
            old = list(islice(cache, excess + _CACHE_SIZE // 2))
        except RuntimeError:  # resized by a concurrent call: trim next time
            return
        for key in old:
            cache.pop(key, None)


def _keys(text: str) -> list[str]:
    """Cut `text` into unit keys (see the module docstring).

    Parameters
    ----------
    text : str
        The text.

    Returns
    -------
    list of str
        One key per unit, in text order; empty if `text` is all whitespace.
    """
    parts = _SEP_SPLIT(text)  # chunk, sep, chunk, ..., sep, chunk
    first = 0 if parts[0] else 2
    last = len(parts) - 1 if parts[-1] else len(parts) - 3
    if first > last:
        return []
    start = last
    while start > first and not parts[start].strip(_TAIL_CHARS):
        start -= 2

    keys = parts[first:start:2]
    if "'" in text or '"' in text:
        for j, chunk in enumerate(keys):
            if chunk[0] in "\"'" or chunk[-1] == "'":
                i = first + 2 * j
                left = "" if i == 0 else (" " if parts[i - 1][-1] == " " else "\t")
                right = " " if parts[i + 1][0] == " " else "\t"
                keys[j] = left + chunk + right

    chunk = parts[start]
    if start == last and chunk[-1] != "'" and not chunk.rstrip(_TAIL_CHARS).endswith("."):
        # The end of the text cannot matter: key it like any other chunk.
        if chunk[0] in "\"'":
            left = "" if start == 0 else (" " if parts[start - 1][-1] == " " else "\t")
            chunk = left + chunk + " "
        keys.append(chunk)
    else:
        left = "" if start == 0 else (" " if parts[start - 1][-1] == " " else "\t")
        tail = "" if parts[-1] else parts[-2]
        keys.append("\n" + left + "".join(parts[start : last + 1]) + tail)
    return keys


def _tokenize_units(keys: Iterable[str]) -> dict[str, list[str]]:
    """Tokenise units that are not cached yet.

    Parameters
    ----------
    keys : iterable of str
        Distinct unit keys from :func:`_keys`.

    Returns
    -------
    dict
        The tokens of each unit.
    """
    out: dict[str, list[str]] = {}
    batched: list[tuple[str, str]] = []  # (key, unit with its context)
    for key in keys:
        if key[0] == "\n":  # last unit, verbatim
            out[key] = _nltk(key[1:])
        elif key[-1] in " \t":  # chunk with context
            if key[0] in " \t":
                batched.append((key, key))
            else:  # at the start of the text, where ^ must match
                out[key] = _nltk(key + "a")[:-1]
        elif _PLAIN(key) and not _CONTRACTION(key):
            out[key] = [key]
        else:
            batched.append((key, " " + key + " "))
    if not batched:
        return out

    # A private-use character found in no unit separates the units of a batch.
    texts = "".join(unit for _, unit in batched)
    delim = next((c for c in map(chr, range(0xE000, 0xF900)) if c not in texts), None)
    lo = 0
    while lo < len(batched):
        hi, size = lo, 0
        while hi < len(batched) and size < _BATCH_CHARS:
            size += len(batched[hi][1]) + 1
            hi += 1
        group = batched[lo:hi]
        units: list[list[str]] = [[]]
        if delim is not None:
            for token in _nltk(delim.join(unit for _, unit in group) + delim):
                if token == delim:
                    units.append([])
                else:
                    units[-1].append(token)
        if len(units) == len(group) + 1 and not units[-1]:
            out.update(zip((key for key, _ in group), units))
        else:  # not expected, but stay exact regardless
            for key, unit in group:
                out[key] = _nltk(unit + "a")[:-1]
        lo = hi
    return out


def _stemmed(tokens: list[str]) -> str:
    return " ".join(map(_stem, tokens))


def _fill(cache: dict, keys: Iterable[str], convert) -> None:
    missing = [key for key in keys if key not in cache]
    if missing:
        for key, tokens in _tokenize_units(missing).items():
            cache[key] = convert(tokens)


def _lookup(cache: dict, keys: list[str], convert) -> list:
    values = list(map(cache.get, keys))
    if None in values:  # evicted meanwhile by a concurrent call
        fresh = _tokenize_units({key for key, value in zip(keys, values) if value is None})
        values = [
            convert(fresh[key]) if value is None else value for key, value in zip(keys, values)
        ]
    return values


def _join(keys: list[str]) -> str:
    pieces = _lookup(_STEMMED, keys, _stemmed)
    if "" in pieces:  # a chunk of U+001C..U+001F characters has no token
        pieces = [piece for piece in pieces if piece]
    return " ".join(pieces)


def _check(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}: {text!r:.60}")


def tokenize(text: str) -> list[str]:
    """Tokenise like ``nltk.word_tokenize(text, preserve_line=True)``.

    Parameters
    ----------
    text : str
        Text to tokenise as a single line (no sentence splitting).

    Returns
    -------
    list of str
        The Treebank-style tokens, identical to NLTK's.

    Raises
    ------
    TypeError
        If `text` is not a string.
    """
    _check(text)
    _trim(_TOKENS)
    keys = _keys(text)
    _fill(_TOKENS, keys, tuple)
    return list(chain.from_iterable(_lookup(_TOKENS, keys, tuple)))


def preprocess_text(text: str) -> str:
    """Tokenise and stem one text the way the original KTT did.

    Every token is Snowball-stemmed (English) except NLTK's English stop words,
    which are kept unchanged (matched case-sensitively, as in the original).

    Parameters
    ----------
    text : str
        Text to preprocess.

    Returns
    -------
    str
        The processed tokens joined by single spaces; ``""`` for an empty text.

    Raises
    ------
    TypeError
        If `text` is not a string (e.g. None or NaN).

    Examples
    --------
    >>> preprocess_text("The patients weren't running.")
    "the patient were n't run ."
    """
    _check(text)
    _trim(_STEMMED)
    keys = _keys(text)
    _fill(_STEMMED, keys, _stemmed)
    return _join(keys)


def preprocess(texts: Iterable[str], progress: bool = False) -> list[str]:
    """Apply :func:`preprocess_text` to many texts.

    Parameters
    ----------
    texts : iterable of str
        The texts, e.g. a list or a pandas Series.
    progress : bool, default False
        Show a tqdm progress bar on stderr; it stays hidden for fewer than
        10,000 texts.

    Returns
    -------
    list of str
        One processed string per text, in order.

    Raises
    ------
    TypeError
        If `texts` is a single string or any element is not a string.
    """
    if isinstance(texts, str):
        raise TypeError("expected an iterable of str, got a single str")
    if not isinstance(texts, (list, tuple)):
        texts = list(texts)
    n = len(texts)
    bar = None
    if progress and n >= _PROGRESS_MIN:
        from tqdm import tqdm

        bar = tqdm(total=n, file=sys.stderr, desc="preprocess", unit="text")
    out: list[str] = []
    try:
        for lo in range(0, n, _BLOCK):
            block = texts[lo : lo + _BLOCK]
            for text in block:
                _check(text)
            _trim(_STEMMED)
            keys = [_keys(text) for text in block]
            _fill(_STEMMED, set(chain.from_iterable(keys)), _stemmed)
            out.extend(map(_join, keys))
            if bar is not None:
                bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    return out
