"""The CF runs an LLM recommender builds on or is compared with: CoLLM's CF model (config.model.cf.workdir), a
text-only run's reference (config.eval.reference_cf), and the `cf_train` section that trains one into <workdir>/cf
when the config names none (`jaxrec.train.llm_task.load`)."""

from __future__ import annotations

from jaxrec.errors import JaxrecError
from jaxrec.train import cf_task, workdir as run_dir


def reference(config) -> tuple[str, str] | None:
  """(model name, workdir) of the CF run a final evaluation is paired with: the CF model a CoLLM run builds on
  (config.model.cf), or for a text-only run (TALLRec) config.eval.reference_cf, a finished CF run's workdir (`load`
  turns 'train' into <workdir>/cf); None when there is neither."""
  cf = config.model.cf
  if cf.name != "none":
    return (cf.name, str(cf.workdir)) if cf.get("workdir") else None
  ref = config.eval.get("reference_cf", "")
  if not ref or ref == "train":
    return None
  return run_dir.read_config(ref).model.name, str(ref)


def train_config(config, field: str):
  """config.cf_train, checked, its data root defaulting to the run's: the CF run `field` asks to be trained."""
  if "cf_train" not in config:
    raise JaxrecError(f"config.{field}: the config has no cf_train section to train one")
  cf_config = config.cf_train
  if cf_config.data.get("root") is None:
    cf_config.data.root = config.data.get("root")
  if cf_config.data.name != config.data.name:
    raise JaxrecError(f"config.cf_train.data.name: {cf_config.data.name!r} differs from config.data.name "
                      f"{config.data.name!r}")
  cf_task.validate(cf_config)
  return cf_config


def check(path, config, field: str, name: str | None = None) -> None:
  """A finished CF run on the run's dataset (of model `name`, when given) at `path`, or a one-line error naming
  config.`field`: a CoLLM run would otherwise fail deep in restoring the wrong model's params."""
  try:
    ref = run_dir.read_config(path)
  except JaxrecError as e:
    raise JaxrecError(f"config.{field}: {e}") from None
  family, model = ref.model.get("family", "cf"), ref.model.get("name")
  if family != "cf" or ref.data.name != config.data.name or (name and model != name):
    raise JaxrecError(f"config.{field}: {path} is a {family} run of {model!r} on {ref.data.name}; expected a CF "
                      f"run{f' of {name!r}' if name else ''} on {config.data.name}")
