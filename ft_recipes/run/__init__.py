"""Execution: runs, run folders and manifests, merges, pipelines, launchers, evaluation."""
