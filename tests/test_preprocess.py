"""Tests for ktt.preprocess: exact identity with the original NLTK pipeline."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ktt import preprocess as pp

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

ADVERSARIAL = [
    "",
    " ",
    "\t\n ",
    "word",
    '"Quoted at the start," she said.',
    ' "leading space then quote"',
    '\t"leading tab then quote"',
    "''Double single quotes'' at the start",
    "a ''b'' c",
    "a\t''b''\tc",
    "'tis the season, 'Twas the night",
    "I cannot go; we're gonna wanna gimme lemme gotta more'n d'ye",
    "cannot",
    "CaNnOt",
    "x/cannot/y",
    "The end.",
    "The end. ",
    "The end.\n",
    "The end.\n\n\t",
    "Dr. Smith.",
    "Dr. Smith went to Washington D.C.",
    "Wait...",
    "Wait... what?!",
    "..",
    ".",
    "'",
    '"',
    "a .",
    "a ...",
    "1,000 and 3,5 but a,b and a, b and a ,5",
    "time: 12:30, ratio 3:1:",
    "ends with a comma,",
    "ends with a colon:",
    "«French» “curly” ‘single’ „low”",
    "x » y ” z ’",
    "non\u00a0breaking\u00a0spaces and\u2003em\u2003spaces",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds",
    "information\x1cseparators\x1d\x1e\x1f",
    "\x1c",
    "a \x1c b",
    "end.\x1c",
    "the cat's toy, the cats' toys, it's, he'll, they're, I'd, I'm, we've",
    "don't won't can't isn't DON'T Won'T",
    "x's' y",
    "x's'\ty",
    "x's'",
    "x'",
    "x' ",
    "He said. ')'",
    'He said. "',
    "He said. ) ]",
    "He said. )\t]",
    'He said. " ) x',
    "He said.) \" '",
    "(parenthesised) [bracketed] {braced} <angled>",
    "-- double -- dashes--and\u2013en\u2014em\u2012figure\u2015bar",
    "#hash @at $dollar %percent &amp; semi;colon *star*",
    "e-mail foo@bar.com http://example.com/a?b=c&d=e",
    "`backticks` ``double`` ```triple```",
    "rock'n'roll o'clock y'all ma'am",
    "''",
    "``",
    "' '",
    '" "',
    "trailing quote'",
    "trailing quote''",
    "x ' y",
    "'s 's 'S n't N'T 'll 'LL 're 'RE 've 'VE 'd 'D 'm 'M",
    "İstanbul ſtraße Kelvin\u212a",
    "Ünïcödé wörds and ß",
    "   leading and trailing whitespace   ",
    "\u2028line separator\u2029paragraph separator\x85next line",
    "Cholera due to Vibrio cholerae 01, biovar cholerae",
    "Pressure ulcer of right heel, stage 2",
]


@pytest.fixture(scope="module")
def nltk_ref():
    """The original pipeline, built from NLTK directly."""
    from nltk.stem.snowball import SnowballStemmer
    from nltk.tokenize import word_tokenize

    stem = SnowballStemmer("english").stem

    def tokens(text):
        return word_tokenize(text, preserve_line=True)

    def original(text):
        return " ".join(stem(w) if w not in pp.STOP_WORDS else w for w in tokens(text))

    return tokens, original


def test_stop_words_list():
    assert len(pp.STOP_WORDS) == 179
    assert isinstance(pp.STOP_WORDS, frozenset)
    assert {"i", "the", "having", "ourselves", "shouldn't", "wouldn't", "ma"} <= pp.STOP_WORDS


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_adversarial_identity(text, nltk_ref):
    tokens, original = nltk_ref
    assert pp.tokenize(text) == tokens(text)
    assert pp.preprocess_text(text) == original(text)


def test_adversarial_identity_batched_and_context_independent(nltk_ref):
    _, original = nltk_ref
    expected = [original(t) for t in ADVERSARIAL]
    pp.clear_caches()
    assert pp.preprocess(ADVERSARIAL) == expected
    # Served from the caches, in another order: no key may mix up contexts.
    assert pp.preprocess(ADVERSARIAL[::-1]) == expected[::-1]
    combined = " ".join(ADVERSARIAL)
    assert pp.preprocess_text(combined) == original(combined)


def _sample(path: Path, n: int) -> list[str]:
    pd = pytest.importorskip("pandas")
    texts = pd.read_parquet(path, columns=["text"])["text"]
    return texts.sample(n=min(n, len(texts)), random_state=0).tolist()


@pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data directory {DATA} is absent")
@pytest.mark.parametrize(
    ("relpath", "n"),
    [
        ("icd10cm/icd10cm.parquet", 3000),
        ("20newsgroups/train.parquet", 300),
        ("20newsgroups/test.parquet", 200),
    ],
)
def test_real_data_identity(relpath, n, nltk_ref):
    tokens, original = nltk_ref
    path = DATA / relpath
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    texts = _sample(path, n)
    pp.clear_caches()
    assert pp.preprocess(texts) == [original(t) for t in texts]
    assert [pp.tokenize(t) for t in texts[:100]] == [tokens(t) for t in texts[:100]]


def test_stop_words_kept_other_words_stemmed():
    assert pp.preprocess_text("having running cats ourselves") == "having run cat ourselves"
    # The stop-word test is case-sensitive, as in the original.
    assert pp.preprocess_text("Having Running") == "have run"
    assert pp.preprocess_text("The patients weren't running.") == "the patient were n't run ."


def test_empty_and_blank():
    assert pp.preprocess_text("") == ""
    assert pp.preprocess_text(" \t\n") == ""
    assert pp.tokenize("") == []
    assert pp.preprocess([]) == []
    assert pp.preprocess(["", "a"]) == ["", "a"]


@pytest.mark.parametrize("bad", [None, math.nan, 3, b"bytes"])
def test_non_string_raises(bad):
    with pytest.raises(TypeError) as info:
        pp.preprocess_text(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(TypeError):
        pp.tokenize(bad)
    with pytest.raises(TypeError):
        pp.preprocess(["fine", bad])


def test_single_string_is_not_a_batch():
    with pytest.raises(TypeError):
        pp.preprocess("not a list")


def test_tiny_cache_and_threads(monkeypatch, nltk_ref):
    # Constant eviction, from several threads at once, must not change results.
    _, original = nltk_ref
    texts = ADVERSARIAL * 3
    expected = [original(t) for t in texts]
    monkeypatch.setattr(pp, "_CACHE_SIZE", 4)
    pp.clear_caches()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(pp.preprocess_text, texts))
        batches = list(pool.map(pp.preprocess, [texts[i::4] for i in range(4)]))
    assert results == expected
    assert batches == [expected[i::4] for i in range(4)]
    pp.preprocess_text("x")
    assert len(pp._STEMMED) <= 5


def test_progress_bar(capsys):
    pp.preprocess(["a b"] * 10, progress=True)
    assert capsys.readouterr().err == ""
    out = pp.preprocess(["a b."] * 10_000, progress=True)
    assert out == ["a b ."] * 10_000
    assert "preprocess" in capsys.readouterr().err


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_works_without_nltk_data(tmp_path):
    # Neither punkt nor the stopwords corpus may be needed.
    code = """
        import nltk.data
        nltk.data.path[:] = [{tmp!r}]
        from ktt.preprocess import preprocess, preprocess_text, tokenize
        assert tokenize('"Hi," she said. It isn\\'t.') == [
            "``", "Hi", ",", "\'\'", "she", "said.", "It", "is", "n\'t", "."]
        assert preprocess_text("The cats were running.") == "the cat were run ."
        assert preprocess(["having fun", "Dr. Smith."]) == ["having fun", "dr. smith ."]
        print("ok")
    """.format(tmp=str(tmp_path))
    result = _run(code, NLTK_DATA=str(tmp_path), HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_is_light():
    code = """
        import sys
        import ktt.preprocess
        heavy = [m for m in ("pandas", "sklearn", "nltk") if m in sys.modules]
        assert not heavy, heavy
    """
    result = _run(code)
    assert result.returncode == 0, result.stderr
