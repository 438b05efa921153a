"""``python -m ft_recipes`` = ``ftr``."""

from .cli import main

main()
