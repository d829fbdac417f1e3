"""The one task protocol (`jaxrec.train.task`): every family supplies the same hooks and none carries a life cycle
of its own; the registry refuses unknown families in one line."""

import importlib

import pytest

from jaxrec.errors import JaxrecError
from jaxrec.train import task

HOOKS = ("validate", "load", "prepare", "build", "split_from_file", "write_results")


@pytest.mark.parametrize("name", sorted(task.FAMILIES))
def test_every_family_supplies_the_hooks_and_no_life_cycle(name):
  module = importlib.import_module(task.FAMILIES[name])
  assert task.family(name) is module
  missing = [h for h in HOOKS if not callable(getattr(module, h, None))]
  assert not missing, f"{name} lacks {missing}"
  own = [f for f in ("train", "evaluate", "report") if hasattr(module, f)]
  assert not own, f"{name} defines {own}: the life cycle is task.py's"


def test_unknown_family_is_one_line():
  with pytest.raises(JaxrecError, match=r"config.model.family: expected one of \['cf', 'llmrec', 'multiscale'\], "
                     r"got 'gnn'"):
    task.family("gnn")


def test_report_of_a_run_without_metrics_is_refused(tmp_path):
  (tmp_path / "config.json").write_text('{"model": {"family": "cf"}, "seed": 0}')
  with pytest.raises(JaxrecError, match=r"config.json: not the config.json of a launch/train.py run \(KeyError"):
    task.report(tmp_path)
  (tmp_path / "config.json").write_text('{"model": {"family": "cf"}, "seed": 0, "stages": []}')
  with pytest.raises(JaxrecError, match="metrics.json: expected the metrics.json of a finished run"):
    task.report(tmp_path)
