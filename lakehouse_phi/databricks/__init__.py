"""Onto Databricks: apply the compiled governance statements on a SQL warehouse through the Statement Execution API
(:mod:`.apply`), which the ``lakehouse-phi apply`` command (:mod:`lakehouse_phi.commands.apply`) runs. Needs
the ``[databricks]`` extra (``databricks-sdk``); nothing here imports PySpark."""
