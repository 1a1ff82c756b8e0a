/*
 * hwm.h - the high-water mark: what micad has already published, kept in
 * a small file OUTSIDE the store (next to the keys, private/hwm), so a
 * restored older store is recognised and CRL numbers never go back
 * (RFC 5280 section 5.2.3: the CRL number increases monotonically).
 *
 * Not LMDB: one versioned text file of "key value" lines,
 *
 *	mica-hwm 1
 *	store_id 9f3c0a5e11d2b7c4
 *	crl_number 27
 *	rev_seq 113
 *	journal_seq 0
 *	end
 *
 * rewritten atomically (temp file O_EXCL|O_NOFOLLOW mode 0600, fsync,
 * rename, fsync of the directory).  The "end" line makes a truncated file
 * an error, never a smaller number.  Keys this version does not know are
 * kept and written back unchanged (a later change journal adds its own).
 * Thread-safe: one mutex around the values and the write.
 */
#ifndef MICA_HWM_H
#define MICA_HWM_H

#include <stddef.h>
#include <stdint.h>

#define HWM_VERSION	1
#define HWM_FILE_MAX	(64 * 1024)	/* a bigger file is refused */

struct hwm;

struct hwm_state {
	uint64_t	store_id;	/* random id of the store (meta) */
	uint64_t	crl_number;	/* highest CRL number ever taken */
	uint64_t	rev_seq;	/* highest revocation seq a CRL covered */
	uint64_t	journal_seq;	/* reserved for the change journal */
};

enum hwm_rc {
	HWM_OK = 0,
	HWM_MISSING,		/* no file yet (a new or upgraded CA) */
	HWM_CORRUPT,		/* unreadable content: refuse, never guess */
	HWM_IO,			/* open/read error, or not a regular file */
};

/*
 * Reads path.  HWM_OK: *out holds the file's values.  HWM_MISSING: *out
 * is an empty mark (all zero) bound to path, written by the first
 * hwm_set/hwm_raise.  Otherwise *out is NULL and err says what is wrong
 * (file, line, rule).  Free with hwm_free.
 */
enum hwm_rc	hwm_load(struct hwm **out, const char *path, char *err,
		    size_t err_len);
void		hwm_free(struct hwm *);
/* The file's path (as given to hwm_load). */
const char	*hwm_path(const struct hwm *);
/* Copies the current values. */
void		hwm_get(struct hwm *, struct hwm_state *out);
/* Writes exactly these values (durably).  1, or 0 (logged). */
int		hwm_set(struct hwm *, const struct hwm_state *);
/*
 * Raises crl_number and rev_seq to at least the given values and, if one
 * grew, writes the file durably before returning.  1, or 0 (logged; the
 * values in memory are unchanged then).
 */
int		hwm_raise(struct hwm *, uint64_t crl_number, uint64_t rev_seq);

/*
 * Parses a whole file's text into h (used by hwm_load; exported for the
 * tests and the fuzz target).  1, or 0 with a message in err.
 */
int		hwm_parse(struct hwm *h, const char *text, size_t len,
		    char *err, size_t err_len);
/* An empty mark not bound to a file (tests, fuzzing). */
struct hwm	*hwm_new(const char *path);

#endif
