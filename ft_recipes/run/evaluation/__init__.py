"""``ftr eval``: lm-evaluation-harness and the run's held-out rows on the base model and the trained result.

lm-eval runs in its own environment, built from ``lock.txt`` beside this file as the backends' are
(``ft_recipes.backends.envs``: cached under the lock's hash, ``$FTR_LM_EVAL_PYTHON`` overrides). The parts:
``target`` (what to evaluate: an adapter through ``peft=``, a merged model, a full fine-tune), ``heldout`` (the
validation rows of the recipe), ``runner`` (the job, the helper process, eval.json), ``compare`` (the table and
the forgetting finding); ``helper`` runs inside the environment.
"""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.interface import EnvSpec

HERE = Path(__file__).resolve().parent
SPEC = EnvSpec(name="lm-eval", version="0.4.13", python="3.11", lock=HERE / "lock.txt", import_name="lm_eval",
               cli="lm_eval")
