"""tests/bench_flags.py's variant syntax."""

from __future__ import annotations

import pytest

from tests.bench_flags import parse_variant


def test_a_bare_label_is_the_defaults() -> None:
    assert parse_variant("base") == ("base", [])


def test_edits_set_and_remove_flags_and_keep_commas_and_equals_in_values() -> None:
    label, edits = parse_variant(
        "x=kube-apiserver:runtime-config=a/v1=false,b/v1=false;kube-scheduler:-leader-elect")
    assert label == "x"
    assert edits == [("kube-apiserver", "runtime-config", "a/v1=false,b/v1=false"),
                     ("kube-scheduler", "leader-elect", None)]


@pytest.mark.parametrize("text", ["x=nosuchdaemon:a=1", "x=kube-apiserver", "x=kube-apiserver:"])
def test_an_edit_without_a_shipped_daemon_or_flag_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_variant(text)
