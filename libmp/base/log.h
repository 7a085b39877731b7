/*  log.h - the library's side of mp/log.h. Not installed. */
#ifndef MP_LOG_IMPL_H_INCLUDED
#define MP_LOG_IMPL_H_INCLUDED

#include "mp/log.h"

#define mp__log mp_log
#define mp__log_set_level mp_log_set_level
#define mp__log_get_level mp_log_get_level

#endif
