"""`python -m model`: a wrong option or file ends in one `error:` line and exit status 2, not a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model import pipeline, teacher
from model.cli import main


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"cell": "gru"', "not valid JSON"),
        ('["gru"]', "must be a JSON object"),
        ('{"cel": "gru"}', "unknown ModelConfig keys \\['cel'\\]"),
        ('{"vocab_size": 10}', "cannot be overridden"),
        ('{"embed_dim": 64}', "embed_dim must be 384"),
        ('{"cell": "rnn"}', "allowed values: lstm, gru"),
        ('{"attention": "multihead"}', "allowed values: additive, dot"),
        ('{"dropout": 1.5}', "dropout is 1.5"),
    ],
)
def test_cli_train_bad_model_config_fails_cleanly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, message: str
) -> None:
    def must_not_run(*args: object) -> None:
        raise AssertionError("the build started despite a bad --model-config")

    monkeypatch.setattr(pipeline, "load_examples", must_not_run)
    assert main(["train", "--out", str(tmp_path / "a"), "--model-config", config, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --model-config") and len(err.splitlines()) == 1
    assert re.search(message, err)


def test_cli_evaluate_unknown_split_lists_the_split_values(tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "split.csv"
    data.write_text("text,label,split\ngreat,positive,test\nawful,negative,train\n")
    assert main(["evaluate", "--artifact", str(tiny_artifact), "--data", str(data), "--split", "tset"]) == 2
    assert "no rows with split 'tset'; the file's split values are ['test', 'train']" in capsys.readouterr().err


def test_cli_evaluate_split_without_split_column_names_the_fix(
    tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "plain.csv"
    data.write_text("text,label\ngreat,positive\nawful,negative\n")
    assert main(["evaluate", "--artifact", str(tiny_artifact), "--data", str(data), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "missing column 'split'" in err and "python -m model split" in err and "--text-column" not in err


def test_cli_teacher_with_data_requires_out(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the teacher must not train, nor overwrite model/assets, without --out")

    monkeypatch.setattr(teacher, "fine_tune", must_not_run)
    monkeypatch.setattr(teacher, "save_soft_labels", must_not_run)
    data = tmp_path / "my.csv"
    data.write_text("text,label\ngreat,pos\nawful,neg\n")
    assert main(["teacher", "--data", str(data), "--no-progress"]) == 2
    assert "with --data, pass --out" in capsys.readouterr().err


def test_cli_train_too_few_groups_names_the_empty_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "few.csv"
    data.write_text("text,label\ngreat,pos\nawful,neg\nfine,pos\nbad,neg\n")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "a"), "--embeddings", "none", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "split is empty: 4 examples in 4 groups" in err and "use more data" in err
    assert not (tmp_path / "a").exists()
