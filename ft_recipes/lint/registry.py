"""The rule registry: every registered rule, by code (``all_rules``). The rule base (``Rule``, ``rule``,
``Context``) is ``lint/rule.py``; the rule modules import that, and importing ``lint/rules`` registers them, so
the registry depends on the rules and never the other way round."""

from __future__ import annotations

from ft_recipes.lint.rule import DOCS_URL, RULES, SOURCES, STATUSES, Context, Num, Rule, UndeclaredMessage, rule  # noqa: F401


def all_rules() -> dict[str, type[Rule]]:
    """Every registered rule, by code, in code order."""
    from ft_recipes.lint import rules  # noqa: F401  (importing registers the rules)

    return dict(sorted(RULES.items()))
