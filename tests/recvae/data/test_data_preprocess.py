"""The Mult-VAE protocol against a deliberately simple re-implementation of its reference notebook."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recvae.data import PreparedData, load_interactions, prepare
from recvae.data import preprocess
from recvae.data.preprocess import factorize_sorted, run_protocol


def reference_protocol(df: pd.DataFrame, *, threshold, min_uc, min_sc, n_heldout) -> dict:
    """The Mult-VAE preprocessing notebook, step by step with pandas (counts as a Series)."""
    if threshold is not None:
        df = df[df["value"] > threshold]
    if min_sc > 0:
        itemcount = df.groupby("item").size()
        df = df[df["item"].isin(itemcount.index[itemcount >= min_sc])]
    if min_uc > 0:
        usercount = df.groupby("user").size()
        df = df[df["user"].isin(usercount.index[usercount >= min_uc])]
    unique_uid = df.groupby("user").size().index
    rs = np.random.RandomState(98765)
    unique_uid = unique_uid[rs.permutation(unique_uid.size)]
    n = unique_uid.size
    tr_users = unique_uid[: n - 2 * n_heldout]
    vd_users = unique_uid[n - 2 * n_heldout : n - n_heldout]
    te_users = unique_uid[n - n_heldout :]
    train_plays = df.loc[df["user"].isin(tr_users)]
    unique_sid = pd.unique(train_plays["item"])

    def split(data):
        tr_list, te_list = [], []
        rs = np.random.RandomState(98765)
        for _, group in data.groupby("user"):
            n_items_u = len(group)
            if n_items_u >= 5:
                idx = np.zeros(n_items_u, dtype="bool")
                idx[rs.choice(n_items_u, size=int(0.2 * n_items_u), replace=False).astype("int64")] = True
                tr_list.append(group[np.logical_not(idx)])
                te_list.append(group[idx])
            else:
                tr_list.append(group)
        empty = data.iloc[:0]
        return (pd.concat(tr_list) if tr_list else empty), (pd.concat(te_list) if te_list else empty)

    def pairs(d):
        return set(zip(d["user"].tolist(), d["item"].tolist()))

    out = {"train_users": list(tr_users), "val_users": list(vd_users), "test_users": list(te_users),
           "items": list(unique_sid), "train": pairs(train_plays)}
    for name, users in (("val", vd_users), ("test", te_users)):
        plays = df.loc[df["user"].isin(users)]
        plays = plays.loc[plays["item"].isin(unique_sid)]
        tr, te = split(plays)
        out[f"{name}_tr"], out[f"{name}_te"] = pairs(tr), pairs(te)
    return out


def _pairs(m, users, items) -> set:
    coo = m.tocoo()
    return set(zip(np.asarray(users)[coo.row].tolist(), np.asarray(items)[coo.col].tolist()))


def assert_same_as_reference(data: PreparedData, ref: dict) -> None:
    assert list(data.train_users) == ref["train_users"]
    assert list(data.val_users) == ref["val_users"]
    assert list(data.test_users) == ref["test_users"]
    assert list(data.items) == ref["items"]  # same items in the same (first-appearance) order
    assert _pairs(data.train, data.train_users, data.items) == ref["train"]
    for split, users in (("val", data.val_users), ("test", data.test_users)):
        for part in ("tr", "te"):
            got = _pairs(getattr(data, f"{split}_{part}"), users, data.items)
            assert got == ref[f"{split}_{part}"], f"{split}_{part}"
    for m in (data.train, data.val_tr, data.val_te, data.test_tr, data.test_te):
        assert m.shape[1] == len(data.items)
        assert m.dtype == np.float32 and (m.data == 1).all()


def _check(name, data_dir=None, **kw) -> PreparedData:
    from recvae.data import get_dataset

    data = prepare(name, data_dir, **kw)
    spec = get_dataset(name)
    gen = {k: v for k, v in kw.items() if k not in {"heldout_users", "min_items_per_user", "min_users_per_item", "threshold"}}
    df = load_interactions(name, data_dir, **gen)
    if not spec.integer_ids:
        df = df.astype({"user": str, "item": str})
    p = data.manifest["params"]
    ref = reference_protocol(df, threshold=p["threshold"], min_uc=p["min_items_per_user"],
                             min_sc=p["min_users_per_item"], n_heldout=p["heldout_users"])
    assert_same_as_reference(data, ref)
    return data


def test_ml100k_matches_reference(shared_data):
    data = _check("ml100k", shared_data / "ml-100k")
    c = data.manifest["counts"]
    assert c["heldout_users"] == 93  # 10% of the 938 users left after filtering
    assert c["after_filter"] == {"events": 55_361, "users": 938, "items": 1_447}
    assert c["positive"]["events"] == 55_375
    assert len(data.train_users) == 938 - 2 * 93


def test_ml100k_other_parameters_match_reference(shared_data):
    _check("ml100k", shared_data / "ml-100k", heldout_users=200, min_items_per_user=20, min_users_per_item=10, threshold=2.5)


def test_msd_sample_string_ids_match_reference(shared_data):
    data = _check("msd", shared_data / "msd-sample", min_users_per_item=3, min_items_per_user=5, heldout_users=40)
    assert data.items.dtype.kind == "U" and data.train_users.dtype.kind == "U"
    assert data.manifest["params"]["threshold"] is None and data.manifest["has_timestamps"] is False


def test_netflix_sample_matches_reference(shared_data):
    _check("netflix", shared_data / "netflix-sample", min_items_per_user=2, heldout_users=40)


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_matches_reference(seed):
    data = _check("synthetic", seed=seed, n_users=800, n_items=300)
    assert data.manifest["generator"]["seed"] == seed


def test_fixture_edge_cases_match_reference():
    """Held-out users with < 5 items, unseen items dropped, threshold at exactly 3.5."""
    rng = np.random.default_rng(3)
    rows = []
    for u in rng.permutation(np.arange(100, 160)):
        k = int(rng.integers(1, 12))
        for i in rng.choice(np.arange(1, 40), size=k, replace=False):
            rows.append((int(u), int(i), float(rng.choice([1, 3.5, 4, 5])), 0))
    df = pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"]).sample(frac=1, random_state=1)
    uniq_u, ucodes = factorize_sorted(df["user"].to_numpy())
    pos = df["value"].to_numpy() > 3.5
    uniq_u, ucodes = factorize_sorted(df["user"].to_numpy()[pos])
    uniq_i, icodes = factorize_sorted(df["item"].to_numpy()[pos])
    data, counts = run_protocol(ucodes, icodes, uniq_u, uniq_i, min_items_per_user=1, min_users_per_item=0, heldout=15)
    ref = reference_protocol(df, threshold=3.5, min_uc=1, min_sc=0, n_heldout=15)
    assert_same_as_reference(data, ref)
    assert counts["val_users_without_heldout"] > 0 and counts["test_users_without_heldout"] > 0
    # users with < 5 items keep everything as fold-in and have an empty held-out row
    n_val = np.asarray(data.val_tr.sum(axis=1)).ravel() + np.asarray(data.val_te.sum(axis=1)).ravel()
    empty = np.asarray(data.val_te.sum(axis=1)).ravel() == 0
    assert (n_val[empty] < 5).all()


def test_heldout_size_and_rng_semantics():
    """floor(0.2 n) held-out items per user, chosen by RandomState(98765).choice in raw row order."""
    rows = [(1, i) for i in (50, 40, 30, 20, 10, 60, 70)] + [(2, i) for i in (5, 6, 7, 8, 9)] + [(3, i) for i in range(10, 22)]
    u = np.array([r[0] for r in rows])
    it = np.array([r[1] for r in rows])
    uid, uc = factorize_sorted(u)
    iid, ic = factorize_sorted(it)
    # all users in one held-out block: with 3 users and H = 1, one of them is the test user
    data, _ = run_protocol(uc, ic, uid, iid, min_items_per_user=0, min_users_per_item=0, heldout=1)
    perm = np.random.RandomState(98765).permutation(3)
    assert list(data.test_users) == [uid[perm[2]]]
    user = uid[perm[2]]
    mine = [i for (x, i) in rows if x == user]
    seen = [i for i in mine if i in set(data.items.tolist())]
    n = len(seen)
    idx = np.random.RandomState(98765).choice(n, size=int(0.2 * n), replace=False)
    held = {seen[k] for k in idx}
    got = {data.items[c] for c in data.test_te.indices}
    assert got == held


def test_factorize_sorted_int_and_str():
    ids = np.array([30, 10, 20, 10, 5_000_000_000])
    u, c = factorize_sorted(ids)
    assert list(u) == [10, 20, 30, 5_000_000_000] and (u[c] == ids).all()
    s = np.array(["b", "a", "c", "a"])
    u, c = factorize_sorted(s)
    assert list(u) == ["a", "b", "c"] and (u[c] == s).all()


def test_prepare_cache_reuse_and_invalidation(cache, tmp_path):
    rng = np.random.default_rng(0)
    lines = [f"{u}\t{i}\t{int(rng.integers(1, 6))}\t{880000000 + k}\n" for k, (u, i) in
             enumerate((u, i) for u in range(1, 60) for i in rng.choice(np.arange(1, 80), 15, replace=False))]
    d = tmp_path / "ml-100k"
    d.mkdir()
    (d / "u.data").write_text("".join(lines))
    a = prepare("ml100k", d)
    key = a.manifest["key"]
    assert (cache / "prepared" / f"ml100k-{key}" / "manifest.json").is_file()
    # reused: the protocol is not run again
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(preprocess, "run_protocol", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
        b = prepare("ml100k", d)
    assert b.manifest == json.loads(json.dumps(a.manifest)) and (b.items == a.items).all()
    assert (b.train != a.train).nnz == 0
    # other parameters: another entry
    c = prepare("ml100k", d, threshold=2.5)
    assert c.manifest["key"] != key and c.manifest["params"]["threshold"] == 2.5
    # changed input: re-ingested, new content digest, new entry
    (d / "u.data").write_text("".join(lines[:-1]))
    e = prepare("ml100k", d)
    assert e.manifest["source"]["digest"] != a.manifest["source"]["digest"]
    assert e.manifest["key"] != key
    assert len(list((cache / "interactions").iterdir())) == 2


def test_manifest_contents(shared_data):
    m = prepare("ml100k", shared_data / "ml-100k").manifest
    for k in ("dataset", "params", "source", "counts", "has_timestamps", "vocabulary_fingerprint", "time"):
        assert k in m
    assert m["params"]["threshold"] == 3.5 and m["params"]["seed"] == 98765
    assert m["params"]["min_items_per_user"] == 5 and m["params"]["min_users_per_item"] == 0
    assert m["source"]["files"][0]["sha256"] == "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
    assert m["has_timestamps"] is True


def test_dataset_defaults():
    from recvae.data import get_dataset

    assert get_dataset("ml20m").heldout_users == 10_000
    assert get_dataset("netflix").heldout_users == 40_000
    msd = get_dataset("msd")
    assert (msd.heldout_users, msd.min_items_per_user, msd.min_users_per_item, msd.threshold) == (50_000, 20, 200, None)
    assert get_dataset("ml100k").resolve_heldout(938) == 93


def test_sparse_huge_integer_ids_match_reference(tmp_path):
    """Ids far outside a dense range take the sort-based path; same result as the reference."""
    rng = np.random.default_rng(5)
    lines = ["userId,movieId,rating,timestamp"]
    for u in rng.choice(10**12, size=80, replace=False):
        for i in rng.choice(np.arange(1, 60) * 10**10, size=int(rng.integers(3, 20)), replace=False):
            lines.append(f"{u},{i},{rng.choice([2.0, 4.0, 4.5])},1112486027")
    d = tmp_path / "ml-20m"
    d.mkdir()
    (d / "ratings.csv").write_text("\n".join(lines) + "\n")
    _check("ml20m", d, heldout_users=8)


# ---------------------------------------------------------------------------------------------
# Published fingerprints on the full datasets: only where a local copy is named by an environment
# variable (SIMCACHE_TEST_ML20M = folder with ratings.csv, SIMCACHE_TEST_NETFLIX = training_set/
# or combined_data folder, SIMCACHE_TEST_MSD = folder with train_triplets.txt).


def _full(var: str):
    import os

    path = os.environ.get(var)
    if not path:
        pytest.skip(f"set {var} to a local copy of the full dataset to check the published fingerprints")
    return path


def test_ml20m_published_fingerprints():
    data = prepare("ml20m", _full("SIMCACHE_TEST_ML20M"))
    c = data.manifest["counts"]
    assert c["positive"] == {"events": 9_995_410, "users": 138_287, "items": 20_720}
    assert c["after_filter"] == {"events": 9_990_682, "users": 136_677, "items": 20_720}
    assert len(data.items) == 20_108 and len(data.train_users) == 116_677
    assert list(data.items[:5]) == [151, 223, 253, 260, 293]
    assert data.test_te.nnz == 139_775 and data.val_te.nnz == 142_514


def test_netflix_published_fingerprints():
    data = prepare("netflix", _full("SIMCACHE_TEST_NETFLIX"))
    c = data.manifest["counts"]
    assert c["raw"]["events"] == 100_480_507
    assert c["after_filter"] == {"events": 56_880_037, "users": 463_435, "items": 17_769}
    assert len(data.items) == 17_769 and len(data.train_users) == 383_435


def test_msd_published_fingerprints():
    data = prepare("msd", _full("SIMCACHE_TEST_MSD"))
    c = data.manifest["counts"]
    assert c["raw"]["events"] == 48_373_586
    assert c["after_filter"]["users"] == 571_355
    assert len(data.items) == 41_140 and len(data.train_users) == 471_355
