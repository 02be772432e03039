"""The CSV log of a run is only ever appended to, across sessions and kills."""

from __future__ import annotations

import csv

from dgm.train.logs import AppendingWriter


def rows(path) -> list[dict]:
    return list(csv.DictReader(open(path)))


def test_a_new_session_appends_and_a_new_column_keeps_every_earlier_row(tmp_path):
    first = AppendingWriter(str(tmp_path))
    first.log_metrics({"train/loss": 3.0}, step=0)
    first.log_metrics({"train/loss": 2.0}, step=10)
    first.save()
    second = AppendingWriter(str(tmp_path))  # a resumed session: the file is kept
    second.log_metrics({"train/loss": 1.5, "val/loss": 1.9}, step=20)
    second.save()
    got = rows(tmp_path / "metrics.csv")
    assert [r["step"] for r in got] == ["0", "10", "20"]
    assert got[0] == {"step": "0", "train/loss": "3.0", "val/loss": ""}
    assert got[2]["val/loss"] == "1.9"


def test_a_row_cut_short_by_a_kill_is_dropped_not_glued_to_the_next(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,train/loss\n0,3.0\n10,2.")  # killed while writing the last row
    writer = AppendingWriter(str(tmp_path))
    writer.log_metrics({"train/loss": 1.0}, step=20)
    writer.save()
    assert rows(path) == [{"step": "0", "train/loss": "3.0"}, {"step": "20", "train/loss": "1.0"}]
