"""``lakehouse-phi suggest``: a draft policy from the data. A source is profiled with Spark (:mod:`.profile`), each
column classified from the shares the ``scrub_text`` detectors match and from its header name (:mod:`.classify`),
and the draft written as YAML with the evidence per column (:mod:`.render`). Only shares and shapes leave the
profile: the draft never holds a value of the source."""

from lakehouse_phi.suggest.classify import ColumnProfile, Suggestion, classify

__all__ = ["ColumnProfile", "Suggestion", "classify"]
