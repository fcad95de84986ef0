"""Training: crop cache, pseudo-fake synthesis, datasets and `python -m core.train`. Never imported by the app."""
