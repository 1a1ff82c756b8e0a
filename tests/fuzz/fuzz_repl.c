/*
 * fuzz_repl.c - the replication stream's parsers (ca/repl_proto.c) on
 * arbitrary bytes: a frame header, then the payload as each message
 * type and as a journal record, the way a standby and a primary read
 * them.  No crash, no read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/repl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct repl_follow f;
	struct repl_heartbeat h;
	struct repl_crl c;
	struct journal_rec rec;
	uint8_t type;
	uint32_t flen;
	uint64_t seq;
	size_t used;
	char why[256], name[REPL_NAME_MAX + 1], cn[128];
	uint8_t *copy;

	if (len >= REPL_FRAME_HDR) {
		why[0] = '\0';
		if (!repl_frame_hdr(data, &type, &flen, why, sizeof(why)) &&
		    why[0] == '\0')
			abort();
	}
	/* each payload parser gets its own exact-size copy (ASan sees an
	 * overread) */
	if ((copy = malloc(len ? len : 1)) == NULL)
		return 0;
	memcpy(copy, data, len);
	(void)repl_follow_parse(copy, len, &f);
	(void)repl_heartbeat_parse(copy, len, &h);
	if (repl_crl_parse(copy, len, &c) &&
	    (c.der < copy || c.der + c.der_len > copy + len))
		abort();
	(void)repl_record_seq(copy, len, &seq);
	(void)journal_rec_parse(&rec, &used, copy, len, why, sizeof(why));
	free(copy);
	if (len < sizeof(cn)) {
		memcpy(cn, data, len);
		cn[len] = '\0';
		if (repl_cn_name(cn, name, sizeof(name)) &&
		    strlen(name) > REPL_NAME_MAX)
			abort();
	}
	return 0;
}
