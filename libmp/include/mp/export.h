/*  mp/export.h - symbol visibility for the libmp shared library.
    The library is built with -fvisibility=hidden; MP_EXPORT marks the API. */
#ifndef MP_EXPORT_H_INCLUDED
#define MP_EXPORT_H_INCLUDED

#if defined(MP_BUILDING_LIBRARY) && defined(__GNUC__)
#define MP_EXPORT __attribute__((visibility("default")))
#else
#define MP_EXPORT
#endif

#endif
