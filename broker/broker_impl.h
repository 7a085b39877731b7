/*  broker_impl.h - private to the broker. */
#ifndef MP_BROKER_IMPL_H_INCLUDED
#define MP_BROKER_IMPL_H_INCLUDED

#include "mp.h"

#define MP_BROKER_VERSION MP_VERSION_STRING

#endif
