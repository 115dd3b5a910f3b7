"""Glue between ``params.yaml``, the ``vizecg`` building blocks and the study notebooks.

Every function here takes the resolved parameters (:func:`vizecg.study.config.load_params`) and
turns them into the plain arguments of the building blocks: datasets and renderers for a run
(``runs``), the prepared data (``data_prep``), the tables (``tables``), LUDB and the real prints
(``external``), the shipped model's card (``shipped_card``), figures (``plots``, ``attention_plots``,
``rendering``) and the notebook runner. Nothing outside this package reads ``params.yaml`` or
imports it (``tests/test_structure.py``). Anything a notebook needs twice, or a test needs once,
lives here rather than in a cell.
"""
