"""The built-in rules, one class per rule, grouped by code family. Importing this package registers them."""

from . import data, evaluation, hyper, model, pipeline, planned, precision, structure, templates, unused  # noqa: F401
