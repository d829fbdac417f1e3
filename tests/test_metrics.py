"""jaxrec.metrics against hand-computed cases and sklearn."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from jaxrec import metrics


def test_auc_hand_computed_with_ties():
  # Pairs (pos, neg): (0.8 > 0.3) 1, (0.8 > 0.5) 1, (0.5 == 0.5) 1/2, (0.5 > 0.3) 1 -> 3.5 / 4.
  labels = [1, 0, 1, 0]
  scores = [0.8, 0.5, 0.5, 0.3]
  assert metrics.auc(labels, scores) == pytest.approx(3.5 / 4)


def test_auc_one_class_is_nan():
  assert math.isnan(metrics.auc([1, 1], [0.1, 0.2]))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn(seed):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, size=500)
  scores = np.round(rng.normal(size=500) + labels, 1)  # rounding makes many ties
  assert metrics.auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_uauc_skips_one_class_users_and_counts_them():
  users = [1, 1, 1, 2, 2, 3, 4, 4]
  labels = [1, 0, 0, 1, 0, 1, 1, 1]
  scores = [0.9, 0.1, 0.95, 0.2, 0.8, 0.5, 0.3, 0.4]
  # User 1: pos 0.9 vs neg (0.1, 0.95) -> 1/2. User 2: pos 0.2 < neg 0.8 -> 0. Users 3 (one row), 4 (only positives)
  # are skipped. Unweighted mean = 0.25.
  result = metrics.uauc(users, labels, scores)
  assert result.value == pytest.approx(0.25)
  assert (result.n_users, result.n_skipped) == (2, 2)


def test_uauc_matches_collm_style_loop():
  rng = np.random.default_rng(0)
  users = rng.integers(0, 30, size=600)
  labels = rng.integers(0, 2, size=600)
  scores = rng.normal(size=600) + 0.5 * labels
  per_user = []
  for u in np.unique(users):
    m = users == u
    if len(np.unique(labels[m])) == 2:
      per_user.append(roc_auc_score(labels[m], scores[m]))
  result = metrics.uauc(users, labels, scores)
  assert result.value == pytest.approx(np.mean(per_user), abs=1e-12)
  assert result.n_users == len(per_user)
  assert result.n_users + result.n_skipped == len(np.unique(users))


def test_gauc_weighting():
  # User 1: 3 rows (2 pos), AUC 1. User 2: 2 rows (1 pos), AUC 0. User 3: one class, skipped.
  users = [1, 1, 1, 2, 2, 3, 3]
  labels = [1, 1, 0, 1, 0, 0, 0]
  scores = [0.9, 0.8, 0.1, 0.1, 0.9, 0.5, 0.4]
  by_pos = metrics.gauc(users, labels, scores)  # RecBole: weights 2 and 1
  assert by_pos.value == pytest.approx(2 / 3)
  assert (by_pos.n_users, by_pos.n_skipped) == (2, 1)
  by_rows = metrics.gauc(users, labels, scores, weight="samples")  # weights 3 and 2
  assert by_rows.value == pytest.approx(3 / 5)
  assert metrics.uauc(users, labels, scores).value == pytest.approx(0.5)
  with pytest.raises(ValueError):
    metrics.gauc(users, labels, scores, weight="bogus")


def test_top_k_from_scores_masks_training_items_and_padding():
  scores = np.array([[9.0, 1.0, 5.0, 3.0, 4.0], [9.0, 2.0, 2.0, 1.0, 0.0]])
  ranked = metrics.top_k_from_scores(scores, k=2, exclude=[np.array([2]), np.array([], dtype=np.int64)])
  np.testing.assert_array_equal(ranked, [[4, 3], [1, 2]])  # col 0 never ranks; tie 1 vs 2 -> lower id first


def test_topk_hand_computed():
  ranked = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
  relevant = [[2, 10], [7], []]  # third user has no relevant item: left out of the means
  assert metrics.precision_at_k(ranked, relevant, 3) == pytest.approx((1 / 3 + 0) / 2)
  assert metrics.recall_at_k(ranked, relevant, 3) == pytest.approx((1 / 2 + 0) / 2)
  assert metrics.hit_rate_at_k(ranked, relevant, 3) == pytest.approx(0.5)
  # User 1: hit at position 2 -> DCG 1/log2(3); IDCG over min(2, 3) = 2 items: 1 + 1/log2(3).
  expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3)) / 2
  assert metrics.ndcg_at_k(ranked, relevant, 3) == pytest.approx(expected)
  assert metrics.precision_at_k(ranked, relevant, 1) == pytest.approx(0.0)


def test_ndcg_fewer_relevant_than_k_reaches_one():
  ranked = np.array([[5, 1, 2, 3, 4]])
  assert metrics.ndcg_at_k(ranked, [[5]], 5) == pytest.approx(1.0)  # IDCG over 1 item, not K
  assert metrics.ndcg_at_k(np.array([[1, 5, 2, 3, 4]]), [[5]], 5) == pytest.approx(1 / math.log2(3))


def test_coverage():
  ranked = np.array([[1, 2, 3], [2, 3, 4], [1, 0, 0]])
  assert metrics.coverage_at_k(ranked, n_items=10, k=3) == pytest.approx(4 / 10)
  assert metrics.coverage_at_k(ranked, n_items=10, k=1) == pytest.approx(2 / 10)


def test_ndcg_per_user_and_its_standard_error_against_scipy():
  from scipy import stats
  ranked = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [3, 2, 1]])
  relevant = [[2, 10], [7], [], [3]]  # user 3 has none: left out, as in ndcg_at_k
  per_user = metrics.ndcg_per_user(ranked, relevant, 3)
  np.testing.assert_allclose(per_user, [(1 / math.log2(3)) / (1 + 1 / math.log2(3)), 0.0, 1.0])
  assert metrics.ndcg_at_k(ranked, relevant, 3) == pytest.approx(per_user.mean())
  assert metrics.standard_error(per_user) == pytest.approx(stats.sem(per_user))
  assert math.isnan(metrics.standard_error([0.5]))


def test_per_user_terms_by_hand():
  """Two users, K = 2: user A ranks [1, 2] with relevant {2, 3}; user B ranks [3, 4] with relevant {3}; user C has no
  relevant item and is left out."""
  ranked = np.array([[1, 2], [3, 4], [5, 6]])
  got = metrics.per_user_at_k(ranked, [[2, 3], [3], []], 2)
  np.testing.assert_allclose(got["precision@2"], [0.5, 0.5])
  np.testing.assert_allclose(got["recall@2"], [0.5, 1.0])
  np.testing.assert_allclose(got["hit@2"], [1.0, 1.0])
  idcg_a = 1 + 1 / np.log2(3)
  np.testing.assert_allclose(got["ndcg@2"], [(1 / np.log2(3)) / idcg_a, 1.0])
  assert got["ndcg@2"].mean() == pytest.approx(metrics.ndcg_at_k(ranked, [[2, 3], [3], []], 2))


def test_bootstrap_ci_equals_a_plain_loop():
  """The same resamples drawn in a plain loop (numpy's generator, seed 0) give the same interval to 1e-12."""
  values = np.random.default_rng(3).normal(0.2, 1.0, 300)
  lo, hi = metrics.bootstrap_ci(values, n_resamples=500, seed=0)
  rng = np.random.default_rng(0)
  means = []
  for _ in range(500):
    idx = rng.integers(0, 300, 300)
    means.append(sum(values[i] for i in idx) / 300)
  assert lo == pytest.approx(np.quantile(means, 0.025), abs=1e-12)
  assert hi == pytest.approx(np.quantile(means, 0.975), abs=1e-12)
  assert lo < values.mean() < hi and hi - lo == pytest.approx(2 * 1.96 / np.sqrt(300), rel=0.2)  # ≈ normal theory
  assert all(np.isnan(metrics.bootstrap_ci([1.0])))


def test_paired_ctr_differences_equal_plain_loops_with_sklearn():
  """Model B − model A on the same rows: the point values are sklearn's, and each interval is the same draws as
  `ctr_intervals` applied to both models at once (rows for AUC, users for UAUC / GAUC), in plain loops (1e-12).
  The paired AUC interval is narrower than either model's own, since the rows' shared difficulty cancels."""
  rng = np.random.default_rng(7)
  n = 500
  users = rng.integers(0, 30, n)
  labels = (rng.random(n) < 0.4).astype(float)
  a = labels * 0.3 + rng.normal(size=n)
  b = a + labels * 0.2 + 0.3 * rng.normal(size=n)  # a better model, correlated with A
  got = metrics.paired_ctr_differences(users, labels, a, b, n_resamples=200, seed=0)
  assert got["auc"]["a"] == pytest.approx(roc_auc_score(labels, a), abs=1e-12)
  assert got["auc"]["diff"] == pytest.approx(roc_auc_score(labels, b) - roc_auc_score(labels, a), abs=1e-12)
  draw, diffs = np.random.default_rng(0), []
  for _ in range(200):
    idx = draw.integers(0, n, n)
    diffs.append(roc_auc_score(labels[idx], b[idx]) - roc_auc_score(labels[idx], a[idx]))
  assert got["auc"]["diff_ci"] == pytest.approx(list(np.quantile(diffs, [0.025, 0.975])), abs=1e-12)
  kept = [u for u in np.unique(users) if 0 < labels[users == u].sum() < (users == u).sum()]
  ua = np.array([roc_auc_score(labels[users == u], a[users == u]) for u in kept])
  ub = np.array([roc_auc_score(labels[users == u], b[users == u]) for u in kept])
  pos = np.array([labels[users == u].sum() for u in kept])
  assert got["uauc"]["diff"] == pytest.approx(ub.mean() - ua.mean(), abs=1e-12)
  assert got["gauc"]["b"] == pytest.approx((pos * ub).sum() / pos.sum(), abs=1e-12)
  draw, ud, gd = np.random.default_rng(0), [], []
  for _ in range(200):
    idx = draw.integers(0, len(kept), len(kept))
    ud.append((ub[idx] - ua[idx]).mean())
  draw = np.random.default_rng(0)
  for _ in range(200):
    idx = draw.integers(0, len(kept), len(kept))
    gd.append((pos[idx] * ub[idx]).sum() / pos[idx].sum() - (pos[idx] * ua[idx]).sum() / pos[idx].sum())
  assert got["uauc"]["diff_ci"] == pytest.approx(list(np.quantile(ud, [0.025, 0.975])), abs=1e-12)
  assert got["gauc"]["diff_ci"] == pytest.approx(list(np.quantile(gd, [0.025, 0.975])), abs=1e-12)
  own = metrics.ctr_intervals(users, labels, b, n_resamples=200, seed=0)["auc"]
  lo, hi = got["auc"]["diff_ci"]
  assert 0 < lo < hi and hi - lo < own[1] - own[0]


def test_ctr_intervals_equal_plain_loops_with_sklearn():
  """AUC's interval resamples rows, UAUC's and GAUC's resample users; the same draws in plain loops with sklearn's
  AUC give the same quantiles (1e-12)."""
  rng = np.random.default_rng(5)
  users = rng.integers(0, 25, 400)
  labels = (rng.random(400) < 0.5).astype(float)
  scores = labels * 0.3 + rng.normal(size=400)
  got = metrics.ctr_intervals(users, labels, scores, n_resamples=200, seed=0)
  draw = np.random.default_rng(0)
  aucs = []
  for _ in range(200):
    idx = draw.integers(0, 400, 400)
    aucs.append(roc_auc_score(labels[idx], scores[idx]))
  assert got["auc"] == pytest.approx(tuple(np.quantile(aucs, [0.025, 0.975])), abs=1e-12)
  per_user = {u: (roc_auc_score(labels[users == u], scores[users == u]), labels[users == u].sum())
              for u in np.unique(users) if 0 < labels[users == u].sum() < (users == u).sum()}
  a = np.array([v[0] for v in per_user.values()])
  p = np.array([v[1] for v in per_user.values()])
  draw = np.random.default_rng(0)
  uaucs, gaucs = [], []
  for _ in range(200):
    idx = draw.integers(0, len(a), len(a))
    uaucs.append(a[idx].mean())
  draw = np.random.default_rng(0)
  for _ in range(200):
    idx = draw.integers(0, len(a), len(a))
    gaucs.append((p[idx] * a[idx]).sum() / p[idx].sum())
  assert got["uauc"] == pytest.approx(tuple(np.quantile(uaucs, [0.025, 0.975])), abs=1e-12)
  assert got["gauc"] == pytest.approx(tuple(np.quantile(gaucs, [0.025, 0.975])), abs=1e-12)
  assert got["uauc"][0] < metrics.uauc(users, labels, scores).value < got["uauc"][1]
