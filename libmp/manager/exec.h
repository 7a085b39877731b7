/*  exec.h - running an MPM/1 CALL on the serving manager (exec.c), for
    the server's transports (serve.c). Not installed.
*/
#ifndef MP_MANAGER_EXEC_H_INCLUDED
#define MP_MANAGER_EXEC_H_INCLUDED

#include "manager/mpm.h"
#include "mp/manager.h"

/* Runs one CALL body [id, op, address, args...] (a BATCH's sub-calls in
   order): its rc; *res (NULL: nil) and *extra the result and the integer
   the REPLY carries. */
int mpm_execute(mp_manager_t *m, const mp_obj_t *b, mp_obj_t **res, int64_t *extra);

#endif
