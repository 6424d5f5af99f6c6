"""Graded synthetic passages for real queries: prompts, backends, store, filters, export, diagnose.

Public API::

    from synthrank.generate import GenerationSettings, Store, load_prompt, run_generation, export_generation
"""

from synthrank.generate.export import export_generation
from synthrank.generate.prompts import load_prompt
from synthrank.generate.runner import GenerationSettings, RunSummary, run_generation
from synthrank.generate.store import Generation, Store

__all__ = ["Generation", "GenerationSettings", "RunSummary", "Store", "export_generation", "load_prompt", "run_generation"]
