/*
 * fuzz_conf.c - the config parser (NCONF + mica's key checks) on
 * arbitrary file contents.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static char path[64];
	static struct mica_conf c;
	char err[1024];
	FILE *f;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/mica-fuzz-conf.%ld.conf",
		    (long)getpid());
	if ((f = fopen(path, "wb")) == NULL)
		return 0;
	fwrite(data, 1, len, f);
	fclose(f);
	chmod(path, 0600);
	if (conf_load(&c, path, err, sizeof(err))) {
		/* a config that loads must be self-consistent */
		if (c.http.threads < 1 || c.proto.max_frame < 1024)
			abort();
	} else if (err[0] == '\0')
		abort();	/* every failure says why */
	unlink(path);
	return 0;
}
