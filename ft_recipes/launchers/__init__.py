"""Moved to ``ft_recipes.run.launchers``. Kept for job scripts written before the move, which run
``python -m ft_recipes.launchers.node``."""
