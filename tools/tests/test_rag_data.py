"""tools/rag_data.py: deterministic, every answer at the end of its evidence span, readable by
the character GPT of s30 (the s43 lab scores answers with it)."""

from tools import rag_data as data

SHAKESPEARE_CHARS = set("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def test_corpus_is_deterministic_and_every_span_holds_its_fact():
    docs, questions = data.make_corpus(20, seed=1)
    assert (docs, questions) == data.make_corpus(20, seed=1) != data.make_corpus(20, seed=2)
    assert len(docs) == 20 and len(questions) == 20 * len(data.FACTS)
    for q in questions:
        words = docs[q["doc"]].split()
        sentence = " ".join(words[q["start"]:q["end"]])
        assert sentence.endswith("."), sentence
        assert sentence.lower().rstrip(".").split()[-1] == q["answer"], (sentence, q)
        assert set(docs[q["doc"]] + q["question"]) <= SHAKESPEARE_CHARS
    assert 0.3 < sum(q["paraphrased"] for q in questions) / len(questions) < 0.7


def test_land_names_are_unique_and_paraphrase_can_be_switched_off():
    docs, questions = data.make_corpus(30, seed=0, paraphrase=0.0)
    assert not any(q["paraphrased"] for q in questions)
    assert len({q["question"] for q in questions}) == len(questions)   # one land per document
