"""Runs every experiment config's `:tiny` run from a checkout and keeps each metrics.json (before/after diff, #16).

  python run_tiny.py CHECKOUT OUTDIR
"""
import os, pathlib, shutil, subprocess, sys, time

repo, out = pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2]).resolve()
only = sys.argv[3:]
out.mkdir(parents=True, exist_ok=True)
shared = str(pathlib.Path(__file__).resolve().parents[4] / "shared" / "data")  # ../shared/data
env = dict(os.environ, XLA_FLAGS="--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false "
           "--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu", TOKENIZERS_PARALLELISM="false")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tests"))  # the Amazon fixture
amazon = out / "_amazon"
if not amazon.exists():
  from test_llm_task import _amazon_root
  _amazon_root(amazon)
RUNS = {
  "ml100k": "configs/ml100k.py:tiny", "ml1m": "configs/ml1m.py:tiny", "ml1m_collm_order": "configs/ml1m_collm_order.py:tiny",
  "bookcrossing": "configs/bookcrossing.py:tiny", "amazon_book": "configs/amazon_book.py:tiny",
  "tallrec_ml100k": "configs/tallrec_ml100k.py:tiny", "tallrec_ml1m": "configs/tallrec_ml1m.py:tiny",
  "tallrec_bookcrossing": "configs/tallrec_bookcrossing.py:tiny",
  "ml100k_multiscale": "configs/ml100k_multiscale.py:tiny", "ml1m_multiscale": "configs/ml1m_multiscale.py:tiny",
  "ml1m_multiscale_bpr": "configs/ml1m_multiscale.py:tiny,bpr",
}
for m in ("mf", "lightgcn", "sasrec", "din"):
  for d in ("ml1m", "bookcrossing", "ml100k", "synthetic"):
    RUNS[f"{m}_{d}"] = f"configs/baselines/{m}.py:{d},tiny"
  RUNS[f"{m}_ml1m_topk"] = f"configs/baselines/{m}.py:ml1m_topk,tiny,topk"
for name, cfg in RUNS.items():
  if only and name not in only:
    continue
  wd = out / name
  shutil.rmtree(wd, ignore_errors=True)
  root = str(amazon) if name == "amazon_book" else shared
  extra = ["--config.data.use_cache=False", "--config.cf_train.data.use_cache=False"] if name == "amazon_book" else []
  t = time.time()
  r = subprocess.run([sys.executable, "launch/train.py", f"--config={cfg}", f"--workdir={wd}", "--noprogress",
                      ] + ([] if name.endswith("_synthetic") else [f"--config.data.root={root}"]) + extra, cwd=repo, env=env, capture_output=True, text=True)
  status = "ok" if r.returncode == 0 else "FAIL " + (r.stderr.strip().splitlines() or ["?"])[-1]
  print(f"{name:28s} {time.time() - t:6.1f}s {status}", flush=True)
  if r.returncode == 0:
    shutil.copy(wd / "metrics.json", out / f"{name}.metrics.json")
