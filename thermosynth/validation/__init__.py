"""Validation of pseudo-anomalies: closeness to normal data and transfer.

NOTE: nothing is implemented here yet; the closeness and transfer measures
are planned and no function of this package exists so far.
"""
