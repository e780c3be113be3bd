"""Figures: functions ``record -> matplotlib Figure``, named after the paper's figures.

This package never trains and never samples data; it reads result arrays only.
"""
