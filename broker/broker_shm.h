/*  broker_shm.h - the broker as an embedded pool starts it. Not installed.

    Thread-safety: as mp_broker_new. Fork: as mp_broker_new (never fork
    with a broker running unless the child only execs). Signals: no.
*/
#ifndef MP_BROKER_SHM_H_INCLUDED
#define MP_BROKER_SHM_H_INCLUDED

#include "mp/broker.h"
#include "pool/poolshm.h"

/* mp_broker_new that accepts SUBMITs whose items are in shm (poolshm.h)
   and forwards results from workers that announced it. */
int mp__broker_new_shm(const mp_broker_options_t *o, mp__pshm_t *shm, mp_broker_t **b_p);

#endif
