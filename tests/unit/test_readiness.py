"""Readiness shared by a server's workers (serving/readiness.py), on real mark files."""

from __future__ import annotations

import stat

from serving.readiness import ReadyMarks


def test_a_server_is_ready_only_once_every_worker_has_set_its_mark(tmp_path):
    first, second = ReadyMarks(tmp_path / "server", 1, 2), ReadyMarks(tmp_path / "server", 2, 2)
    assert not first.all_set()
    first.set()
    assert not first.all_set() and not second.all_set()  # the second worker is still loading
    second.set()
    assert first.all_set() and second.all_set()


def test_a_restarted_worker_takes_its_mark_away_until_it_has_loaded_again(tmp_path):
    first, second = ReadyMarks(tmp_path / "server", 1, 2), ReadyMarks(tmp_path / "server", 2, 2)
    first.set()
    second.set()
    restarted = ReadyMarks(tmp_path / "server", 2, 2)  # BentoML started worker 2 again
    assert not first.all_set()
    restarted.set()
    assert first.all_set()


def test_marks_of_another_server_or_worker_count_are_not_read(tmp_path):
    ReadyMarks(tmp_path / "earlier-server", 1, 1).set()
    assert not ReadyMarks(tmp_path / "this-server", 1, 1).all_set()


def test_the_marks_folder_is_the_owners_alone(tmp_path):
    marks = ReadyMarks(tmp_path / "server", 1, 1)
    marks.set()
    assert stat.S_IMODE((tmp_path / "server").stat().st_mode) == 0o700
    assert stat.S_IMODE(marks.mark.stat().st_mode) & 0o077 == 0
