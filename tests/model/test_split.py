from __future__ import annotations

from model.data import Example, normalize
from model.split import bucket, grouped_split


def _corpus() -> list[Example]:
    ex = [Example(f"review {i} of movie {g}", "positive" if i % 2 else "negative", f"movie-{g}") for g in range(200) for i in range(5)]
    # The same snippet under two movies: they must be merged into one group.
    ex.append(Example("Review 0 of movie 3", "negative", "movie-77"))
    return ex


def test_split_is_deterministic_and_independent_of_row_order() -> None:
    a, b = grouped_split(_corpus()), grouped_split(list(reversed(_corpus())))
    assert grouped_split(_corpus()).hashes() == a.hashes()
    # Which copy of a duplicate survives depends on order; where each text goes does not.
    assert {k: sorted(normalize(e.text) for e in v) for k, v in a.parts().items()} == {
        k: sorted(normalize(e.text) for e in v) for k, v in b.parts().items()
    }


def test_split_no_group_in_two_splits() -> None:
    s = grouped_split(_corpus())
    groups = {name: {e.group for e in part} for name, part in s.parts().items()}
    assert not groups["train"] & groups["test"]
    assert not groups["train"] & groups["validation"]
    assert not groups["validation"] & groups["test"]


def test_split_merges_movies_sharing_a_snippet_and_drops_duplicates() -> None:
    s = grouped_split(_corpus())
    assert s.duplicates_dropped == 1
    where = {e.text: name for name, part in s.parts().items() for e in part}
    assert where["review 0 of movie 77"] == where["review 0 of movie 3"]


def test_split_sizes_about_80_10_10() -> None:
    sizes = grouped_split(_corpus()).sizes()
    total = sum(sizes.values())
    assert 0.7 < sizes["train"] / total < 0.9
    assert 0.04 < sizes["test"] / total < 0.16


def test_bucket_depends_only_on_name() -> None:
    # Pinned: a change of salt or hash would move every movie, and every artifact's split with it.
    assert {g: bucket(g) for g in ("the-matrix", "m1", "m37")} == {"the-matrix": "train", "m1": "test", "m37": "validation"}
    assert {bucket(f"m{i}") for i in range(100)} == {"train", "validation", "test"}
