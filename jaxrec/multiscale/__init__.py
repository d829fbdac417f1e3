"""Pure building blocks of the multi-scale LoRA recommender, one module per equation of the seed paper.

  pooling   eq. 2: layer groups, history windows, mean / attention pooling
  align     eq. 3-4: multi-scale LoRA as effective adapters (b + λ Σ_j m_jk b_j)
  fusion    eq. 5: h-head cross-scale attention fusion (or the mean)
  losses    eq. 6: sampled softmax / BPR and the cross-scale consistency term
  text      eq. 1's input: history and item text with per-token segment ids (numpy)
  config    the `config.model` schema

The model itself is `jaxrec.models.multiscale`; training is `jaxrec.train.multiscale_task`.
"""
