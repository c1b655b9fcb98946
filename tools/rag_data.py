"""A generated corpus with known answers for s43 (retrieval-augmented generation).

Each document describes one made-up land ("Zorvath", "Quenmir", ...) in a shuffled mix of
facts and filler sentences, some of which name other lands (so an entity's name alone does not
pick its document). Every fact comes with a question (half of them paraphrased, sharing few words
with the fact), its answer and the word span [start, end) of the fact sentence in the document's
whitespace words, so the chunks that contain the evidence are known exactly. No model, no
network: the same seed gives the same corpus on every machine.
"""

from __future__ import annotations

import random

SYLLABLES = ("zor", "vath", "quen", "mir", "tal", "osk", "bre", "nix", "dal", "umo", "kesh",
             "ryn", "ila", "gor", "pes", "thu", "wen", "aro", "lix", "fen")
EXPORTS = ("copper", "wool", "salt", "glass", "tea", "amber", "silk", "timber", "honey", "tin")
ANIMALS = ("heron", "lynx", "otter", "ibex", "crane", "badger", "stag", "falcon", "newt", "hare")
COLOURS = ("green", "crimson", "violet", "ochre", "silver", "teal", "black", "golden")
# (attribute, fact template, question, paraphrased question, value pool or None = a made-up name)
FACTS = (
    ("capital", "The capital of {e} is {v}.", "What is the capital of {e}?",
     "Which city governs {e}?", None),
    ("founder", "{e} was founded by {v}.", "Who founded {e}?", "Who started {e}?", None),
    ("export", "The main export of {e} is {v}.", "What is the main export of {e}?",
     "What does {e} sell abroad?", EXPORTS),
    ("animal", "The national animal of {e} is the {v}.", "What is the national animal of {e}?",
     "Which creature stands for {e}?", ANIMALS),
    ("flag", "The flag of {e} is {v}.", "What colour is the flag of {e}?",
     "How does the banner of {e} look?", COLOURS),
)
FILLER = ("{e} is a quiet land of hills and rivers.", "Travellers often speak well of {e}.",
          "Many songs are written about {e}.", "{e} trades every summer with {o}.",
          "The people of {e} distrust the people of {o}.", "Winters in {e} are long and cold.",
          "{e} sends envoys to {o} each spring.")


def _name(r: random.Random, used: set[str]) -> str:
    while True:
        name = "".join(r.choice(SYLLABLES) for _ in range(r.choice((2, 3)))).capitalize()
        if name not in used:
            used.add(name)
            return name


def make_corpus(n_entities: int = 40, seed: int = 0, n_filler: int = 3,
                paraphrase: float = 0.5) -> tuple[list[str], list[dict]]:
    """(documents, questions): one document per made-up land; each question is {"question",
    "answer" (lower-case), "doc" (its document's index), "start", "end" (the fact sentence's
    word span in doc.split()), "attribute", "paraphrased" (bool)}."""
    r, used = random.Random(seed), set()
    lands = [_name(r, used) for _ in range(n_entities)]
    docs, questions = [], []
    for d, land in enumerate(lands):
        others = [x for x in lands if x != land] or [land]
        sentences = []
        for attribute, fact, q, para, pool in FACTS:
            value = r.choice(pool) if pool else _name(r, used)
            sentences.append((fact.format(e=land, v=value), attribute, q, para, value))
        for template in r.sample(FILLER, min(n_filler, len(FILLER))):
            sentences.append((template.format(e=land, o=r.choice(others)), None, "", "", ""))
        r.shuffle(sentences)
        words = []
        for text, attribute, q, para, value in sentences:
            start = len(words)
            words += text.split()
            if attribute is not None:
                paraphrased = r.random() < paraphrase
                questions.append({"question": (para if paraphrased else q).format(e=land),
                                  "answer": value.lower(), "doc": d, "start": start,
                                  "end": len(words), "attribute": attribute,
                                  "paraphrased": paraphrased})
        docs.append(" ".join(words))
    return docs, questions
