"""Training logs after a crash: a run resumed from its last checkpoint replays the steps logged after it, and
those rows must not appear twice."""

import csv

from fastlic.training.logs import TRAIN_FIELDS, CsvLog, RunLog


def _steps(path):
    with open(path, newline="") as fh:
        return [int(r["step"]) for r in csv.DictReader(fh)]


def test_resume_drops_rows_logged_after_the_checkpoint(tmp_path):
    path = tmp_path / "train.csv"
    log = CsvLog(path, TRAIN_FIELDS)
    for step in (20, 40, 60, 80):
        log.write({"step": step, "loss": 1.0})
    log.close()  # crashed at step 80 with the last state saved at step 40
    log = CsvLog(path, TRAIN_FIELDS, resume_step=40)
    for step in (60, 80):
        log.write({"step": step, "loss": 2.0})
    log.close()
    assert _steps(path) == [20, 40, 60, 80]
    with open(path, newline="") as fh:
        assert [float(r["loss"]) for r in csv.DictReader(fh)]== [1.0, 1.0, 2.0, 2.0]  # the replayed rows
    assert not (tmp_path / "train.csv.tmp").exists()


def test_a_clean_resume_keeps_the_file_and_a_new_log_has_one_header(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    log.train.write({"step": 10, "loss": 1.0})
    log.val.write({"step": 10, "rate": 0, "loss": 1.0})
    log.close()
    before = (tmp_path / "train.csv").read_bytes()
    log = RunLog(tmp_path, tensorboard=False, resume_step=10)  # stopped by a signal: state saved at step 10
    log.close()
    assert (tmp_path / "train.csv").read_bytes() == before
    log = RunLog(tmp_path, tensorboard=False, resume_step=5)
    log.close()
    assert _steps(tmp_path / "train.csv") == [] and _steps(tmp_path / "val.csv") == []
    assert (tmp_path / "train.csv").read_text().splitlines() == [",".join(TRAIN_FIELDS)]
