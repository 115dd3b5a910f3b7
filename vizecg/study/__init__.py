"""Glue between ``params.yaml``, the ``vizecg`` building blocks and the study notebooks.

Anything a notebook needs twice, or a test needs once, lives here rather than in a cell.
"""
