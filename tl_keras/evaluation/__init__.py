"""Evaluation every modality shares: metrics, calibration, predictions, the held-out report and its plots.
"""
