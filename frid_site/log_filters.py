"""Logging filters: no biometric data in logs (issue 9).

Celery's worker logs every task's return value when it succeeds ("Task ... succeeded in 0.03s:
{...}", up to 1,024 characters) and hands it to handlers again as the record's ``data``. A live
check's result is every frame's embedding: Celery 5.7 happens to print lists that deep as "[...]",
but a flatter result would be printed value by value, so for the tasks named in the logging
settings the value is replaced by a placeholder before any handler sees it. (Their arguments, the
frames, are kept out of Celery's logs and events by ``argsrepr`` where they are sent: identity.tasks.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

HIDDEN = "(not logged: it holds biometric data)"


class HideTaskResults(logging.Filter):
    def __init__(self, tasks: Iterable[str] = ()):
        super().__init__()
        self.tasks = frozenset(tasks)

    def filter(self, record: logging.LogRecord) -> bool:
        context = record.args
        if isinstance(context, dict) and context.get("name") in self.tasks and "return_value" in context:
            hidden = {**context, "return_value": HIDDEN}
            record.args = hidden
            if isinstance(getattr(record, "data", None), dict):
                record.data = hidden
        return True

