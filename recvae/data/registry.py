"""The named datasets: where each comes from, its raw format, and its preprocessing defaults.

Adding a dataset is one :class:`DatasetSpec` entry here (plus a parser in
:mod:`recvae.data.parsers` if its raw format is new).

Checksums: GroupLens publishes an MD5 for every MovieLens zip (``<url>.md5``); the values below
are those published MD5s, and downloads (and local copies of the official zips) are verified
against them. ``ml-latest-small`` is re-issued from time to time under the same URL, and the MSD
taste-profile zip has no published checksum, so for those two nothing can be verified in advance:
the download is accepted and its SHA-256 is recorded in the interactions manifest instead (so a
later change of the file is visible there). Netflix has no official download any more.
"""

from __future__ import annotations

from dataclasses import dataclass

from recvae.errors import UserError

#: Raw formats understood by :mod:`recvae.data.parsers`.
FORMATS = ("movielens-csv", "movielens-dat", "movielens-tab", "netflix", "msd-triplets", "synthetic")


@dataclass(frozen=True)
class DatasetSpec:
    """One named dataset: source, raw layout and the protocol's per-dataset defaults."""

    name: str
    title: str
    format: str  # one of FORMATS
    #: Official download URL (None: no official download, e.g. Netflix, or generated data).
    url: str | None = None
    #: Known checksum of the download as ``"md5:<hex>"`` / ``"sha256:<hex>"`` (None: not known).
    checksum: str | None = None
    #: File name of the download (the official archive name).
    archive_name: str | None = None
    #: Path of the ratings file inside the archive (and inside an unpacked copy).
    member: str | None = None
    homepage: str = ""
    #: Binarisation: keep rows with ``value > threshold`` (None: every row is a positive).
    threshold: float | None = 3.5
    min_items_per_user: int = 5
    min_users_per_item: int = 0
    #: Held-out users H for validation and for test (None: use ``heldout_fraction``).
    heldout_users: int | None = None
    #: Fraction of the filtered users used for validation and (again) for test, when H is None.
    heldout_fraction: float = 0.1
    has_timestamps: bool = True
    #: Resolution of the timestamps: "seconds", "days" or "none".
    time_resolution: str = "seconds"
    #: Whether user/item ids are integers (MovieLens, Netflix) or strings (MSD).
    integer_ids: bool = True
    notes: str = ""

    def resolve_heldout(self, n_users: int, heldout_users: int | None = None) -> int:
        """H for a dataset with ``n_users`` users after filtering (explicit value wins)."""
        if heldout_users is None:
            heldout_users = self.heldout_users
        if heldout_users is None:
            heldout_users = max(1, int(self.heldout_fraction * n_users))
        if heldout_users < 1:
            raise UserError(f"heldout_users must be >= 1, got {heldout_users}")
        if n_users - 2 * heldout_users < 1:
            raise UserError(
                f"{self.name}: {n_users} users after filtering leave no training users with "
                f"{heldout_users} validation and {heldout_users} test users; lower --heldout-users"
            )
        return int(heldout_users)


_GL = "https://files.grouplens.org/datasets/movielens/"

_SPECS = (
    DatasetSpec(
        name="ml20m",
        title="MovieLens 20M",
        format="movielens-csv",
        url=_GL + "ml-20m.zip",
        checksum="md5:cd245b17a1ae2cc31bb14903e1204af3",
        archive_name="ml-20m.zip",
        member="ml-20m/ratings.csv",
        homepage="https://grouplens.org/datasets/movielens/20m/",
        heldout_users=10_000,
    ),
    DatasetSpec(
        name="ml25m",
        title="MovieLens 25M",
        format="movielens-csv",
        url=_GL + "ml-25m.zip",
        checksum="md5:6b51fb2759a8657d3bfcbfc42b592ada",
        archive_name="ml-25m.zip",
        member="ml-25m/ratings.csv",
        homepage="https://grouplens.org/datasets/movielens/25m/",
        heldout_users=10_000,
        notes="H = 10,000 as for ML-20M (similar size: 162,541 users).",
    ),
    DatasetSpec(
        name="ml10m",
        title="MovieLens 10M",
        format="movielens-dat",
        url=_GL + "ml-10m.zip",
        checksum="md5:ce571fd55effeba0271552578f2648bd",
        archive_name="ml-10m.zip",
        member="ml-10M100K/ratings.dat",
        homepage="https://grouplens.org/datasets/movielens/10m/",
    ),
    DatasetSpec(
        name="ml1m",
        title="MovieLens 1M",
        format="movielens-dat",
        url=_GL + "ml-1m.zip",
        checksum="md5:c4d9eecfca2ab87c1945afe126590906",
        archive_name="ml-1m.zip",
        member="ml-1m/ratings.dat",
        homepage="https://grouplens.org/datasets/movielens/1m/",
    ),
    DatasetSpec(
        name="ml100k",
        title="MovieLens 100K",
        format="movielens-tab",
        url=_GL + "ml-100k.zip",
        checksum="md5:0e33842e24a9c977be4e0107933c0723",
        archive_name="ml-100k.zip",
        member="ml-100k/u.data",
        homepage="https://grouplens.org/datasets/movielens/100k/",
    ),
    DatasetSpec(
        name="ml-latest-small",
        title="MovieLens Latest Small",
        format="movielens-csv",
        url=_GL + "ml-latest-small.zip",
        checksum=None,
        archive_name="ml-latest-small.zip",
        member="ml-latest-small/ratings.csv",
        homepage="https://grouplens.org/datasets/movielens/latest/",
        notes="Re-issued periodically under the same URL: no fixed checksum; SHA-256 recorded.",
    ),
    DatasetSpec(
        name="netflix",
        title="Netflix Prize",
        format="netflix",
        homepage="https://www.kaggle.com/datasets/netflix-inc/netflix-prize-data",
        heldout_users=40_000,
        time_resolution="days",
        notes=(
            "No official download any more: pass --data-dir with a training_set/ folder "
            "(mv_*.txt) or the combined_data_*.txt files. Dates are stamped 00:00 UTC."
        ),
    ),
    DatasetSpec(
        name="msd",
        title="Million Song Dataset, Echo Nest taste profile",
        format="msd-triplets",
        url="http://millionsongdataset.com/sites/default/files/challenge/train_triplets.txt.zip",
        checksum=None,
        archive_name="train_triplets.txt.zip",
        member="train_triplets.txt",
        homepage="http://millionsongdataset.com/tasteprofile/",
        threshold=None,
        min_items_per_user=20,
        min_users_per_item=200,
        heldout_users=50_000,
        has_timestamps=False,
        time_resolution="none",
        integer_ids=False,
        notes="No published checksum: SHA-256 of the download is recorded. No timestamps.",
    ),
    DatasetSpec(
        name="synthetic",
        title="Synthetic ratings with planted taste clusters",
        format="synthetic",
        notes="Generated from a seed; options n_users, n_items, n_clusters, mean_items, seed, ...",
    ),
)

#: The registry: every dataset by name, in the order shown to users (the single source that
#: ``simcache data list``, name validation and the tests read).
REGISTRY: dict[str, DatasetSpec] = {s.name: s for s in _SPECS}
#: The names of the built-in datasets (see :func:`dataset_names` for the live list).
DATASET_NAMES: tuple[str, ...] = tuple(REGISTRY)


def dataset_names() -> tuple[str, ...]:
    """Every registered dataset name, including any registered after import."""
    return tuple(REGISTRY)


def get_dataset(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name``; unknown names raise :class:`UserError`."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}; valid names: {', '.join(dataset_names())}") from None
