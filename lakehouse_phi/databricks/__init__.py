"""Onto Databricks: apply the compiled governance statements on a SQL warehouse through the Statement Execution API
(:mod:`.apply`), and the ``lakehouse-phi apply`` command (:mod:`.cli`). Needs the ``[databricks]`` extra
(``databricks-sdk``); nothing here imports PySpark."""
