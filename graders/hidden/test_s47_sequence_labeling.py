"""Hidden graders for s47: logsumexp on 3-D inputs against SciPy, smoothing with other alphas
and repeated pairs, Viterbi and posteriors against brute force with more tags, where the
Viterbi path and the posterior argmax disagree, backward in log space on a long sentence,
unknown words at test time and what the <unk> column learns, and the sampler's other cases."""

import numpy as np
import pytest
import scipy.special

from graders.helpers import assert_close, check_shape
from graders.test_s47_sequence_labeling import all_taggings, draw, joint, log_hmm, random_hmm


def counted(corpus, n_tags, n_words, alpha):
    """The grader's own add-alpha estimate, one token at a time."""
    first, pairs = np.zeros(n_tags), np.zeros((n_tags, n_tags))
    emits = np.zeros((n_tags, n_words + 1))
    for words, tags in corpus:
        first[tags[0]] += 1
        for t, (w, z) in enumerate(zip(words, tags, strict=True)):
            emits[z, w if 0 <= w < n_words else n_words] += 1
            if t:
                pairs[tags[t - 1], z] += 1
    norm = lambda c: (c + alpha) / (c + alpha).sum(axis=-1, keepdims=True)  # noqa: E731
    return np.log(norm(first)), np.log(norm(pairs)), np.log(norm(emits))


@pytest.mark.points(2)
def test_logsumexp_equals_scipy_on_3d_inputs_along_every_axis(impl, rng):
    a = rng.normal(0, 50, size=(3, 4, 5))
    a[0, 1, :] = -np.inf  # a whole slice along the last axis
    a[2, :, 3] = -np.inf  # a whole slice along the middle axis
    for axis in (0, 1, 2, -1, -2):
        got = np.asarray(impl.logsumexp(a, axis=axis))
        want = scipy.special.logsumexp(a, axis=axis)
        check_shape(got, want.shape, f"logsumexp of a (3, 4, 5) array along axis {axis}")
        assert np.array_equal(np.isneginf(got), np.isneginf(want)), (
            f"logsumexp along axis {axis}: a slice of only -inf must give -inf, and only such a "
            "slice")
        finite = np.isfinite(want)
        assert_close(got[finite], want[finite], f"logsumexp along axis {axis} (vs SciPy)")
    assert_close(impl.logsumexp(np.array([710.0, 710.0])), 710.0 + np.log(2.0),
                 "logsumexp([710, 710]): exp(710) overflows, the max trick must not")
    assert_close(impl.logsumexp(np.array([3.5])), 3.5, "logsumexp of one value is that value")



@pytest.mark.points(2)
def test_fit_hmm_with_other_alphas_and_repeated_pairs(impl, rng):
    n_tags, n_words = 3, 6
    corpus = []
    for length in (1, 7, 4, 9, 2, 1, 5):
        tags = rng.integers(0, n_tags, length)
        tags[: length // 2] = tags[0]  # repeated (j, j) pairs and tag-word pairs in one sentence
        words = rng.integers(-2, n_words + 3, length)  # some out-of-vocabulary ids
        words[: length // 2] = words[0]
        corpus.append((words, tags))
    for alpha in (0.1, 2.5):
        got = impl.fit_hmm(corpus, n_tags=n_tags, n_words=n_words, alpha=alpha)
        want = counted(corpus, n_tags, n_words, alpha)
        for name, g, w in zip(("log_pi", "log_A", "log_B"), got, want, strict=True):
            check_shape(g, w.shape, f"fit_hmm's {name}")
            assert_close(g, w, f"fit_hmm's {name} with alpha={alpha} (a pair that repeats inside "
                         "one sentence must be counted every time: np.add.at, not +=)")



@pytest.mark.points(2)
def test_viterbi_and_posteriors_against_brute_force_with_four_tags(impl, rng):
    n_tags, n_words, length = 4, 5, 5
    for _ in range(4):
        hmm = log_hmm(*random_hmm(rng, n_tags, n_words, conc=0.5))
        words = rng.integers(0, n_words, length)
        taggings = all_taggings(n_tags, length)
        scores = np.array([joint(hmm, words, z) for z in taggings])
        tags, score = impl.viterbi(hmm, words)
        assert np.asarray(tags).tolist() == taggings[scores.argmax()].tolist(), (
            f"viterbi with {n_tags} tags on {length} words is not the most probable tagging: "
            "delta_t(k) = max over the previous tag j of delta_{t-1}(j) + log A[j, k], plus "
            "log B[k, w_t]")
        assert_close(score, scores.max(), "viterbi's score with four tags")
        p = np.exp(scores - scores.max())
        want = np.array([[p[[z[t] == k for z in taggings]].sum() for k in range(n_tags)]
                         for t in range(length)]) / p.sum()
        post = impl.posteriors(hmm, words)
        assert_close(post, want, "posteriors with four tags (vs the sum over all taggings)")



@pytest.mark.points(1)
def test_viterbi_path_can_differ_from_the_posterior_argmax(impl):
    # tag 0 is a 'hub' reachable in many ways, tags 1 and 2 form one sharp path (worked by hand):
    # p(z = 1 1) = .4 * .9 = .36 is the single best tagging, yet at t = 0 tag 0 has mass .6
    pi = np.array([0.6, 0.4, 0.0]) + 1e-12
    A = np.array([[0.34, 0.33, 0.33], [0.05, 0.9, 0.05], [1 / 3, 1 / 3, 1 / 3]])
    B = np.full((3, 1), 1.0)
    hmm = log_hmm(pi / pi.sum(), A, B)
    words = np.array([0, 0])
    tags, _ = impl.viterbi(hmm, words)
    post = impl.posteriors(hmm, words)
    assert np.asarray(tags).tolist() == [1, 1], (
        f"viterbi returned {np.asarray(tags).tolist()}; the most probable tagging of this HMM "
        "has probability 0.36 and is [1, 1] (every other one is at most 0.204)")
    assert post[0].argmax() == 0, (
        "posteriors at t = 0 should favour tag 0 (total mass 0.6) although the best single "
        f"path starts with tag 1; got {np.round(post[0], 3).tolist()}")



@pytest.mark.points(2)
def test_backward_stays_in_log_space_and_matches_forward(impl, rng):
    n_tags, n_words, length = 3, 20, 1500
    hmm = log_hmm(*random_hmm(rng, n_tags, n_words))
    words = rng.integers(0, n_words, length)
    alpha, log_p = impl.forward(hmm, words)
    beta = impl.backward(hmm, words)
    assert np.all(np.isfinite(beta)), (
        f"backward on {length} words gave non-finite values: beta is a log-probability of up to "
        "1500 words (about 1e-2000); use logsumexp, never exp then sum")
    assert_close(beta[-1], np.zeros(n_tags), "beta's last row is log 1 = 0")
    # for every t, logsumexp_k(alpha_t + beta_t) = log p(words)
    got = scipy.special.logsumexp(alpha + beta, axis=1)
    assert_close(got, np.full(length, log_p), "logsumexp(alpha[t] + beta[t]) at every t",
                 rtol=1e-10)  # sums of ~1500 logs of size ~3
    post = impl.posteriors(hmm, words)
    assert_close(post.sum(axis=1), np.ones(length), "posterior rows on 1500 words", rtol=1e-8)



@pytest.mark.points(2)
def test_unknown_words_at_test_time_are_tagged_through_the_unk_column(impl, rng):
    # tag 2 emits a fresh word every time (ids >= 8): only the <unk> column can learn it
    n_words = 8
    pi = np.array([0.4, 0.3, 0.3])
    A = np.array([[0.2, 0.4, 0.4], [0.4, 0.2, 0.4], [0.4, 0.4, 0.2]])
    train = []
    for words, tags in draw(rng, pi, A, np.full((3, 4), 0.25), 60, 8):
        words = np.where(tags == 0, words, words + 4)  # tag 0: words 0-3, tag 1: words 4-7
        words = np.where(tags == 2, 100 + rng.integers(0, 10 ** 6, len(tags)), words)
        train.append((words, tags))
    hmm = impl.fit_hmm(train, n_tags=3, n_words=n_words, alpha=0.5)
    assert np.asarray(hmm[2]).argmax(axis=0)[n_words] == 2, (
        "after training, the tag most likely to emit <unk> should be the one that emitted the "
        "out-of-vocabulary words: count training words outside [0, n_words) in column n_words")
    test = [(np.array([0, 5, 123456789, -7, 2]), np.array([0, 1, 2, 2, 0]))]
    acc, confusion = impl.evaluate(hmm, test, n_words)
    assert_close(acc, 1.0, "accuracy on a sentence with two unseen words (ids 123456789 and -7)")
    assert np.asarray(confusion)[2, 2] == 2, "both unseen words should be tagged as tag 2"
    tags, score = impl.viterbi(hmm, impl.unknown_to_column(test[0][0], n_words))
    assert_close(score, impl.joint_logprob(hmm, impl.unknown_to_column(test[0][0], n_words), tags),
                 "viterbi's score is the joint log-probability of its tags")



@pytest.mark.points(1)
def test_viterbi_on_exact_ties_returns_one_of_the_best_taggings(impl):
    hmm = log_hmm(np.full(3, 1 / 3), np.full((3, 3), 1 / 3), np.full((3, 2), 0.5))
    words = np.array([1, 0, 1, 1])
    tags, score = impl.viterbi(hmm, words)
    tags = np.asarray(tags)
    check_shape(tags, (4,), "viterbi's tags on a uniform HMM")
    assert tags.min() >= 0 and tags.max() < 3, f"tags {tags.tolist()} are not all in 0..2"
    assert_close(score, 4 * np.log(1 / 3) + 4 * np.log(0.5),
                 "viterbi's score on a uniform HMM: every tagging ties")
    assert_close(joint(hmm, words, tags), score, "the joint of the returned tags equals the score")



@pytest.mark.points(2)
def test_joint_logprob_and_forward_on_a_longer_sentence(impl, rng):
    hmm = log_hmm(*random_hmm(rng, 5, 7))
    words = rng.integers(0, 7, 40)
    tags = rng.integers(0, 5, 40)
    assert_close(impl.joint_logprob(hmm, words, tags), joint(hmm, words, tags),
                 "joint_logprob on a 40-word sentence")
    alpha, log_p = impl.forward(hmm, words)
    assert_close(alpha[0], hmm[0] + hmm[2][:, words[0]], "alpha[0] = log pi + log B[:, w_0]")
    assert_close(log_p, scipy.special.logsumexp(alpha[-1]), "log p(words) from the last row")
    assert log_p > impl.viterbi(hmm, words)[1], (
        "log p(words) sums over every tagging, so it must exceed the best single tagging's")



@pytest.mark.points(1)
def test_sample_corpus_with_three_tags_one_word_and_no_sentences(impl):
    pi = np.array([0.0, 0.0, 1.0])
    A = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # 2 -> 0 -> 1 -> 2
    B = np.eye(3)[:, [2, 0, 1]]  # tag k always emits word (k + 1) % 3
    corpus = impl.sample_corpus(pi, A, B, n_sentences=5, length=7, seed=11)
    for words, tags in corpus:
        assert np.asarray(tags).tolist() == [2, 0, 1, 2, 0, 1, 2], (
            f"a deterministic HMM (start 2, then 2 -> 0 -> 1 -> 2) gave tags {list(tags)}")
        assert np.asarray(words).tolist() == [int(np.argmax(B[k])) for k in tags], (
            "each word must be drawn from emit[its own tag]")
        assert np.asarray(words).dtype == np.int64 and np.asarray(tags).dtype == np.int64, (
            "words and tags are int64 arrays")
    one = impl.sample_corpus(pi, A, B, n_sentences=3, length=1, seed=0)
    assert [np.asarray(z).tolist() for _, z in one] == [[2]] * 3, "length 1: only the start tag"
    assert impl.sample_corpus(pi, A, B, n_sentences=0, length=4, seed=0) == [], (
        "n_sentences=0 gives an empty list")

