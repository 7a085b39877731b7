/*  cli_keygen.c - mp-client keygen NAME: a CURVE key pair in czmq's
    certificate format (docs/PROTOCOL.md 10).

    NAME.key holds the public key (hand it to the broker's allow-list
    directory, or to the workers and clients as the server key); NAME.key
    _secret holds both keys and is written readable by its owner only. An
    existing file is never overwritten: a key pair in use must not change
    under a running cluster by mistake.
*/
#include <czmq.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_keygen.h"

int cli_keygen(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-' || !argv[1][0]) {
        fprintf(stderr, "mp-client: usage: mp-client keygen NAME  (writes NAME.key and "
                        "NAME.key_secret)\n");
        return 2;
    }
    char pub[4096], sec[4200];
    snprintf(pub, sizeof pub, "%s.key", argv[1]);
    snprintf(sec, sizeof sec, "%s.key_secret", argv[1]);
    if (access(pub, F_OK) == 0 || access(sec, F_OK) == 0) {
        fprintf(stderr, "mp-client: %s or %s exists already: not overwritten\n", pub, sec);
        return 1;
    }
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "mp-client: cannot make a key pair\n");
        return 1;
    }
    zcert_set_meta(cert, "name", "%s", argv[1]);
    mode_t old = umask(077); /* the secret file: its owner's only */
    int rc = zcert_save_secret(cert, sec);
    umask(old);
    rc = rc ? rc : zcert_save_public(cert, pub);
    if (rc) {
        fprintf(stderr, "mp-client: cannot write %s / %s\n", pub, sec);
        zcert_destroy(&cert);
        return 1;
    }
    printf("%s\n", zcert_public_txt(cert));
    fprintf(stderr,
            "mp-client: wrote %s (public: give it to the broker's allow-list, workers/ or "
            "clients/, or as --curve-server-key) and %s (secret: --curve-key)\n",
            pub, sec);
    zcert_destroy(&cert);
    return 0;
}
