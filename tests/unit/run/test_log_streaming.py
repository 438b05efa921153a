"""ftr status reads a run's log streamed: the last progress line of a large log, in bounded memory."""

from __future__ import annotations

import tracemalloc

from ft_recipes.run.launchers.jobs import last_progress


def test_the_last_progress_line_of_a_large_log_in_bounded_memory(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    noise = "x" * 200 + "\n"
    with (logs / "train.log").open("w") as log:
        for _ in range(100_000):  # about 20 MB
            log.write(noise)
        log.write("\r 40%|####      | 4/10 [00:01<00:01,  4.2it/s]\r 50%|#####     | 5/10 [00:01<00:01,  4.2it/s]\n")
        log.write("{'loss': 1.25, 'grad_norm': 0.5, 'learning_rate': 1e-05, 'epoch': 0.5}\n")
    tracemalloc.start()
    line = last_progress(tmp_path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert line is not None and "step 5/10" in line and "loss 1.25" in line
    assert peak < 5_000_000  # the whole file would be 20 MB
