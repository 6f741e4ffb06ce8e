"""Evaluation: feature network, metrics (FID, KID, IS, Parzen, modes), the evaluator."""
