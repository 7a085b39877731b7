/*  fuzz_obj.c - fuzz target for mp_obj_unpack, the decoder of every byte
    that crosses a process boundary. Whatever decodes must re-encode and
    decode to an equal value. Without libFuzzer (MP_FUZZ_REPLAY) main()
    replays every file of the corpus directories given on the command line,
    plus a few thousand pseudo-random mutations of each. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mp_obj_t *o = NULL;
    int rc = mp_obj_unpack(data, size, &o);
    if (rc == 0) {
        char *packed = NULL;
        size_t packed_size = 0;
        mp_obj_t *again = NULL;
        if (mp_obj_pack(o, &packed, &packed_size) || mp_obj_unpack(packed, packed_size, &again) ||
            !mp_obj_equal(o, again))
            abort();
        free(packed);
        mp_obj_destroy(&again);
    } else if (rc != MP_EBADMSG && rc != MP_ENOMEM) {
        abort();
    }
    mp_obj_destroy(&o);
    return 0;
}

#include "replay.h"
