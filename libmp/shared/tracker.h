/*  tracker.h - the SharedMemory tracker (tracker.c): tracked blocks are
    removed once their creator (and the children it forked) are gone. Not
    installed.
*/
#ifndef MP_SHARED_TRACKER_H_INCLUDED
#define MP_SHARED_TRACKER_H_INCLUDED

/* Registers the block name (without the leading '/') with this process's
   tracker, started on first use. 0 or -errno. */
int mp__shm_track(const char *name);
/* The block was unlinked: the tracker forgets it. */
void mp__shm_untrack(const char *name);

#endif
