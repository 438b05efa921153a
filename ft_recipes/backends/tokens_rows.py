"""What every backend's ``tokens_helper.py`` shares: its command line and its output lines. Runs INSIDE a backend
environment (the helpers put this folder on sys.path), so it imports nothing but the standard library.

    python tokens_helper.py CONFIG.yaml [CONFIG.yaml ...] N

One process tokenizes every config (``ftr tokens --templates`` passes one per template): the backend's start-up is
paid once. Per config ("job", its position) one line per row:
FTR-TOKENS {"job": 0, "input_ids": [...], "labels": [...], "tokens": [...], "part": "", "eos": "</s>", "eos_id": 2}
("eos", "eos_id": the tokenizer's EOS token as the backend set it up), or one line
FTR-TOKENS {"job": 0, "error": "..."} when the backend failed on it (the traceback goes to stderr).
"""

from __future__ import annotations

import json
import sys
import traceback

PREFIX = "FTR-TOKENS "


def run_each(tokenize) -> None:
    """Call ``tokenize(path, n, emit)`` for each config of the command line; ``emit(tokenizer, ids, labels, part)``
    prints one row of that config."""
    *paths, n = sys.argv[1:]
    for job, path in enumerate(paths):
        def emit(tokenizer, ids, labels, part: str = "", job=job) -> None:
            ids = list(ids)
            print(PREFIX + json.dumps({"job": job, "input_ids": ids, "labels": list(labels),
                                       "tokens": tokenizer.convert_ids_to_tokens(ids), "part": part,
                                       "eos": getattr(tokenizer, "eos_token", None) or "",
                                       "eos_id": getattr(tokenizer, "eos_token_id", None)}), flush=True)

        try:
            tokenize(path, int(n), emit)
        except Exception as exc:  # the backend refused this config: say so for it alone and go on to the next
            traceback.print_exc()
            reason = (str(exc).strip().splitlines() or [""])[-1][:300]
            print(PREFIX + json.dumps({"job": job, "error": f"{type(exc).__name__}: {reason}"}), flush=True)
