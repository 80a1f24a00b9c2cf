"""Ranking metrics and the shared evaluation loop against a plain brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recvae.baselines import PopularityScorer
from recvae.errors import UserError
from recvae.evaluation import evaluate, format_table
from recvae.metrics import ndcg_at_k, ranking_metrics, recall_at_k


# ---- the reference: one user at a time, no vectorisation, the spec's formulas verbatim ----


def brute_rank(scores: list[float], excluded: set[int]) -> list[int]:
    """Items by descending score, ties by lower index, excluded (fold-in) items removed."""
    return sorted((i for i in range(len(scores)) if i not in excluded), key=lambda i: (-scores[i], i))


def brute_recall(ranking: list[int], heldout: set[int], k: int) -> float:
    return len(set(ranking[:k]) & heldout) / min(k, len(heldout))


def brute_ndcg(ranking: list[int], heldout: set[int], k: int) -> float:
    dcg = sum(1.0 / math.log2(r + 1) for r, item in enumerate(ranking[:k], start=1) if item in heldout)
    idcg = sum(1.0 / math.log2(r + 1) for r in range(1, min(k, len(heldout)) + 1))
    return dcg / idcg


def random_case(rng: np.random.Generator, n_users: int, n_items: int, tie_levels: int | None):
    """Random fold-in/held-out split (disjoint per user, some held-out sets empty) and scores."""
    fold, held = np.zeros((n_users, n_items)), np.zeros((n_users, n_items))
    for u in range(n_users):
        n_h = rng.choice([0, 1, 2, 5, n_items // 3, n_items // 2])  # below and above k, and empty
        n_f = rng.integers(0, n_items // 3)
        items = rng.permutation(n_items)
        held[u, items[:n_h]] = 1
        fold[u, items[n_h : n_h + n_f]] = 1
    if tie_levels is None:
        scores = rng.normal(size=(n_users, n_items))
    else:  # few distinct values: many ties, also across the top-k boundary
        scores = rng.integers(0, tie_levels, size=(n_users, n_items)).astype(float)
    return sp.csr_matrix(fold), sp.csr_matrix(held), scores.astype(np.float32)


def brute_evaluate(fold, held, scores, ks):
    out = {f"{m}@{k}": [] for k in ks for m in ("ndcg", "recall")}
    excluded = 0
    for u in range(fold.shape[0]):
        h = set(held[u].indices.tolist())
        if not h:
            excluded += 1
            continue
        ranking = brute_rank(scores[u].tolist(), set(fold[u].indices.tolist()))
        for k in ks:
            out[f"ndcg@{k}"].append(brute_ndcg(ranking, h, k))
            out[f"recall@{k}"].append(brute_recall(ranking, h, k))
    return {name: np.array(v) for name, v in out.items()}, excluded


@pytest.mark.parametrize("tie_levels", [None, 2, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evaluate_matches_brute_force(seed, tie_levels):
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(15, 60))
    fold, held, scores = random_case(rng, 37, n_items, tie_levels)
    ks = (1, 5, 20, 50, 100)  # also k > n_items
    res = evaluate_scores(scores, fold, held, ks=ks, batch_size=8, per_user=True)
    want, excluded = brute_evaluate(fold, held, scores, ks)
    assert res["n_excluded"] == excluded > 0
    assert res["n_evaluated"] + res["n_excluded"] == res["n_users"] == 37
    for name, values in want.items():
        np.testing.assert_allclose(res["per_user"][name], values, rtol=1e-12, atol=1e-12, err_msg=name)
        assert res["metrics"][name]["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert res["metrics"][name]["se"] == pytest.approx(values.std() / math.sqrt(values.size), rel=1e-9)
        assert np.isfinite(res["per_user"][name]).all()


def evaluate_scores(scores: np.ndarray, fold: sp.csr_matrix, held: sp.csr_matrix, **kw) -> dict:
    """``evaluate`` with a scorer that returns the precomputed ``scores`` rows of each batch.

    evaluate passes the fold-in rows of the users that have held-out items, in order; the scorer
    follows along and checks that each batch really is those users' fold-in rows.
    """
    users = iter(np.flatnonzero(held.getnnz(axis=1) > 0))

    def scorer(batch: sp.csr_matrix) -> np.ndarray:
        rows = np.array([next(users) for _ in range(batch.shape[0])])
        assert (batch != fold[rows]).nnz == 0
        return scores[rows]

    return evaluate(scorer, fold, held, **kw)


def test_evaluate_passes_each_users_fold_in_rows_in_order():
    rng = np.random.default_rng(5)
    fold, held, scores = random_case(rng, 23, 30, None)
    res = evaluate_scores(scores, fold, held, ks=(10,), batch_size=4, per_user=True)
    want, _ = brute_evaluate(fold, held, scores, (10,))
    np.testing.assert_allclose(res["per_user"]["ndcg@10"], want["ndcg@10"], rtol=1e-12)


def test_metric_functions_on_hand_made_cases():
    # held-out {0, 2}; ranking 0, 1, 2, 3: hits at ranks 1 and 3
    hits = torch.tensor([[True, False, True, False]])
    n = torch.tensor([2])
    assert recall_at_k(hits, n, 1).item() == pytest.approx(1.0)  # 1 / min(1, 2)
    assert recall_at_k(hits, n, 2).item() == pytest.approx(0.5)
    assert recall_at_k(hits, n, 4).item() == pytest.approx(1.0)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k(hits, n, 4).item() == pytest.approx((1 + 1 / math.log2(4)) / idcg)
    assert ndcg_at_k(hits, n, 1).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="held-out"):
        recall_at_k(hits, torch.tensor([0]), 2)


def test_ties_are_broken_by_item_index_and_fold_in_items_never_rank():
    scores = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.0]])
    relevant = torch.tensor([[False, False, False, True, False]])
    # ranking 1, 2, 3, 0, 4: the held-out item 3 is third
    got = ranking_metrics(scores, relevant, ks=(2, 3))
    assert got["recall@2"].item() == 0.0 and got["recall@3"].item() == 1.0
    fold = sp.csr_matrix(np.array([[0, 1, 0, 0, 0]]))
    held = sp.csr_matrix(np.array([[0, 0, 0, 1, 0]]))
    res = evaluate(lambda f: scores.clone(), fold, held, ks=(2,))
    assert res["metrics"]["recall@2"]["mean"] == 1.0  # item 1 excluded: ranking 2, 3, 0, 4


def test_users_without_held_out_items_are_excluded_and_counted():
    fold = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]))
    held = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    res = evaluate(lambda f: np.zeros(f.shape, np.float32), fold, held, ks=(2,))
    assert (res["n_users"], res["n_evaluated"], res["n_excluded"]) == (3, 1, 2)
    assert all(math.isfinite(v["mean"]) and math.isfinite(v["se"]) for v in res["metrics"].values())
    with pytest.raises(UserError, match="nothing to evaluate"):
        evaluate(lambda f: np.zeros(f.shape, np.float32), fold, sp.csr_matrix((3, 4)))


def test_nan_scores_and_wrong_shapes_are_refused():
    fold = sp.csr_matrix((2, 5))
    held = sp.csr_matrix(np.eye(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        evaluate(lambda f: np.full(f.shape, np.nan, np.float32), fold, held, ks=(2,))
    with pytest.raises(ValueError, match="shape"):
        evaluate(lambda f: np.zeros((f.shape[0], 4), np.float32), fold, held, ks=(2,))


def test_numpy_scores_are_not_modified_in_place():
    scores = np.arange(10, dtype=np.float32).reshape(2, 5)
    before = scores.copy()
    fold = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]]))
    held = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [0, 0, 1, 0, 0]]))
    evaluate(lambda f: scores, fold, held, ks=(2,))
    assert np.array_equal(scores, before)


def test_popularity_baseline_ranks_by_training_counts():
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 0, 1], [0, 1, 0, 1]]))
    fold = sp.csr_matrix(np.array([[0, 1, 0, 0]]))
    held = sp.csr_matrix(np.array([[0, 0, 1, 1]]))
    scorer = PopularityScorer(train)
    assert scorer(fold).tolist() == [[1.0, 3.0, 0.0, 2.0]]
    res = evaluate(scorer, fold, held, ks=(1, 2), per_user=True)
    # ranking without the fold-in item 1: 3 (count 2), 0 (count 1), 2 (count 0)
    assert res["per_user"]["recall@1"].tolist() == [1.0]
    assert res["per_user"]["recall@2"].tolist() == [0.5]


def test_format_table_lists_headline_metrics_first():
    fold = sp.csr_matrix((2, 5))
    held = sp.csr_matrix(np.eye(2, 5))
    res = evaluate(lambda f: np.zeros(f.shape, np.float32), fold, held)
    text = format_table({"model": res, "popularity": res})
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "model", "popularity"]
    assert [ln.split()[0] for ln in lines[1:4]] == ["ndcg@100", "recall@20", "recall@50"]
    assert "users evaluated: 2 of 2" in text
