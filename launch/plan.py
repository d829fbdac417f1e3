"""Plans a config on an accelerator mesh before anyone rents it: per-device memory, FLOPs and step time.

  python launch/plan.py --config=configs/ml1m.py:paper --llm_shape=llama2_7b --mesh=data:2,model:1 --peak_tflops=989
  python launch/plan.py --config=configs/tallrec_ml1m.py --mesh=data:1,model:2

--llm_shape: a name under configs/shapes/ (llama2_7b, vicuna_7b, qwen2_1_5b) or a config.json path; default the
config's own backbone (its GGUF / HF config, read without weights). The train step (of --stage, default the last)
and the score step are compiled for abstract parameters on a simulated CPU mesh of --mesh's shape
(`jaxrec.train.plan`); nothing is allocated. Step time = FLOPs per device / (--peak_tflops × --mfu).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout


def _mesh_shape(text: str) -> tuple[int, int] | None:
  try:
    parts = dict(p.split(":") for p in text.split(","))
    data, model = int(parts.pop("data", 1)), int(parts.pop("model", 1))
  except ValueError:
    return None
  return (data, model) if not parts and data >= 1 and model >= 1 else None


def _simulate_mesh(argv) -> None:
  """A simulated CPU mesh of --mesh's shape, requested before anything imports jax (the config file does)."""
  text = next((a.split("=", 1)[1] for a in argv if a.startswith("--mesh=")), "data:2,model:1")
  shape = _mesh_shape(text) or (1, 1)
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             f" --xla_force_host_platform_device_count={shape[0] * shape[1]}")
  os.environ.setdefault("JAX_PLATFORMS", "cpu")


def main(argv: list[str]) -> None:
  from absl import flags
  from ml_collections import config_flags

  from launch import _cli

  fv = flags.FlagValues()
  config_flag = config_flags.DEFINE_config_file("config", None, "config file, e.g. configs/ml1m.py:paper",
                                                flag_values=fv, sys_argv=argv)
  shape_flag = flags.DEFINE_string("llm_shape", None, "configs/shapes/<name>.json, or a config.json path",
                                   flag_values=fv)
  mesh_flag = flags.DEFINE_string("mesh", "data:2,model:1", "mesh shape as data:N,model:M", flag_values=fv)
  seq_flag = flags.DEFINE_integer("seq_len", 256, "prompt tokens per row (CoLLM's ML-1M prompts: ~190, at most 257)",
                                  flag_values=fv)
  stage_flag = flags.DEFINE_integer("stage", -1, "index of the stage whose train step is planned", flag_values=fv)
  peak_flag = flags.DEFINE_float("peak_tflops", 989.0, "peak dense TFLOP/s of one device (H100 SXM bf16: 989)",
                                 flag_values=fv)
  mfu_flag = flags.DEFINE_float("mfu", 0.4, "assumed share of the peak reached", flag_values=fv)
  rest = _cli.parse_flags(argv, fv)
  if len(rest) > 1:
    _cli.fail(f"unexpected arguments {rest[1:]}")
  shape = _mesh_shape(mesh_flag.value)
  if shape is None:
    _cli.fail(f"--mesh: expected data:N,model:M with N, M >= 1, got {mesh_flag.value!r}")
  config = _cli.config_value(config_flag)
  import jax

  from jaxrec import sharding
  from jaxrec.errors import JaxrecError
  from jaxrec.llm import shapes
  from jaxrec.train import plan as plan_lib

  data, model = shape
  if jax.device_count() < data * model:
    raise JaxrecError(f"--mesh: {data * model} devices needed, {jax.device_count()} simulated (XLA_FLAGS was set "
                      f"before this script ran)")
  llm_cfg, source = shapes.resolve(shape_flag.value, config.model.get("llm"), _cli.repo_root() / "configs" / "shapes")
  mesh = sharding.make_mesh(data, model, devices=jax.devices()[:data * model])
  p = plan_lib.plan(config, llm_cfg, mesh, seq_len=seq_flag.value, stage_index=stage_flag.value)
  gib, mib = 1024.0 ** 3, 1024.0 ** 2
  peak = peak_flag.value * 1e12 * mfu_flag.value
  keep = int(config.model.keep_layers)
  layers = llm_cfg.num_layers if keep <= 0 else min(keep, llm_cfg.num_layers)
  print(f"backbone {source}: {layers} of {llm_cfg.num_layers} layers, hidden {llm_cfg.hidden_size}, "
        f"dtype {config.model.dtype}, scan_layers={config.model.scan_layers}, remat={config.model.remat}; "
        f"mesh data={data} × model={model}")
  print(f"train batch {config.batch_size} × {seq_flag.value} (stage {config.stages[stage_flag.value].name}: trains "
        f"{', '.join(p.trainable)}), score batch {config.eval_batch_size} × {seq_flag.value}")
  print(f"per device   params {p.params_bytes / gib:.2f} GiB (adapters {p.adapter_bytes / mib:.1f} MiB), optimizer "
        f"state {p.optimizer_bytes / mib:.1f} MiB")
  for name, act, total, fl in (("train step", p.train_activation_bytes, p.train_total_bytes, p.train_flops),
                               ("score step", p.score_activation_bytes, p.score_total_bytes, p.score_flops)):
    print(f"{name:<12} activations {act / gib:.2f} GiB, total {total / gib:.2f} GiB, {fl / 1e12:.3f} TFLOP, "
          f"{fl / peak * 1e3:.1f} ms at {mfu_flag.value:.0%} of {peak_flag.value:g} TFLOP/s")
  if p.scan_temp_bytes is not None:
    print(f"(layers under scan: FLOPs and activations extrapolated from 1- and 2-layer programs; XLA:CPU's scanned "
          f"programs hold {p.scan_temp_bytes[0] / gib:.2f} / {p.scan_temp_bytes[1] / gib:.2f} GiB of temporaries, a "
          f"copy of the stacked weights in the loop state included)")
  print(f"(compiled by XLA:CPU in {p.compile_s:.1f} s; activations are its estimate, a GPU compiler's differ)")


if __name__ == "__main__":
  _simulate_mesh(sys.argv)
  from launch import _cli

  _cli.run(main)
