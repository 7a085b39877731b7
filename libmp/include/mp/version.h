/*  version.h - libmp's version, for programs and the wire (HELLO/WELCOME).

    Thread-safety, Fork, Signals: constants only.
*/
#ifndef MP_VERSION_H_INCLUDED
#define MP_VERSION_H_INCLUDED

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0
#define MP_VERSION_STRING "0.1.0"

#endif
