/*
 * journal.h - the change journal: every committed write transaction of
 * the store, appended as one self-contained record to segment files in
 * [store] journal_dir, written and fsync'd BEFORE the LMDB commit (a
 * write-ahead log).  store.c drives it; the record codec and the scanner
 * are exported for mica-admin restore, the unit tests and the fuzz
 * target (tests/fuzz/fuzz_journal.c).
 *
 * A record (all integers big-endian):
 *
 *	u32 magic "MJRN"   u32 body_len
 *	body:  u8 version (1)  u64 seq  u64 epoch  u64 time (unix µs)
 *	       prev[32]  u32 num_ops  ops
 *	       op: u8 type (1 put, 2 del)  u8 db  u16 key_len  key
 *	           put only: u32 val_len  val
 *	hash[32] = BLAKE2b-256(body)
 *
 * prev is the hash of record seq-1 (all zero before the first record
 * ever), so a gap, a reorder or an altered byte breaks the chain.  The
 * ops are the key/value bytes the transaction put into or deleted from
 * the named databases (db numbers: see JOURNAL_DB_*), so a record can be
 * applied to a copy of the store without the program that made it: what
 * a standby or a restore needs.  A segment is named after the seq of its
 * first record: %016llx.mjnl.
 */
#ifndef MICA_JOURNAL_H
#define MICA_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

#define JOURNAL_MAGIC		0x4d4a524eU	/* "MJRN" */
#define JOURNAL_REC_VERSION	1
#define JOURNAL_HASH_LEN	32
#define JOURNAL_HDR_LEN		8		/* magic + body_len */
#define JOURNAL_BODY_MIN	(1 + 8 + 8 + 8 + JOURNAL_HASH_LEN + 4)
#define JOURNAL_REC_MAX		(64U * 1024 * 1024)	/* body bytes */
#define JOURNAL_KEY_MAX		511		/* LMDB's key limit */
#define JOURNAL_SEG_SUFFIX	".mjnl"
#define JOURNAL_SEG_DEFAULT	(16ULL * 1024 * 1024)

/* The db numbers in records (stable; the store's own order). */
enum {
	JOURNAL_DB_CERTS = 0, JOURNAL_DB_REVS, JOURNAL_DB_ACCOUNTS,
	JOURNAL_DB_REQUESTS, JOURNAL_DB_AUDIT, JOURNAL_DB_META,
	JOURNAL_DB_OPEN_REQS, JOURNAL_DB_BAD_KEYS, JOURNAL_DB_COUNT
};

enum journal_op_type { JOURNAL_OP_PUT = 1, JOURNAL_OP_DEL = 2 };

struct journal_op {
	uint8_t		 type;
	uint8_t		 db;
	const uint8_t	*key;
	size_t		 key_len;
	const uint8_t	*val;		/* put only */
	size_t		 val_len;
};

/* A decoded record; ops points into the parsed buffer. */
struct journal_rec {
	uint64_t	 seq;
	uint64_t	 epoch;
	uint64_t	 time_us;
	uint8_t		 prev[JOURNAL_HASH_LEN];
	uint8_t		 hash[JOURNAL_HASH_LEN];
	uint32_t	 num_ops;
	const uint8_t	*ops;
	size_t		 ops_len;
};

enum journal_prc {
	JOURNAL_REC_OK = 0,
	JOURNAL_REC_SHORT,	/* the buffer ends inside the record */
	JOURNAL_REC_BAD,	/* malformed or hash mismatch (why says) */
};

/* Appends one op to ops (the transaction's list).  1, or 0 on a bad size. */
int	journal_op_put(struct wb *ops, uint8_t type, uint8_t db,
	    const void *key, size_t key_len, const void *val, size_t val_len);
/*
 * Appends a framed record to out and sets out_hash to its hash.  Returns
 * 1, or 0 when the record would exceed JOURNAL_REC_MAX.
 */
int	journal_rec_encode(struct wb *out, uint64_t seq, uint64_t epoch,
	    uint64_t time_us, const uint8_t prev[JOURNAL_HASH_LEN],
	    uint32_t num_ops, const uint8_t *ops, size_t ops_len,
	    uint8_t out_hash[JOURNAL_HASH_LEN]);
/*
 * Parses the framed record at the start of buf: JOURNAL_REC_OK with *out
 * and *out_len (bytes used); JOURNAL_REC_SHORT when buf ends inside it;
 * JOURNAL_REC_BAD with why (bad magic, version, lengths, an op that does
 * not decode, trailing bytes, a hash that does not match the body).
 */
enum journal_prc journal_rec_parse(struct journal_rec *out, size_t *out_len,
	    const uint8_t *buf, size_t len, char *why, size_t why_len);
/* Reads the next op of a parsed record's ops (a reader over rec->ops). */
int	journal_op_next(struct rd *r, struct journal_op *out);

/* ---- segments ---- */

/* Where a scan ended. */
struct journal_end {
	uint64_t	first_seq;	/* first record seen, 0 if none */
	uint64_t	last_seq;	/* 0: no record */
	uint8_t		last_hash[JOURNAL_HASH_LEN];
	uint64_t	last_epoch;
	uint64_t	last_time_us;
	char		last_seg[1024];	/* path of the last segment, "" */
	uint64_t	last_seg_first;	/* its first seq (from its name) */
	uint64_t	valid_len;	/* bytes of whole records in it */
	int		torn;		/* 1: a torn last record was ignored */
	uint64_t	num_segments;
	uint64_t	total_bytes;
};

/*
 * Called for each record with seq >= from; seg is its segment file and
 * off the record's offset there.  Return 1 to go on, 0 to stop (the scan
 * then returns 1 with *end at that record).
 */
typedef int (*journal_rec_cb)(const struct journal_rec *, const char *seg,
	    uint64_t off, void *arg);

struct journal_scan_opts {
	uint64_t	 from;		/* deliver records with seq >= from */
	const uint8_t	*from_prev;	/* if not NULL: record from's prev */
	uint64_t	 until;		/* 0: to the end; else stop after it */
	int		 torn_ok;	/* 1: a torn last record of the last
					 * segment ends the journal (start
					 * up); 0: it is an error (restore) */
	int		 summary;	/* 1: only verify the last segment
					 * when from is 0 (start up, status) */
};

/*
 * Reads the segments of dir in order, checks every record (framing,
 * hash, seq = previous + 1, prev = previous hash, segment names = the
 * seq of their first record) from the segment holding o->from on, and
 * calls cb (may be NULL).  Returns 1 with *end, or 0 with err naming the
 * segment file, the record's seq and offset and what is wrong.  A
 * missing or empty dir is an empty journal.
 */
int	journal_scan(const char *dir, const struct journal_scan_opts *o,
	    journal_rec_cb cb, void *arg, struct journal_end *end, char *err,
	    size_t err_len);

/* The appender (one per store; the store's write lock serialises it). */
struct journal;

/*
 * Opens dir (created mode 0700) for appending after the end found by
 * journal_scan (a torn tail is cut off).  seg_max: rotate when a segment
 * would grow past it.  NULL with err on failure.
 */
struct journal	*journal_open(const char *dir, uint64_t seg_max,
		    const struct journal_end *end, char *err, size_t err_len);
void		 journal_close(struct journal *);
/*
 * Writes buf (whole records, the first with seq first_seq) and fsyncs.
 * Returns 1, or 0 (logged) with nothing left of buf in the file.
 */
int		 journal_append(struct journal *, uint64_t first_seq,
		    const uint8_t *buf, size_t len);
/*
 * Takes back the last append of len bytes (the store did not commit it).
 * A failure to do so is fatal: the next record would repeat a seq.
 */
void		 journal_undo(struct journal *, size_t len);
/* Segment count and total bytes (for status). */
void		 journal_size(struct journal *, uint64_t *out_segments,
		    uint64_t *out_bytes);
const char	*journal_dir(const struct journal *);

/*
 * Removes the segments whose records all have seq <= upto (a backup
 * holds them), never the last segment.  *out_removed = files removed.
 * 1, or 0 with err.
 */
int	journal_prune(const char *dir, uint64_t upto, uint64_t *out_removed,
	    char *err, size_t err_len);

#endif
