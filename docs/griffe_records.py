"""griffe extension for the API reference: a class declared with ``abi.records.record`` is labelled
a dataclass, as griffe labels a class declared with ``dataclasses.dataclass`` (``record`` makes the
same class without compiling code; to callers it is a dataclass)."""

from __future__ import annotations

from typing import Any

import griffe

RECORD = "abi.records.record"


class RecordsExtension(griffe.Extension):
    """Adds the ``dataclass`` label to every class decorated with :data:`RECORD`, called or not."""

    def on_class_instance(self, *, node: Any, cls: griffe.Class, agent: Any, **kwargs: Any) -> None:
        for decorator in cls.decorators:
            value = decorator.value
            path = getattr(getattr(value, "function", value), "canonical_path", None)  # @record(...) or @record
            if path == RECORD:
                cls.labels.add("dataclass")
