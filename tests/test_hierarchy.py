import numpy as np
import pytest

from ktt.errors import KttError
from ktt.hierarchy import Hierarchy


def test_from_paths_orders_levels_and_codes():
    paths = [("Food", "Snacks", "Chips"), ("Food", "Drinks", "Tea"), ("Home", "Garden", "Hose"), ("Food", "Snacks", "Nuts")]
    hierarchy, codes = Hierarchy.from_paths(paths)
    assert hierarchy.level_sizes == [2, 3, 4]
    assert hierarchy.level_offsets == [0, 2, 5, 9]
    assert hierarchy.classes[:2] == ["Food", "Home"]
    assert hierarchy.leaf_classes == ["Tea", "Chips", "Nuts", "Hose"]
    # parents point at the previous level; top level has -1
    assert [hierarchy.classes[p] if p >= 0 else None for p in hierarchy.parent_of] == [
        None, None, "Food", "Food", "Home", "Drinks", "Snacks", "Snacks", "Garden"]
    assert [[hierarchy.classes[c] for c in row] for row in codes] == [list(p) for p in paths]
    assert hierarchy.path_names("Nuts") == ["Food", "Snacks", "Nuts"]


def test_same_label_under_two_parents_gets_qualified():
    hierarchy, _ = Hierarchy.from_paths([("Food", "Other"), ("Home", "Other"), ("Home", "Tools")])
    assert hierarchy.leaf_classes == ["Food > Other", "Home > Other", "Tools"]
    assert hierarchy.path_names("Home > Other") == ["Home", "Home > Other"]


def test_same_label_on_two_levels_gets_qualified():
    hierarchy, _ = Hierarchy.from_paths([("Neoplasms", "Benign", "Benign"), ("Neoplasms", "Benign", "Cyst")])
    assert hierarchy.classes == ["Neoplasms", "Neoplasms > Benign", "Neoplasms > Benign > Benign", "Cyst"]


def test_json_round_trip(tmp_path):
    hierarchy, _ = Hierarchy.from_paths([("a", "b"), ("a", "c"), ("d", "e")])
    hierarchy.to_json(tmp_path / "hierarchy.json")
    again = Hierarchy.from_json(tmp_path / "hierarchy.json")
    assert again == hierarchy
    assert set(again.to_dict()) == {"classes", "level_sizes", "level_offsets", "parent_of"}
    np.testing.assert_array_equal(again.leaf_paths, hierarchy.leaf_paths)


def test_unknown_leaf_is_a_clear_error():
    hierarchy, _ = Hierarchy.from_paths([("a", "b"), ("a", "c")])
    with pytest.raises(KttError, match="'zzz' is not a leaf class"):
        hierarchy.leaf_path_indices(["zzz"])
    with pytest.raises(KttError, match="'a' is not a leaf class"):  # an upper-level class
        hierarchy.leaf_path_indices(["b", "a"])
