"""``python -m ft_recipes.launchers.node``, as job scripts written before the move call it: the node launcher,
now ``ft_recipes.run.launchers.node``."""

import runpy

if __name__ == "__main__":
    runpy.run_module("ft_recipes.run.launchers.node", run_name="__main__", alter_sys=True)
