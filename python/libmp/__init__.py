"""libmp for Python: multiprocessing.Pool on a libmp cluster (MPP/1 over
ZeroMQ), and a worker serving Python functions to it (libmp.worker).
docs/PYTHON.md says what differs from multiprocessing.Pool and why."""
from multiprocessing import TimeoutError

from .errors import (AuthError, BadArgsError, BrokerLostError, BrokerUnreachableError,
                     CancelledError, LibmpError, RequestError, TaskError, TaskFailure, TimeLimitError,
                     UnknownTaskError, WorkerLostError)
from .pool import Pool
from .results import ApplyResult, AsyncResult, IMapIterator, IMapUnorderedIterator, MapResult

__version__ = "1.0.0"
__all__ = ["Pool", "AsyncResult", "ApplyResult", "MapResult", "IMapIterator",
           "IMapUnorderedIterator", "TimeoutError", "LibmpError", "TaskError", "TaskFailure", "WorkerLostError",
           "UnknownTaskError", "BadArgsError", "TimeLimitError", "CancelledError",
           "BrokerLostError", "RequestError", "BrokerUnreachableError", "AuthError"]
