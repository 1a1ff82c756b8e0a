/*
 * journal.c - the change journal's record codec, segment scanner and
 * appender (see journal.h).  No LMDB here: store.c captures the ops of a
 * write transaction and applies records; this file owns the bytes on
 * disk.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/bytes.h"
#include "common/log.h"
#include "store/journal.h"

#define SEG_NAME_LEN	(16 + sizeof(JOURNAL_SEG_SUFFIX) - 1)
#define SEG_FILE_MAX	(4ULL * 1024 * 1024 * 1024)	/* larger: not ours */

struct journal {
	char		 dir[PATH_MAX];
	uint64_t	 seg_max;
	int		 fd;		/* current segment, -1 before the first */
	uint64_t	 off;		/* its length (whole records) */
	pthread_mutex_t	 mu;		/* the sizes below, for status */
	uint64_t	 num_segments;
	uint64_t	 total_bytes;
};

static void
seterr(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* ---- codec ---- */

int
journal_op_put(struct wb *ops, uint8_t type, uint8_t db, const void *key,
    size_t key_len, const void *val, size_t val_len)
{
	if ((type != JOURNAL_OP_PUT && type != JOURNAL_OP_DEL) ||
	    db >= JOURNAL_DB_COUNT || key_len == 0 ||
	    key_len > JOURNAL_KEY_MAX || val_len > JOURNAL_REC_MAX)
		return 0;
	wb_u8(ops, type);
	wb_u8(ops, db);
	wb_u16(ops, (uint16_t)key_len);
	wb_put(ops, key, key_len);
	if (type == JOURNAL_OP_PUT) {
		wb_u32(ops, (uint32_t)val_len);
		wb_put(ops, val, val_len);
	}
	return 1;
}

int
journal_rec_encode(struct wb *out, uint64_t seq, uint64_t epoch,
    uint64_t time_us, const uint8_t prev[JOURNAL_HASH_LEN], uint32_t num_ops,
    const uint8_t *ops, size_t ops_len, uint8_t out_hash[JOURNAL_HASH_LEN])
{
	size_t body_len, start;

	if (ops_len > JOURNAL_REC_MAX - JOURNAL_BODY_MIN)
		return 0;
	body_len = JOURNAL_BODY_MIN + ops_len;
	wb_u32(out, JOURNAL_MAGIC);
	wb_u32(out, (uint32_t)body_len);
	start = out->len;
	wb_u8(out, JOURNAL_REC_VERSION);
	wb_u64(out, seq);
	wb_u64(out, epoch);
	wb_u64(out, time_us);
	wb_put(out, prev, JOURNAL_HASH_LEN);
	wb_u32(out, num_ops);
	wb_put(out, ops, ops_len);
	if (!wb_ok(out))
		return 0;
	crypto_generichash(out_hash, JOURNAL_HASH_LEN, out->data + start,
	    body_len, NULL, 0);
	wb_put(out, out_hash, JOURNAL_HASH_LEN);
	return wb_ok(out);
}

int
journal_op_next(struct rd *r, struct journal_op *out)
{
	uint16_t kl;
	uint32_t vl;

	memset(out, 0, sizeof(*out));
	if (!rd_u8(r, &out->type) || !rd_u8(r, &out->db) || !rd_u16(r, &kl))
		return 0;
	if ((out->type != JOURNAL_OP_PUT && out->type != JOURNAL_OP_DEL) ||
	    out->db >= JOURNAL_DB_COUNT || kl == 0 || kl > JOURNAL_KEY_MAX)
		return 0;
	out->key_len = kl;
	if (!rd_bytes(r, &out->key, kl))
		return 0;
	if (out->type == JOURNAL_OP_PUT) {
		if (!rd_u32(r, &vl) || vl > rd_left(r))
			return 0;
		out->val_len = vl;
		if (!rd_bytes(r, &out->val, vl))
			return 0;
	}
	return 1;
}

/* Checks that the ops area holds exactly num_ops well-formed ops. */
static int
ops_check(const uint8_t *ops, size_t len, uint32_t num_ops, char *why,
    size_t why_len)
{
	struct journal_op op;
	struct rd r;
	uint32_t i;

	rd_init(&r, ops, len);
	for (i = 0; i < num_ops; i++) {
		if (!journal_op_next(&r, &op)) {
			seterr(why, why_len, "op %" PRIu32 " of %" PRIu32
			    " does not decode", i + 1, num_ops);
			return 0;
		}
	}
	if (rd_left(&r) != 0) {
		seterr(why, why_len, "%zu bytes after the last op",
		    rd_left(&r));
		return 0;
	}
	return 1;
}

enum journal_prc
journal_rec_parse(struct journal_rec *out, size_t *out_len,
    const uint8_t *buf, size_t len, char *why, size_t why_len)
{
	struct rd r, body;
	uint8_t h[JOURNAL_HASH_LEN], ver;
	uint32_t magic, body_len;
	const uint8_t *bp, *hp;

	memset(out, 0, sizeof(*out));
	*out_len = 0;
	rd_init(&r, buf, len);
	if (!rd_u32(&r, &magic)) {
		seterr(why, why_len, "truncated: %zu of %d header bytes", len,
		    JOURNAL_HDR_LEN);
		return JOURNAL_REC_SHORT;
	}
	if (magic != JOURNAL_MAGIC) {
		seterr(why, why_len, "bad magic 0x%08" PRIx32, magic);
		return JOURNAL_REC_BAD;
	}
	if (!rd_u32(&r, &body_len)) {
		seterr(why, why_len, "truncated: %zu of %d header bytes", len,
		    JOURNAL_HDR_LEN);
		return JOURNAL_REC_SHORT;
	}
	if (body_len < JOURNAL_BODY_MIN || body_len > JOURNAL_REC_MAX) {
		seterr(why, why_len, "body length %" PRIu32 " out of range "
		    "[%d, %u]", body_len, JOURNAL_BODY_MIN, JOURNAL_REC_MAX);
		return JOURNAL_REC_BAD;
	}
	if (rd_left(&r) < (size_t)body_len + JOURNAL_HASH_LEN) {
		seterr(why, why_len, "truncated: %zu of %zu bytes", len,
		    (size_t)JOURNAL_HDR_LEN + body_len + JOURNAL_HASH_LEN);
		return JOURNAL_REC_SHORT;
	}
	if (!rd_bytes(&r, &bp, body_len) ||
	    !rd_bytes(&r, &hp, JOURNAL_HASH_LEN))
		return JOURNAL_REC_SHORT;	/* checked above */
	rd_init(&body, bp, body_len);
	if (!rd_u8(&body, &ver) || !rd_u64(&body, &out->seq) ||
	    !rd_u64(&body, &out->epoch) || !rd_u64(&body, &out->time_us) ||
	    !rd_copy(&body, out->prev, JOURNAL_HASH_LEN) ||
	    !rd_u32(&body, &out->num_ops)) {
		seterr(why, why_len, "short body");
		return JOURNAL_REC_BAD;
	}
	crypto_generichash(h, sizeof(h), bp, body_len, NULL, 0);
	if (sodium_memcmp(h, hp, sizeof(h)) != 0) {
		seterr(why, why_len, "hash does not match the content "
		    "(altered or damaged)");
		return JOURNAL_REC_BAD;
	}
	if (ver != JOURNAL_REC_VERSION) {
		seterr(why, why_len, "record version %u not supported",
		    (unsigned)ver);
		return JOURNAL_REC_BAD;
	}
	if (out->seq == 0) {
		seterr(why, why_len, "sequence number 0");
		return JOURNAL_REC_BAD;
	}
	out->ops = body.p;
	out->ops_len = rd_left(&body);
	if (!ops_check(out->ops, out->ops_len, out->num_ops, why, why_len))
		return JOURNAL_REC_BAD;
	memcpy(out->hash, hp, JOURNAL_HASH_LEN);
	*out_len = len - rd_left(&r);
	return JOURNAL_REC_OK;
}

/* ---- segment files ---- */

struct seglist {
	uint64_t	*first;
	size_t		 n;
};

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* 1 and the seq if name is a segment's name (16 lowercase hex + suffix). */
static int
seg_name_parse(const char *name, uint64_t *out)
{
	uint64_t v = 0;
	int i, d;

	if (strlen(name) != SEG_NAME_LEN ||
	    strcmp(name + 16, JOURNAL_SEG_SUFFIX) != 0)
		return 0;
	for (i = 0; i < 16; i++) {
		if ((d = hex_digit((unsigned char)name[i])) < 0 ||
		    (name[i] >= 'A' && name[i] <= 'F'))
			return 0;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return v != 0;
}

static void
seg_path(char *out, size_t len, const char *dir, uint64_t first)
{
	int n;

	n = snprintf(out, len, "%s/%016" PRIx64 "%s", dir, first,
	    JOURNAL_SEG_SUFFIX);
	if (n < 0 || (size_t)n >= len)
		fatalx("journal: %s: path too long", dir);
}

/* Lists dir's segments in seq order; a missing dir is an empty list. */
static int
seglist_read(struct seglist *l, const char *dir, char *err, size_t err_len)
{
	DIR *d;
	struct dirent *e;
	uint64_t v, *nf;
	size_t cap = 0;
	int rc = 0;

	memset(l, 0, sizeof(*l));
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 1;
		seterr(err, err_len, "journal %s: %s", dir, strerror(errno));
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		if (!seg_name_parse(e->d_name, &v))
			continue;
		if (l->n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nf = reallocarray(l->first, cap,
			    sizeof(*nf))) == NULL)
				fatal("journal: reallocarray");
			l->first = nf;
		}
		l->first[l->n++] = v;
	}
	closedir(d);
	if (l->n > 0)
		qsort(l->first, l->n, sizeof(*l->first), u64_cmp);
	rc = 1;
	return rc;
}

/* Reads a whole segment (malloc'd; NULL for an empty file). */
static int
seg_read(const char *path, uint8_t **out, size_t *out_len, char *err,
    size_t err_len)
{
	struct stat sb;
	uint8_t *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, rc = 0;

	*out = NULL;
	*out_len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		seterr(err, err_len, "journal %s: %s", path, strerror(errno));
		return 0;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (uint64_t)sb.st_size > SEG_FILE_MAX) {
		seterr(err, err_len, "journal %s: not a regular file of at "
		    "most %llu bytes", path, (unsigned long long)SEG_FILE_MAX);
		goto out;
	}
	if (sb.st_size > 0 && (buf = malloc((size_t)sb.st_size)) == NULL)
		fatal("journal: malloc");
	while (got < (size_t)sb.st_size) {
		n = read(fd, buf + got, (size_t)sb.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			seterr(err, err_len, "journal %s: read: %s", path,
			    n == 0 ? "file shrank" : strerror(errno));
			goto out;
		}
		got += (size_t)n;
	}
	*out = buf;
	*out_len = got;
	buf = NULL;
	rc = 1;
out:
	free(buf);
	close(fd);
	return rc;
}

struct scan_state {
	const struct journal_scan_opts	*o;
	journal_rec_cb			 cb;
	void				*arg;
	struct journal_end		*end;
	int				 have_prev;
	uint64_t			 prev_seq;
	uint8_t				 prev_hash[JOURNAL_HASH_LEN];
	int				 stop;
};

/* Checks one parsed record against the chain and delivers it. */
static int
scan_one(struct scan_state *s, const struct journal_rec *rec,
    const char *path, uint64_t seg_first, uint64_t off, char *err,
    size_t err_len)
{
	const struct journal_scan_opts *o = s->o;

	if (s->have_prev && rec->seq != s->prev_seq + 1) {
		seterr(err, err_len, "journal %s: record seq %" PRIu64 " at "
		    "offset %" PRIu64 ": expected seq %" PRIu64 " (records "
		    "reordered or missing)", path, rec->seq, off,
		    s->prev_seq + 1);
		return 0;
	}
	if (!s->have_prev && rec->seq != seg_first) {
		seterr(err, err_len, "journal %s: record seq %" PRIu64 " at "
		    "offset %" PRIu64 ": the segment's name says its first "
		    "record is seq %" PRIu64 " (records reordered or "
		    "missing)", path, rec->seq, off, seg_first);
		return 0;
	}
	/* (seq 1 chains to its store's genesis: checked as from_prev) */
	if (s->have_prev && memcmp(rec->prev, s->prev_hash,
	    JOURNAL_HASH_LEN) != 0) {
		seterr(err, err_len, "journal %s: record seq %" PRIu64 " at "
		    "offset %" PRIu64 ": previous-hash does not match record "
		    "seq %" PRIu64 " (chain broken: reordered or altered)",
		    path, rec->seq, off, rec->seq - 1);
		return 0;
	}
	if (rec->seq == o->from && o->from_prev != NULL &&
	    memcmp(rec->prev, o->from_prev, JOURNAL_HASH_LEN) != 0) {
		seterr(err, err_len, "journal %s: record seq %" PRIu64 " at "
		    "offset %" PRIu64 ": previous-hash does not match the "
		    "store's last record (the journal is of another history)",
		    path, rec->seq, off);
		return 0;
	}
	s->have_prev = 1;
	s->prev_seq = rec->seq;
	memcpy(s->prev_hash, rec->hash, JOURNAL_HASH_LEN);
	if (s->end->first_seq == 0)
		s->end->first_seq = rec->seq;
	s->end->last_seq = rec->seq;
	memcpy(s->end->last_hash, rec->hash, JOURNAL_HASH_LEN);
	s->end->last_epoch = rec->epoch;
	s->end->last_time_us = rec->time_us;
	if (rec->seq >= o->from && s->cb != NULL &&
	    !s->cb(rec, path, off, s->arg))
		s->stop = 1;
	if (o->until != 0 && rec->seq >= o->until)
		s->stop = 1;
	return 1;
}

/* Scans one segment file; sets end->valid_len for it. */
static int
scan_seg(struct scan_state *s, const char *path, uint64_t seg_first,
    int is_last, char *err, size_t err_len)
{
	struct journal_rec rec;
	enum journal_prc prc;
	uint8_t *buf = NULL;
	size_t len, off = 0, used;
	char why[256];
	int rc = 0;

	if (!seg_read(path, &buf, &len, err, err_len))
		return 0;
	while (off < len && !s->stop) {
		why[0] = '\0';
		prc = journal_rec_parse(&rec, &used, buf + off, len - off, why,
		    sizeof(why));
		if (prc != JOURNAL_REC_OK) {
			uint64_t expect = s->have_prev ? s->prev_seq + 1 :
			    seg_first;

			/* A crash in the middle of an append leaves a torn
			 * last record that was never acknowledged. */
			if (is_last && s->o->torn_ok &&
			    (prc == JOURNAL_REC_SHORT ||
			    (len - off >= JOURNAL_HDR_LEN &&
			    JOURNAL_HDR_LEN + (uint64_t)be32_get(buf + off + 4) +
			    JOURNAL_HASH_LEN >= len - off))) {
				log_warnx("journal %s: torn last record (seq %"
				    PRIu64 ") at offset %zu cut off: %s", path,
				    expect, off, why);
				s->end->torn = 1;
				break;
			}
			seterr(err, err_len, "journal %s: record seq %" PRIu64
			    " at offset %zu: %s%s", path, expect, off, why,
			    prc == JOURNAL_REC_SHORT ? " (a torn last record "
			    "after a crash? --until the seq before it stops "
			    "in front of it)" : "");
			goto out;
		}
		if (!scan_one(s, &rec, path, seg_first, off, err, err_len))
			goto out;
		off += used;
	}
	s->end->valid_len = off;
	rc = 1;
out:
	free(buf);
	return rc;
}

/* Index of the segment to start at: the last one whose first <= from. */
static size_t
scan_start(const struct seglist *l, const struct journal_scan_opts *o)
{
	size_t i, start = 0;

	if (o->from == 0 && o->summary)
		return l->n - 1;
	for (i = 0; i < l->n; i++)
		if (l->first[i] <= (o->from ? o->from : 1))
			start = i;
	return start;
}

int
journal_scan(const char *dir, const struct journal_scan_opts *o,
    journal_rec_cb cb, void *arg, struct journal_end *end, char *err,
    size_t err_len)
{
	struct scan_state s;
	struct seglist l;
	struct stat sb;
	char path[PATH_MAX];
	size_t i, start;
	int rc = 0;

	memset(end, 0, sizeof(*end));
	memset(&s, 0, sizeof(s));
	s.o = o;
	s.cb = cb;
	s.arg = arg;
	s.end = end;
	if (!seglist_read(&l, dir, err, err_len))
		return 0;
	for (i = 0; i < l.n; i++) {
		seg_path(path, sizeof(path), dir, l.first[i]);
		if (stat(path, &sb) == 0)
			end->total_bytes += (uint64_t)sb.st_size;
	}
	end->num_segments = l.n;
	if (l.n == 0) {
		rc = 1;
		goto out;
	}
	start = scan_start(&l, o);
	for (i = start; i < l.n && !s.stop; i++) {
		seg_path(path, sizeof(path), dir, l.first[i]);
		if (s.have_prev && l.first[i] != s.prev_seq + 1) {
			seterr(err, err_len, "journal %s: segment starts at seq "
			    "%" PRIu64 " but the previous segment ended at seq "
			    "%" PRIu64 " (records missing)", path, l.first[i],
			    s.prev_seq);
			goto out;
		}
		if (!s.have_prev && i > start) {
			seterr(err, err_len, "journal %s: follows an empty "
			    "segment (records missing)", path);
			goto out;
		}
		if (strlen(path) >= sizeof(end->last_seg)) {
			seterr(err, err_len, "journal %s: path too long", dir);
			goto out;
		}
		memcpy(end->last_seg, path, strlen(path) + 1);
		end->last_seg_first = l.first[i];
		end->valid_len = 0;
		if (!scan_seg(&s, path, l.first[i], i + 1 == l.n, err,
		    err_len))
			goto out;
	}
	rc = 1;
out:
	free(l.first);
	return rc;
}

/* ---- the appender ---- */

static int
fsync_dir(const char *dir)
{
	int fd, rc = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return 0;
	rc = fsync(fd) == 0;
	close(fd);
	return rc;
}

struct journal *
journal_open(const char *dir, uint64_t seg_max, const struct journal_end *end,
    char *err, size_t err_len)
{
	struct journal *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("journal: calloc");
	j->fd = -1;
	j->seg_max = seg_max ? seg_max : JOURNAL_SEG_DEFAULT;
	if (pthread_mutex_init(&j->mu, NULL) != 0)
		fatalx("journal: mutex");
	snprintf(j->dir, sizeof(j->dir), "%s", dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		seterr(err, err_len, "journal %s: mkdir: %s", dir,
		    strerror(errno));
		goto fail;
	}
	j->num_segments = end->num_segments;
	j->total_bytes = end->total_bytes;
	if (end->last_seg[0] == '\0')
		return j;
	j->fd = open(end->last_seg, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (j->fd == -1) {
		seterr(err, err_len, "journal %s: %s", end->last_seg,
		    strerror(errno));
		goto fail;
	}
	/* Cut a torn tail: it was never fsync'd whole, never acknowledged. */
	if (ftruncate(j->fd, (off_t)end->valid_len) == -1 ||
	    fsync(j->fd) == -1) {
		seterr(err, err_len, "journal %s: truncate: %s",
		    end->last_seg, strerror(errno));
		goto fail;
	}
	j->off = end->valid_len;
	return j;
fail:
	journal_close(j);
	return NULL;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->fd != -1)
		close(j->fd);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

/* Starts a new segment whose first record is first_seq. */
static int
journal_rotate(struct journal *j, uint64_t first_seq)
{
	char path[PATH_MAX];
	int fd;

	seg_path(path, sizeof(path), j->dir, first_seq);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		log_warn("journal: create %s", path);
		return 0;
	}
	if (!fsync_dir(j->dir)) {
		log_warn("journal: fsync %s", j->dir);
		close(fd);
		unlink(path);
		return 0;
	}
	if (j->fd != -1)
		close(j->fd);
	j->fd = fd;
	j->off = 0;
	pthread_mutex_lock(&j->mu);
	j->num_segments++;
	pthread_mutex_unlock(&j->mu);
	return 1;
}

int
journal_append(struct journal *j, uint64_t first_seq, const uint8_t *buf,
    size_t len)
{
	size_t done = 0;
	ssize_t n;

	if (j->fd == -1 || (j->off > 0 && j->off + len > j->seg_max)) {
		if (!journal_rotate(j, first_seq))
			return 0;
	}
	while (done < len) {
		n = pwrite(j->fd, buf + done, len - done,
		    (off_t)(j->off + done));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("journal: write");
			goto fail;
		}
		done += (size_t)n;
	}
	if (fdatasync(j->fd) == -1) {
		log_warn("journal: fdatasync");
		goto fail;
	}
	j->off += len;
	pthread_mutex_lock(&j->mu);
	j->total_bytes += len;
	pthread_mutex_unlock(&j->mu);
	return 1;
fail:
	/* Nothing of a failed append may stay: a later record would follow
	 * a partial one. */
	if (ftruncate(j->fd, (off_t)j->off) == -1)
		fatal("journal: cannot cut a failed append off the segment");
	return 0;
}

void
journal_undo(struct journal *j, size_t len)
{
	if (j->fd == -1 || j->off < len)
		fatalx("journal: cannot take back %zu bytes", len);
	if (ftruncate(j->fd, (off_t)(j->off - len)) == -1 ||
	    fdatasync(j->fd) == -1)
		fatal("journal: cannot take back an append the store did not "
		    "commit");
	j->off -= len;
	pthread_mutex_lock(&j->mu);
	j->total_bytes -= len;
	pthread_mutex_unlock(&j->mu);
}

void
journal_size(struct journal *j, uint64_t *out_segments, uint64_t *out_bytes)
{
	pthread_mutex_lock(&j->mu);
	*out_segments = j->num_segments;
	*out_bytes = j->total_bytes;
	pthread_mutex_unlock(&j->mu);
}

const char *
journal_dir(const struct journal *j)
{
	return j->dir;
}

int
journal_prune(const char *dir, uint64_t upto, uint64_t *out_removed,
    char *err, size_t err_len)
{
	struct seglist l;
	char path[PATH_MAX];
	size_t i;
	int rc = 0;

	*out_removed = 0;
	if (!seglist_read(&l, dir, err, err_len))
		return 0;
	/* Segment i holds seqs first[i] .. first[i+1]-1. */
	for (i = 0; i + 1 < l.n; i++) {
		if (l.first[i + 1] - 1 > upto)
			break;
		seg_path(path, sizeof(path), dir, l.first[i]);
		if (unlink(path) == -1) {
			seterr(err, err_len, "journal %s: %s", path,
			    strerror(errno));
			goto out;
		}
		(*out_removed)++;
	}
	if (*out_removed > 0)
		fsync_dir(dir);
	rc = 1;
out:
	free(l.first);
	return rc;
}
