"""Default data configs, one per dataset name (`get_data_config`), as ml_collections ConfigDicts.

Every config has: `name`; `root` (None: `$JAXREC_DATA`, else the per-user cache, see `jaxrec.paths.data_root`);
`source` ('auto' or a dataset-specific source); `max_history` (history ids kept per row); `prompt_history` (titles
in a prompt); `seed`; `max_train_rows` (training budget, -1 = all; the first rows of a seeded permutation
are kept) / `max_eval_rows` (the sample of the early-stopping split that validation during training reads, drawn
the same way; reported figures use whole splits); `use_cache`; `fetch` (files found neither under the root nor in the download cache are
downloaded from where they are published, `jaxrec.data.fetch`; False: fail saying what to put where); and the
prompt fields `template` (a string with <ItemTitleList>,
<TargetItemTitle>, <UserID>, <TargetItemID> slots, see `jaxrec.data.prompts`), `proj_token_num` (placeholder
tokens per ID slot), `pad_multiple` (batch length is rounded up to it) and `quote_titles`.
"""

from __future__ import annotations

import ml_collections

from jaxrec.data import prompts
from jaxrec.errors import JaxrecError

NAMES = ("ml1m_collm", "bookcrossing", "amazon_book", "ml100k", "ml1m_topk")


def _common(name: str, template: str, quote_titles: bool = True) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      name=name, root=ml_collections.config_dict.placeholder(str), source="auto", max_history=50,
      prompt_history=10, seed=0, max_train_rows=-1, max_eval_rows=-1, use_cache=True, template=template,
      proj_token_num=1, pad_multiple=16, quote_titles=quote_titles, fetch=True,
      empty_history_text=prompts.EMPTY_HISTORY_TEXT))


def get_data_config(name: str) -> ml_collections.ConfigDict:
  """Defaults for dataset `name` (one of NAMES)."""
  if name == "ml1m_collm":
    cfg = _common(name, prompts.TEMPLATES["collm_movie"])
    # CoLLM processing_ood.ipynb: month index since the first rating's month, label = rating >= 4.
    cfg.train_months = (14, 23)
    cfg.valid_months = (24, 28)
    cfg.test_months = (29, 33)
    cfg.label_min_rating = 4
    cfg.valid_small_frac = 0.5
    cfg.history_ties = "strict"  # raw preprocessing only: 'collm' also keeps positives of the same second
  elif name == "bookcrossing":
    cfg = _common(name, prompts.TEMPLATES["tallrec_book"], quote_titles=False)
    cfg.max_history = 10  # TALLRec: up to 10 history books
    cfg.train_shots = 64  # 16 / 64 / 256 or -1 = all of the pool outside valid
    cfg.valid_size = 500
    cfg.min_user_ratings = 4  # TALLRec keeps users with > 3 ratings
    cfg.label_min_rating = 6  # label = rating > 5
    cfg.skip_bad_book_rows = True  # BX-Books.csv has malformed lines that TALLRec's pandas call skipped
    cfg.empty_history_text = ""  # TALLRec leaves an empty "User Preference: " as it is
  elif name == "amazon_book":
    cfg = _common(name, prompts.TEMPLATES["collm_book"])
    cfg.year = 2017
    cfg.min_count = 21  # users and items with > 20 ratings in that year
    cfg.label_min_rating = 5
    cfg.valid_small_frac = 0.25
    cfg.history_ties = "strict"
  elif name == "ml100k":
    cfg = _common(name, prompts.TEMPLATES["collm_movie"])
    cfg.url = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    cfg.url_timeout_s = 3.0
    cfg.label_min_rating = 4
    cfg.split_fracs = (0.8, 0.1, 0.1)
    cfg.valid_small_frac = 0.5
    cfg.history_ties = "strict"
  elif name == "ml1m_topk":
    cfg = _common(name, prompts.TEMPLATES["tallrec_movie"])
    cfg.split_fracs = (0.8, 0.1, 0.1)
  else:
    raise JaxrecError(f"data config name {name!r} is unknown; expected one of {', '.join(NAMES)}")
  return cfg
