/*
 * fuzz_hwm.c - the high-water mark parser (common/hwm.c) on arbitrary
 * file contents: no crash, and every failure says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hwm.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct hwm *h;
	char err[512];

	if ((h = hwm_new("/nonexistent/hwm")) == NULL)
		return 0;
	err[0] = '\0';
	if (!hwm_parse(h, (const char *)data, len, err, sizeof(err)) &&
	    err[0] == '\0')
		abort();	/* every failure says why */
	hwm_free(h);
	return 0;
}
