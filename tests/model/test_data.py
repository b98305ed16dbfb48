from __future__ import annotations

from pathlib import Path

import pytest

from model.data import DataError, check_labels, load_labelled_file


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


def test_load_csv_with_any_label_names(tmp_path: Path) -> None:
    p = _write(tmp_path, "d.csv", "review,stars\nlovely,good\nawful,bad\nfine,good\n")
    ex = load_labelled_file(p, text_col="review", label_col="stars")
    assert [e.label for e in ex] == ["good", "bad", "good"]


def test_load_jsonl(tmp_path: Path) -> None:
    p = _write(tmp_path, "d.jsonl", '{"text": "great", "label": "pos"}\n\n{"text": "bad", "label": "neg"}\n')
    assert len(load_labelled_file(p)) == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.csv", "", "empty"),
        ("d.csv", "text,label\n", "no data rows"),
        ("d.csv", "words,label\nhi,a\n", "missing column 'text'"),
        ("d.csv", "text,label\nhi,a\nho,a\n", "only one class"),
        ("d.csv", "text,label\nhi,a\n ,b\n", "row 2 has an empty"),
        ("d.csv", "text,label\nhi,\nho,b\n", "row 1 has no 'label'"),
        ("d.jsonl", '{"text": "x"\n', "invalid JSON"),
        ("d.jsonl", "[1, 2]\n", "JSON object"),
        ("d.txt", "x", "unsupported file type"),
        ("d.csv", b"text,label\n\xff\xfe,a\n", "not UTF-8"),
    ],
)
def test_load_bad_file_fails_with_a_message_naming_the_problem(tmp_path: Path, name: str, content: str | bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_labelled_file(_write(tmp_path, name, content))


def test_load_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_labelled_file(tmp_path / "nope.csv")


def test_check_labels_unknown_label_fails() -> None:
    from model.data import Example

    ex = [Example("a", "pos", "1"), Example("b", "meh", "2")]
    with pytest.raises(DataError, match="unknown labels"):
        check_labels(ex, "x", labels=["pos", "neg"])


def test_load_missing_group_column_names_the_group_option(tmp_path: Path) -> None:
    p = _write(tmp_path, "d.csv", "text,label\nhi,a\nho,b\n")
    with pytest.raises(DataError, match=r"missing column 'movie'.*--group-column") as err:
        load_labelled_file(p, group_col="movie")
    assert "--text-column" not in str(err.value)
