/*  error.c - mp_strerror.

    libmp codes are 0, -errno, or a private code below -4000. Only the private
    ones need a table; the rest go to the C library, whose strerror() returns
    a static string for every errno value we produce.
*/
#include <string.h>

#include "mp/error.h"

const char *mp_strerror(int rc)
{
    switch (rc) {
    case MP_OK:
        return "success";
    case MP_EEOF:
        return "end of file: the other end is closed";
    case MP_EEMPTY:
        return "queue is empty";
    case MP_EFULL:
        return "queue is full";
    case MP_ECLOSED:
        return "object is closed";
    case MP_EBROKEN:
        return "barrier is broken";
    case MP_EVALUE:
        return "released or marked done too many times";
    case MP_ESTATE:
        return "not valid in the object's current state";
    case MP_ENOTSTARTED:
        return "process was never started";
    case MP_ETYPE:
        return "value has another type";
    case MP_EREPAIRED:
        return "a process died inside an operation on this manager; repaired: retry";
    case MP_ENOSPC:
        return "no space left in the manager's arena";
    case MP_ERANGE:
        return "index out of range";
    case MP_EUNKNOWNTASK:
        return "unknown task: no worker serves this name";
    case MP_EWORKERLOST:
        return "worker lost: the process running the task died";
    case MP_ETASK:
        return "task failed";
    case MP_EBROKERLOST:
        return "broker lost: it went away after answering";
    case MP_EHOSTUNKNOWN:
        return "the broker's host name does not resolve";
    case MP_EINSECURE:
        return "refused: a port other hosts can reach needs CURVE keys (or insecure)";
    case MP_ETIMELIMIT:
        return "a task ran past its time limit and was killed";
    case MP_ENOJOURNAL:
        return "the broker keeps no journal: durable jobs need mp-broker --journal DIR";
    case MP_EBROKERUNREACHABLE:
        return "broker not reached: nothing answered at its address";
    case MP_EBADARGS:
        return "bad task arguments";
    case MP_EBADREQUEST:
        return "malformed request";
    case MP_EOVERLOADED:
        return "broker overloaded: retry later, with fewer calls in flight";
    case MP_ECANCELLED:
        return "cancelled";
    case MP_ESHUTDOWN:
        return "broker shutting down";
    case MP_EMANAGERLOST:
        return "manager lost: no answer in time";
    case MP_EAUTH:
        return "refused: authentication failed (a key not admitted, or the wrong key)";
    case MP_EOWNERDEAD:
        return "acquired; the previous owner died holding it";
    default:
        break;
    }
    if (rc < 0 && rc > -4000)
        return strerror(-rc);
    return "unknown error";
}
