"""Sweeps: a population of configurations as one vmapped program (population), and
its ranked results (results, plots)."""
