/*
 * fuzz_admin.c - the admin socket frame decoders (request and reply) on
 * arbitrary bytes; what decodes must re-encode and decode the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct adm_msg m, m2;
	struct wb b;
	char err[256];
	int i;

	adm_msg_init(&m);
	if (adm_request_parse(&m, data, len, err, sizeof(err))) {
		wb_init(&b);
		if (!adm_request_encode(&b, &m))
			abort();
		adm_msg_init(&m2);
		if (!adm_request_parse(&m2, b.data + 4, b.len - 4, err,
		    sizeof(err)) || m2.argc != m.argc || m2.num_att != m.num_att)
			abort();
		for (i = 0; i < m.argc; i++)
			if (strcmp(m.argv[i], m2.argv[i]) != 0)
				abort();
		adm_msg_cleanup(&m2);
		wb_cleanup(&b);
	}
	adm_msg_cleanup(&m);
	adm_msg_init(&m);
	(void)adm_reply_parse(&m, data, len, err, sizeof(err));
	adm_msg_cleanup(&m);
	return 0;
}
