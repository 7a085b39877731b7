/*  cli_keygen.h - mp-client keygen (cli_keygen.c). */
#ifndef MP_CLI_KEYGEN_H_INCLUDED
#define MP_CLI_KEYGEN_H_INCLUDED

/* argv[0] is "keygen", argv[1] the NAME. The exit status. */
int cli_keygen(int argc, char **argv);

#endif
