"""The exceptions of libmp's Python client.

Every failure of a call is a TaskError carrying the structured fields of
MPP/1's error entry (docs/PROTOCOL.md 3.1): code, kind, message, task, host,
pid, and index (the item's position in the call). A Python task's exception
travels as "ExcType: text"; when ExcType names a built-in exception class the
client raises a class deriving from both TaskError and that built-in, so
`except ValueError` works as it does with multiprocessing.Pool.
"""
import builtins
import re

from . import _proto as P


class LibmpError(Exception):
    """Base of every libmp exception."""


class TaskError(LibmpError):
    """A call's item failed. Fields: code, kind, message, task, host, pid, index."""

    kind_default = P.KIND_TASK

    def __init__(self, message, code=P.E_TASK, kind=None, task=None, host=None, pid=None, index=None,
                 text=None):
        Exception.__init__(self, message if text is None else text)
        self.message = message
        self.code = code
        self.kind = self.kind_default if kind is None else kind
        self.task = task
        self.host = host
        self.pid = pid
        self.index = index
        self._text = message if text is None else text

    def __str__(self):
        return self._text

    def __reduce__(self):
        return (_rebuild, (type(self).__name__, self.message, self.code, self.kind, self.task,
                           self.host, self.pid, self.index))

    def fields(self):
        return {"code": self.code, "kind": self.kind, "message": self.message, "task": self.task,
                "host": self.host, "pid": self.pid, "index": self.index}


class WorkerLostError(TaskError):
    """The process running the item died, retries exhausted (-4102)."""
    kind_default = P.KIND_WORKER_LOST


class UnknownTaskError(TaskError):
    """No worker serves the task name (-4101)."""
    kind_default = P.KIND_UNKNOWN_TASK


class BadArgsError(TaskError):
    """The task got arguments of the wrong type or number, or an item could
    not be encoded (-4105)."""
    kind_default = P.KIND_BAD_ARGS


class TimeLimitError(TaskError):
    """The item ran past its time limit and was killed (-4116)."""
    kind_default = P.KIND_TIME_LIMIT


class CancelledError(TaskError):
    """The call was withdrawn: the pool was terminated (-4109)."""
    kind_default = P.KIND_CANCELLED


class BrokerLostError(TaskError):
    """The broker went away (silent, or it said DISCONNECT) and no broker
    answered again within the pool's reconnect_timeout (-4104)."""
    kind_default = None


class RequestError(TaskError):
    """The broker refused the request: BAD_REQUEST (-4107), OVERLOADED
    (-4108), SHUTDOWN (-4110)."""
    kind_default = None


class TaskFailure(Exception):
    """Raise it in a task served by libmp.worker to fail the item with your
    own code (an int) and message, as a C task's mp_task_fail does; any other
    exception fails it with code -4103 (MP_ETASK) and "ExcType: text"."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = int(code)
        self.message = str(message)


class BrokerUnreachableError(LibmpError, ConnectionError):
    """Pool(): no broker answered at the address within connect_timeout."""


class AuthError(BrokerUnreachableError):
    """Pool(): the broker refused this client (CURVE key, or role)."""


_KIND_CLASS = {P.KIND_TASK: TaskError, P.KIND_WORKER_LOST: WorkerLostError,
               P.KIND_UNKNOWN_TASK: UnknownTaskError, P.KIND_BAD_ARGS: BadArgsError,
               P.KIND_TIME_LIMIT: TimeLimitError, P.KIND_CANCELLED: CancelledError}
_CODE_CLASS = {P.E_UNKNOWN_TASK: UnknownTaskError, P.E_WORKER_LOST: WorkerLostError,
               P.E_BAD_ARGS: BadArgsError, P.E_TIME_LIMIT: TimeLimitError,
               P.E_CANCELLED: CancelledError, P.E_BROKER_LOST: BrokerLostError,
               P.E_BAD_REQUEST: RequestError, P.E_OVERLOADED: RequestError,
               P.E_SHUTDOWN: RequestError}
_hybrids = {}
_PY_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:: (.*))?$", re.S)


def _hybrid(name):
    """TaskError + the built-in exception class `name`, or None."""
    if name in _hybrids:
        return _hybrids[name]
    base = getattr(builtins, name, None)
    cls = None
    if isinstance(base, type) and issubclass(base, Exception) and not issubclass(base, LibmpError):
        try:
            cls = type(name, (TaskError, base), {"__module__": "libmp.errors"})
        except TypeError:  # a built-in with its own instance layout (OSError...)
            cls = None
    _hybrids[name] = cls
    return cls


def make_error(code, kind, message, task=None, host=None, pid=None, index=None):
    """The exception for one error entry (or a FAILED chunk: kind None)."""
    if not isinstance(message, str):
        message = str(message)
    if kind is None:
        cls = _CODE_CLASS.get(code, TaskError)
        kind = P.CODE_KIND.get(code)
    else:
        cls = _KIND_CLASS.get(kind, TaskError)
    text = None
    if cls is TaskError:
        m = _PY_PREFIX.match(message)
        if m:
            h = _hybrid(m.group(1))
            if h is not None:
                cls, text = h, (m.group(2) or "")
    return cls(message, code=code, kind=kind, task=task, host=host, pid=pid, index=index, text=text)


def _rebuild(clsname, message, code, kind, task, host, pid, index):
    return make_error(code, kind, message, task, host, pid, index)
