/*
 * rsign.c - what both ends of a remote signature check (see rsign.h).
 */
#include <stddef.h>

#include "common/log.h"
#include "common/rsign.h"

int
rsign_len_ok(const char *who, size_t sig_len, size_t sig_cap)
{
	if (sig_len > 0 && sig_len <= sig_cap)
		return 1;
	log_warnx("%s: a signature of %zu bytes (room for %zu)", who, sig_len,
	    sig_cap);
	return 0;
}
