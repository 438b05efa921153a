"""``python -m ft_recipes`` = ``ftr``."""

from ft_recipes.cli.main import main

main()
