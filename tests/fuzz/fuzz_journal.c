/*
 * fuzz_journal.c - the change journal's record parser (store/journal.c)
 * on arbitrary bytes read as a segment: records one after the other
 * until the input ends or one does not parse; every op of a parsed
 * record is walked.  No crash, every refusal says why, and a parsed
 * record re-encodes to the same bytes (the encoder and the decoder
 * agree).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "store/journal.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct journal_rec r;
	struct journal_op op;
	enum journal_prc prc;
	struct rd rd;
	struct wb b;
	uint8_t h[JOURNAL_HASH_LEN];
	size_t off = 0, used;
	uint32_t i;
	char why[256];

	while (off < len) {
		why[0] = '\0';
		prc = journal_rec_parse(&r, &used, data + off, len - off, why,
		    sizeof(why));
		if (prc != JOURNAL_REC_OK) {
			if (why[0] == '\0')
				abort();	/* every refusal says why */
			break;
		}
		if (used == 0 || used > len - off)
			abort();
		rd_init(&rd, r.ops, r.ops_len);
		for (i = 0; i < r.num_ops; i++)
			if (!journal_op_next(&rd, &op))
				abort();	/* parse checked them */
		wb_init(&b);
		if (!journal_rec_encode(&b, r.seq, r.epoch, r.time_us, r.prev,
		    r.num_ops, r.ops, r.ops_len, h) || b.len != used ||
		    memcmp(b.data, data + off, used) != 0 ||
		    memcmp(h, r.hash, sizeof(h)) != 0)
			abort();
		wb_cleanup(&b);
		off += used;
	}
	return 0;
}
