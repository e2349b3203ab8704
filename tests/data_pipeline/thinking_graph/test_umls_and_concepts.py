"""The made-up UMLS, the RRF loader, offline QuickUMLS (no download, every span kept) and event concepts."""

from __future__ import annotations

import pytest

from data_pipeline.thinking_graph.umls import UmlsVocabulary, normalise, read_rrf
from tests.engines import require_engine

require_engine("quickumls", "pip install -e '.[umls]'")


@pytest.fixture(scope="module")
def fake_umls(tmp_path_factory):
    from data_pipeline.thinking_graph.fake_umls import write_fake_umls

    return write_fake_umls(tmp_path_factory.mktemp("umls"))


@pytest.fixture(scope="module")
def matcher(fake_umls, tmp_path_factory):
    import nltk
    import spacy.cli

    from data_pipeline.thinking_graph.matcher import build_index, load_matcher

    def no_network(*args, **kwargs):
        raise AssertionError("QuickUMLS tried to download something")

    saved = nltk.download, spacy.cli.download
    nltk.download, spacy.cli.download = no_network, no_network
    try:
        cache = tmp_path_factory.mktemp("qcache")
        first = build_index(fake_umls, cache)
        assert build_index(fake_umls, cache) == first  # cached: built once per vocabulary
        yield load_matcher(first)
    finally:
        nltk.download, spacy.cli.download = saved


def test_fake_umls_is_clearly_made_up_and_matches_the_cohort(fake_umls):
    conso = read_rrf(fake_umls / "MRCONSO.RRF", [f"c{i}" for i in range(18)], ["c0", "c11", "c14"])
    assert all(c.startswith("CZ") for c in conso["c0"].to_pylist())
    assert set(conso["c11"].to_pylist()) == {"FAKEUMLS"}
    assert "MADE-UP" in (fake_umls / "README.txt").read_text()
    vocab = UmlsVocabulary.from_rrf(fake_umls)
    for item in ("Glucose", "Vancomycin", "Sepsis, unspecified organism", "Acute kidney failure, unspecified",
                 "CHEST (PORTABLE AP)", "Glycopeptide antibacterials"):
        assert vocab.lookup(item), item


def test_exact_then_normalised_lookup(fake_umls):
    vocab = UmlsVocabulary.from_rrf(fake_umls)
    cui = vocab.lookup("CefTRIAXone")
    assert cui and vocab.lookup("ceftriaxone") == cui and vocab.lookup(" CEFTRIAXONE. ") == cui
    assert vocab.lookup("not a concept at all") is None
    assert normalise("Calcium,  Total") == "calcium total"


def test_bad_rrf_file_names_the_file(tmp_path):
    (tmp_path / "MRCONSO.RRF").write_text("C1|ENG\nC2|ENG|P|L|PF|S|Y|A|||C|SAB|PT|C|x|0|N||\n")
    (tmp_path / "MRSTY.RRF").write_text("")
    with pytest.raises(ValueError, match="MRCONSO"):
        UmlsVocabulary.from_rrf(tmp_path)
    with pytest.raises(FileNotFoundError, match="MRREL.RRF"):
        from data_pipeline.thinking_graph.paths import RelationGraph
        RelationGraph.from_mrrel(tmp_path)


def test_every_span_is_kept(matcher):
    from data_pipeline.thinking_graph.matcher import match_spans

    text = ("Presents with fever and hypotension. History of hypertension and type 2 diabetes mellitus. "
            "Given vancomycin and ceftriaxone for pneumonia.")
    spans = match_spans(matcher, text)
    assert [s["ngram"].lower() for s in spans] == ["fever", "hypotension", "hypertension", "type 2 diabetes mellitus",
                                                   "vancomycin", "ceftriaxone", "pneumonia"]
    assert all(text[s["start"]:s["end"]] == s["ngram"] for s in spans)
    assert match_spans(matcher, "   ") == []


def test_event_concepts_structured_and_text(fake_umls, matcher):
    from data_pipeline.events import Event
    from data_pipeline.thinking_graph.concepts import ConceptExtractor

    vocab = UmlsVocabulary.from_rrf(fake_umls)
    ex = ConceptExtractor(vocab, matcher)
    labs = Event("labevents", "2150-01-01 00:00:00", None, "1",
                 [{"item_name": "Glucose"}, {"item_name": "Sodium"}, {"item_name": "Made Up Lab"}])
    keys, spans = ex.event_concepts(labs)
    assert keys == [vocab.lookup("Glucose"), vocab.lookup("Sodium"), "~made up lab"] and spans == []
    rx = Event("prescriptions", "2150-01-01 00:00:00", None, "1",
               [{"drug": "Vancomycin", "ATC Type": "Glycopeptide antibacterials"}])
    assert ex.event_concepts(rx)[0] == [vocab.lookup("Vancomycin"), vocab.lookup("Glycopeptide antibacterials")]
    note = Event("radiology", "2150-01-01 00:00:00", None, "1",
                 [{"text": "Fever and cough. Pneumonia. Fever again.", "exam_name": "['CHEST (PORTABLE AP)']"}])
    keys, spans = ex.event_concepts(note)
    assert len(spans) == 4  # fever, cough, pneumonia, fever: every span, not just the first
    assert keys[0] == vocab.lookup("CHEST (PORTABLE AP)") and vocab.lookup("Pneumonia, unspecified organism") in keys


#: A vocabulary in the release layout whose strings differ from the cohort's item names as MIMIC's do (case,
#: doses and routes, qualifiers, abbreviations), with suppressible (E) and obsolete (O) atoms.
ATOMS = [("C0042313", "Vancomycin", "P", "PF", "Y", "RXNORM", "N"), ("C0042313", "Vancocin", "S", "VO", "N", "RXNORM", "N"),
         ("C0017725", "Glucose", "P", "PF", "Y", "LNC", "N"), ("C0032821", "Potassium", "P", "PF", "Y", "LNC", "N"),
         ("C0032821", "Potassium, serum", "S", "VO", "N", "LNC", "E"),
         ("C0020538", "Hypertensive disease", "P", "PF", "Y", "SNOMEDCT_US", "N"),
         ("C0020538", "Hypertension", "S", "PF", "N", "MSH", "N"), ("C0004057", "Aspirin", "P", "PF", "Y", "RXNORM", "N"),
         ("C0004057", "ASA", "S", "VO", "N", "RXNORM", "O"), ("C0035078", "Kidney Failure", "P", "PF", "Y", "MSH", "N")]
COHORT_NAMES = ["VANCOMYCIN", "Vancomycin 1 g IV", "glucose", "Potassium, serum", "Hypertension, essential",
                "Aspirin 81 mg", "ASA", "K+", "Kidney failure, acute"]


@pytest.fixture(scope="module")
def release_like(tmp_path_factory):
    d = tmp_path_factory.mktemp("release")
    (d / "MRCONSO.RRF").write_text("".join(
        f"{c}|ENG|{ts}|L{i}|{stt}|S{i}|{pref}|A{i}|||{i}|{sab}|PT|{i}|{s}|0|{sup}||\n"
        for i, (c, s, ts, stt, pref, sab, sup) in enumerate(ATOMS)))
    (d / "MRSTY.RRF").write_text("".join(f"{c}|T121|A1.4.1.1.1|Pharmacologic Substance|AT{i}||\n"
                                         for i, c in enumerate(sorted({a[0] for a in ATOMS}))))
    return d


def test_coverage_of_differently_written_names_is_measured(release_like, tmp_path):
    from data_pipeline.thinking_graph.concepts import ConceptExtractor, NameMap
    from data_pipeline.thinking_graph.matcher import build_index, load_matcher

    vocab = UmlsVocabulary.from_rrf(release_like, names=COHORT_NAMES)
    assert vocab.lookup("Potassium, serum") is None  # a suppressible (E) atom is not used ...
    assert vocab.lookup("ASA") is None                # ... nor an obsolete (O) one
    assert UmlsVocabulary.from_rrf(release_like, names=["ASA"], suppress=("N", "O")).lookup("ASA") == "C0004057"
    assert set(vocab.preferred) == {"C0042313", "C0017725"} and vocab.name("C0042313") == "Vancomycin"
    shared = NameMap({n: c for n in COHORT_NAMES if (c := vocab.lookup(n)) is not None})
    matcher = load_matcher(build_index(release_like, tmp_path / "cache"))
    exact_only = ConceptExtractor(shared, matcher, name_fallback=False)
    with_fallback = ConceptExtractor(shared, matcher)
    covered = [sum(not ex.key(n).startswith("~") for n in COHORT_NAMES) for ex in (exact_only, with_fallback)]
    assert covered == [2, 8]  # exact or normalised: VANCOMYCIN, glucose; QuickUMLS's best match adds six
    assert with_fallback.key("Vancomycin 1 g IV") == "C0042313" and with_fallback.key("K+") == "~k"
    assert with_fallback.key("Hypertension, essential") == "C0020538"


@pytest.mark.parametrize("name, cui", [
    ("Kidney failure, acute", None),          # every word must be in one atom: "Kidney Failure" lacks "acute"
    ("Hypertensive", "C0020538"),
    ("Kidney", "C0035078"),
    ("Vancomycin 1 g IV", None),               # "1", "g", "IV" are in no atom: left to QuickUMLS
    ('"); DROP TABLE atoms; --', None),        # item strings never reach FTS syntax
    ("+++", None),
])
def test_full_text_search_is_the_reference_middle_fallback(release_like, tmp_path, name, cui):
    from data_pipeline.thinking_graph.fulltext import build_fulltext_index, fulltext_lookup

    index = build_fulltext_index(release_like, tmp_path)
    assert build_fulltext_index(release_like, tmp_path) == index  # built once per vocabulary
    assert fulltext_lookup(index, [name]).get(name) == cui
    assert fulltext_lookup(index, ["Potassium serum"]) == {}  # the suppressible atom is not indexed
