/*  mp.h - libmp: Python's multiprocessing for C, with a distributed Pool.

    Include this one header. Every module's header says what it is and its
    thread-, fork- and signal-safety. Conventions (all modules): fallible
    calls return 0 or a negative MP_E* code (mp_strerror); objects come from
    mp_<thing>_new and go with mp_<thing>_destroy(&p); timeouts are in
    milliseconds, < 0 forever, 0 no wait.
*/
#ifndef MP_H_INCLUDED
#define MP_H_INCLUDED

#include "mp/version.h"
#include "mp/error.h"
#include "mp/log.h"
#include "mp/obj.h"
#include "mp/process.h"
#include "mp/lock.h"
#include "mp/semaphore.h"
#include "mp/condition.h"
#include "mp/event.h"
#include "mp/barrier.h"
#include "mp/value.h"
#include "mp/shm.h"
#include "mp/shm_list.h"
#include "mp/shm_manager.h"
#include "mp/queue.h"
#include "mp/pipe.h"
#include "mp/wait.h"
#include "mp/items.h"
#include "mp/task.h"
#include "mp/broker.h"
#include "mp/worker.h"
#include "mp/pool.h"
#include "mp/manager.h"

#endif
