"""python launch/train.py --config=configs/ml1m_multiscale_cf.py --workdir=workdirs/mscf_ml1m --config.data.root=../shared/data

The multi-scale recommender's collaborative tower on ML-1M top-K (`jaxrec.cf.mscf`): every movie's text (title,
genres) through SmolLM2-135M once, mean-pooled at the top of 3 layer groups (layers 10, 20, 30), centred and
RMS-normalised; per-scale low-rank maps (r = 16, B = 0 at init) fused by 8-head cross-scale attention, added to an item id embedding; a user
id embedding; trained over the whole training split with the softmax over all 3,706 items (MF's top-K recipe).
`--config.model.text.workdir=W` encodes the items with a finished configs/ml1m_multiscale.py run instead (its
trained adapters and scale layers). Args: 'tiny' (tests: a random 3-layer decoder, a few hundred rows), 'graph' (the same text path on LightGCN,
`jaxrec.cf.mscf.MultiScaleGCN`, with LightGCN's top-K recipe), 'mf_first'
(two stages: the id embeddings alone first, i.e. MF, since B = 0; then everything at a lower lr from MF's best), and
the CF baselines' dataset tokens (`jaxrec.train.cf_config`, 'ml1m_topk' by default).
Measured: benchmarks/results/multiscale/topk_ml1m.md.
"""

from jaxrec.train.cf_config import base_config, parse, tiny
from jaxrec.train.config import stage_config
from jaxrec.train.text_features import text_config


def get_config(arg=None):
  tokens = [t for t in (arg or "").replace(":", ",").split(",") if t]
  mf_first, graph = "mf_first" in tokens, "graph" in tokens
  arg = parse(",".join(["ml1m_topk", "topk", *(t for t in tokens if t not in ("mf_first", "graph"))]))
  if graph:  # the text path on LightGCN: item nodes start from id + text, smoothed over the graph
    config = base_config(
        arg,
        model=dict(name="mscf_gcn", embed_dim=128, num_layers=2, init_std=0.1, heads=8, text_rank=16,
                   text_cold=0.0,  # > 0: text weighted sqrt(n0 / (n0 + n_i)) by item i's training rows
                   loss="softmax", n_negatives=-1,
                   reg=5e-3,  # LightGCN's top-K recipe from here on (configs/baselines/lightgcn.py:topk)
                   text=text_config(keep_layers=-1, num_scales=3, max_tokens=24)),
        lr=1e-2,
        weight_decay=0.0,
        num_epochs=15,
        batch_size=8192)
  else:
    config = base_config(
        arg,
        model=dict(name="mscf", embed_dim=128, init_std=0.1,
                   heads=8,  # cross-scale attention heads over the K projected scales
                   text_rank=16,  # per-scale D → r → d maps, B = 0 at init (full-rank maps memorised the items)
                   text_cold=0.0,  # > 0 = n0: text weighted sqrt(n0 / (n0 + n_i)) by item i's training rows
                   loss="softmax", n_negatives=-1,  # softmax over all items, as MF's and LightGCN's top-K recipes
                   text=text_config(
                       keep_layers=-1,  # all 30 layers: one pass over the catalogue before training
                       num_scales=3,  # scales = tops of 3 layer groups (10, 20, 30)
                       max_tokens=24)),  # title + genres
        lr=2e-3,
        weight_decay=0.5,  # decoupled; MF's top-K value
        num_epochs=40,  # the cosine's length; early stopping (patience 5) ends it
        batch_size=4096)
  if mf_first:
    ids = config.stages[0]
    ids.name, ids.trainable = "ids", ["params/(user|item)_embed/.*"]  # text_b stays 0: exactly MF
    text = stage_config(
        name="text", trainable=["params/.*"], init_from="previous",
        optimizer=dict(lr=5e-4, weight_decay=0.5, warmup_steps=20, schedule="cosine"),  # a quarter of MF's lr
        num_epochs=10, early_stopping=dict(metric="ndcg@10", mode="max", patience=3))
    config.stages = [ids, text]
    if arg.tiny:
      tiny(config)  # the overlay again, now over the text stage too (idempotent on the rest)
  if arg.tiny:
    config.model.text.llm = "random"
    config.model.text.random_llm.num_layers = 3
    config.model.text.max_tokens = 12
  return config
