"""QuickUMLS, offline: the index built once per vocabulary and cached, no spaCy model and no NLTK data fetched.

QuickUMLS 1.4.2 as shipped downloads ``en_core_web_sm`` (spaCy) and the NLTK stopwords on first use, and its
installer prompts on stdin. Here:

* :func:`build_index` calls QuickUMLS's own extraction and simstring/unqlite writers (``quickumls.install``'s
  functions, not its ``main``), into ``<cache_dir>/<fingerprint of MRCONSO+MRSTY+options>/``, atomically; a
  finished index is reused.
* :func:`load_matcher` writes a stopword list into the index folder as an NLTK corpus and puts it first on
  ``nltk.data.path``, creates QuickUMLS as a "spaCy component" (so it loads no model) and gives it a blank
  English spaCy pipeline. A blank pipeline has no part-of-speech tags, so the DET/ADP/CONJ span heuristics are
  inactive; matching itself is QuickUMLS's.
* :func:`match_spans` keeps EVERY matched span (the reference kept only the first), each with its best candidate.

The reference's settings are QuickUMLS's defaults: threshold 0.7, jaccard, window 5, min_match_length 3,
overlapping "score", ``constants.ACCEPTED_SEMTYPES``, best_match=True, ignore_syntax=False.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

INDEX_VERSION = 1
#: A plain English stopword list (the usual function words; written as the NLTK ``stopwords/english`` corpus).
STOPWORDS = """a about above after again against all am an and any are as at be because been before being below
between both but by can did do does doing down during each few for from further had has have having he her here
hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
on once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with you your yours yourself yourselves""".split()


@dataclass(frozen=True)
class MatcherSettings:
    threshold: float = 0.7
    similarity_name: str = "jaccard"
    window: int = 5
    min_match_length: int = 3
    overlapping_criteria: str = "score"
    #: None = QuickUMLS's ``constants.ACCEPTED_SEMTYPES`` (the reference); [] = every semantic type.
    accepted_semtypes: tuple[str, ...] | None = None
    lowercase: bool = True


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def index_fingerprint(umls_dir: str | Path, settings: MatcherSettings) -> str:
    from data_pipeline.thinking_graph.umls import rrf_path

    h = hashlib.sha256(f"v{INDEX_VERSION}:lower={settings.lowercase}".encode())
    for name in ("MRCONSO", "MRSTY"):
        h.update(_file_key(rrf_path(umls_dir, name)).encode())
    return h.hexdigest()[:16]


def build_index(umls_dir: str | Path, cache_dir: str | Path, settings: MatcherSettings = MatcherSettings()) -> Path:
    """The QuickUMLS index of ``umls_dir`` under ``cache_dir`` (built now unless a finished one exists)."""
    from quickumls.install import extract_from_mrconso, parse_and_encode_ngrams

    from data_pipeline.thinking_graph.umls import rrf_path

    final = Path(cache_dir) / f"quickumls-{index_fingerprint(umls_dir, settings)}"
    if (final / "_SUCCESS").is_file():
        return final
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if settings.lowercase:
        (tmp / "lowercase.flag").touch()
    (tmp / "language.flag").write_text("ENG")
    (tmp / "database_backend.flag").write_text("unqlite")
    opts = Namespace(language="ENG", lowercase=settings.lowercase, normalize_unicode=False)
    log.info("building the QuickUMLS index of %s into %s (once per vocabulary)", umls_dir, final)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the installer prints progress lines per 100k terms
        terms = extract_from_mrconso(str(rrf_path(umls_dir, "MRCONSO")), str(rrf_path(umls_dir, "MRSTY")), opts)
        parse_and_encode_ngrams(terms, str(tmp / "umls-simstring.db"), str(tmp / "cui-semtypes.db"),
                                database_backend="unqlite")
    _write_stopwords(tmp)
    (tmp / "_SUCCESS").touch()
    if final.exists():  # another worker finished first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        try:
            os.replace(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write_stopwords(index_dir: Path) -> Path:
    root = index_dir / "nltk_data"
    corpus = root / "corpora" / "stopwords"
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "english").write_text("\n".join(STOPWORDS) + "\n")
    return root


def load_matcher(index_dir: str | Path, settings: MatcherSettings = MatcherSettings()):
    """A QuickUMLS matcher over a built index, with nothing downloaded."""
    import nltk
    import spacy
    from quickumls import QuickUMLS
    from quickumls import constants as qc

    root = str(_write_stopwords(Path(index_dir)))
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    nltk.corpus.stopwords.words("english")  # fails here (not inside QuickUMLS, which would download) if absent
    semtypes = qc.ACCEPTED_SEMTYPES if settings.accepted_semtypes is None else (set(settings.accepted_semtypes)
                                                                                or None)
    matcher = QuickUMLS(str(index_dir), overlapping_criteria=settings.overlapping_criteria,
                        threshold=settings.threshold, window=settings.window,
                        similarity_name=settings.similarity_name, min_match_length=settings.min_match_length,
                        accepted_semtypes=semtypes, spacy_component=True)
    matcher.nlp = spacy.blank("en")
    return matcher


def match_spans(matcher, text: str) -> list[dict]:
    """Every matched span of ``text`` (QuickUMLS best_match=True, ignore_syntax=False), each with its best
    candidate: ``{start, end, ngram, cui, term, similarity}``, in text order."""
    if not text or not text.strip():
        return []
    doc = matcher.nlp(text)
    spans = matcher._match(doc, best_match=True, ignore_syntax=False)
    out = [{"start": int(c[0]["start"]), "end": int(c[0]["end"]), "ngram": c[0]["ngram"], "cui": c[0]["cui"],
            "term": c[0]["term"], "similarity": float(c[0]["similarity"])} for c in spans if c]
    return sorted(out, key=lambda m: (m["start"], m["end"]))
