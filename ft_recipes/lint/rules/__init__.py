"""The built-in rules, one class per rule, grouped by code family. Importing this package registers them."""

from ft_recipes.lint.rules import (  # noqa: F401
    data,
    evaluation,
    hyper,
    model,
    pipeline,
    planned,
    precision,
    structure,
    templates,
    unused,
)
