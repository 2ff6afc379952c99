"""The analysis: pure functions from a results table to a typed analysis (no I/O of runs).

``core``: the tests (paired, corrected, Bayesian, Friedman/Nemenyi, Holm); ``analysis``: the
study's analysis assembled from them (:func:`analysis.analyse`).
"""
