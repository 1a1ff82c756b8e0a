/*
 * repl.c - a warm standby (see ca/repl.h for the stream).
 *
 * Primary ([replica] listen): one accept thread and one thread per
 * standby (at most REPL_FOLLOWERS_MAX).  A follower thread reads its
 * standby's FOLLOW, checks that the standby's last record is this
 * journal's record of that seq (else "diverged at seq N"), then reads
 * the journal's segment files from there and sends each record once the
 * store says it is committed (store_journal_wait wakes it after every
 * commit; a record is never sent before its LMDB commit), the CRLs the
 * CRL service signed, and a HEARTBEAT every second.  It sends with a
 * timeout: a standby that does not take the bytes is dropped (the
 * memory per standby is one read buffer), and catches up after its
 * reconnect.
 *
 * Standby ([replica] primary): one thread connects (backoff 0.5 s to
 * 5 s), sends FOLLOW from its store's position, and applies each record
 * after checking it (framing and hash, seq = its seq + 1, prev = its
 * head, epoch not older) with store_journal_apply: the record's ops and
 * the journal position in one transaction, the record appended to its
 * own journal before the commit.  Then the OCSP cache of every
 * certificate the record touched is dropped.  A record that fails a
 * check stops following for good, with the error naming the record's
 * seq, in the log and in status; the store keeps the last good record.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/ban.h"
#include "ca/ca.h"
#include "ca/micad.h"
#include "ca/proto.h"
#include "ca/repl.h"
#include "common/log.h"
#include "conf/conf.h"
#include "crl/crl.h"
#include "ocsp/ocsp.h"
#include "store/journal.h"
#include "store/store.h"

#define REPL_FOLLOWERS_MAX	8
#define REPL_IO_TIMEOUT_S	10	/* a send or a handshake */
#define REPL_SILENCE_S		15	/* standby: no frame for that long */
#define REPL_READ_CHUNK		(4U * 1024 * 1024)
#define REPL_WAKE_MS		200

struct follower {
	pthread_t	 th;
	int		 used;
	atomic_int	 done;
	int		 fd;
	char		 peer[64];
};

static struct {
	struct micad		*d;
	int			 standby;
	int			 primary_on;	/* [replica] listen set */
	char			 primary[CONF_STR_MAX];
	atomic_int		 stopping;
	pthread_mutex_t		 mu;
	/* primary */
	int			 lfd;
	SSL_CTX			*sctx;
	pthread_t		 accept_th;
	int			 accept_on;
	struct follower		 fol[REPL_FOLLOWERS_MAX];
	uint64_t		 sent_records;	/* atomically under mu */
	int			 num_followers;
	/* standby */
	SSL_CTX			*cctx;
	pthread_t		 standby_th;
	int			 standby_on;
	char			 state[64];	/* connecting, following,
						 * stopped */
	char			 last_error[1100];
	uint64_t		 head_seq;	/* the primary's, heartbeat */
	uint64_t		 head_time_us;
	uint64_t		 last_rec_time_us;	/* last applied */
	int			 stopped;	/* a bad record: no more */
	atomic_int		 follow_stop;	/* promote */
	int			 restart;	/* promoted: run again */
	char			 why_standby[512];	/* a peer's newer epoch */
	uint8_t			*crl[2];
	size_t			 crl_len[2];
	uint64_t		 crl_number[2];
	int64_t			 crl_next[2];	/* its nextUpdate, unix s */
} R = { .lfd = -1 };

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
set_state(const char *state, const char *err)
{
	pthread_mutex_lock(&R.mu);
	snprintf(R.state, sizeof(R.state), "%s", state);
	if (err != NULL)
		snprintf(R.last_error, sizeof(R.last_error), "%.1000s", err);
	pthread_mutex_unlock(&R.mu);
}

static void
repl_sslerr(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "%s", errno ? strerror(errno) :
		    "connection closed");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

/* Splits "HOST:PORT" ("[v6]:port" too).  1 or 0. */
static int
split_hostport(const char *s, char *host, size_t hlen, char *port,
    size_t plen)
{
	const char *c;

	if (s[0] == '[') {
		if ((c = strstr(s, "]:")) == NULL ||
		    (size_t)(c - s - 1) >= hlen)
			return 0;
		memcpy(host, s + 1, (size_t)(c - s - 1));
		host[c - s - 1] = '\0';
		c += 1;
	} else {
		if ((c = strrchr(s, ':')) == NULL || (size_t)(c - s) >= hlen)
			return 0;
		memcpy(host, s, (size_t)(c - s));
		host[c - s] = '\0';
	}
	if (strlen(c + 1) == 0 || strlen(c + 1) >= plen)
		return 0;
	snprintf(port, plen, "%s", c + 1);
	return 1;
}

static void
set_timeouts(int fd, int secs)
{
	struct timeval tv = { secs, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int
ssl_write_all(SSL *ssl, const uint8_t *p, size_t len)
{
	size_t n;

	while (len > 0) {
		if (SSL_write_ex(ssl, p, len, &n) != 1)
			return 0;
		p += n;
		len -= n;
	}
	return 1;
}

static int
ssl_read_all(SSL *ssl, uint8_t *p, size_t len)
{
	size_t n;

	while (len > 0) {
		if (SSL_read_ex(ssl, p, len, &n) != 1)
			return 0;
		p += n;
		len -= n;
	}
	return 1;
}

/*
 * Waits up to ms for a frame (poll), then reads it whole (the socket's
 * timeout bounds that).  1 with *type and buf, 0 on timeout (nothing
 * read), -1 on an error or a bad frame (why).
 */
static int
read_frame(SSL *ssl, int fd, int ms, uint8_t *type, struct wb *buf,
    char *why, size_t why_len)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	uint8_t hdr[REPL_FRAME_HDR];
	uint32_t len;

	if (SSL_pending(ssl) == 0) {
		int n = poll(&pfd, 1, ms);

		if (n == 0)
			return 0;
		if (n < 0)
			return errno == EINTR ? 0 : -1;
	}
	if (!ssl_read_all(ssl, hdr, sizeof(hdr))) {
		repl_sslerr(why, why_len);
		return -1;
	}
	if (!repl_frame_hdr(hdr, type, &len, why, why_len))
		return -1;
	buf->len = 0;
	if (!wb_reserve(buf, len ? len : 1)) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	if (len > 0 && !ssl_read_all(ssl, buf->data, len)) {
		repl_sslerr(why, why_len);
		return -1;
	}
	buf->len = len;
	return 1;
}

/* ==================== primary ==================== */

/* Is name listed in [replica] names_file ("NAME SHA256" a line, the
 * SHA-256 of its replication certificate: any other certificate with
 * that CN, a subscriber's included, is refused)? */
static int
name_registered(const char *name, X509 *cert)
{
	char line[512], want[65], *fp;
	unsigned char md[32];
	unsigned int n = 0;
	FILE *f;
	size_t len, i, j;
	int found = 0;

	if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32)
		return 0;
	hex_encode(want, md, 32);
	want[64] = '\0';
	if ((f = fopen(R.d->conf->replica.names_file, "r")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		len = strcspn(line, " \t\r\n#");
		if (len == 0 || line[len] == '\0' || line[len] == '#')
			continue;
		line[len] = '\0';
		if (strcmp(line, name) != 0)
			continue;
		fp = line + len + 1;
		fp += strspn(fp, " \t");
		/* hex, any case, colons allowed */
		for (i = j = 0; fp[i] != '\0' && fp[i] != '\n' &&
		    fp[i] != '\r' && fp[i] != ' ' && j <= 64; i++) {
			if (fp[i] == ':')
				continue;
			if (j == 64 || (fp[i] | 0x20) != (want[j] | 0x20))
				break;
			j++;
		}
		found = j == 64 && (fp[i] == '\0' || fp[i] == '\n' ||
		    fp[i] == '\r' || fp[i] == ' ');
	}
	fclose(f);
	return found;
}

/*
 * Tests only: MICA_TEST_REPL_CORRUPT=cut:SEQ, swap:SEQ or flip:SEQ makes
 * the primary send record SEQ truncated, after SEQ+1, or with one byte
 * of its body altered, so that t_replica checks the standby's own
 * checks against real records.  Unset in production.
 */
enum { HOOK_NONE, HOOK_CUT, HOOK_SWAP, HOOK_FLIP };
static int hook_mode;
static uint64_t hook_seq;

static void
hook_init(void)
{
	const char *v = getenv("MICA_TEST_REPL_CORRUPT");

	if (v == NULL)
		return;
	if (strncmp(v, "cut:", 4) == 0)
		hook_mode = HOOK_CUT;
	else if (strncmp(v, "swap:", 5) == 0)
		hook_mode = HOOK_SWAP;
	else if (strncmp(v, "flip:", 5) == 0)
		hook_mode = HOOK_FLIP;
	else
		return;
	hook_seq = strtoull(strchr(v, ':') + 1, NULL, 10);
	log_warnx("replication: TEST HOOK %s: record %" PRIu64 " is sent "
	    "corrupted", v, hook_seq);
}

/* Appends one record frame (through the test hook). */
static void
put_record(struct wb *out, struct wb *stash, uint64_t seq, const uint8_t *p,
    size_t len)
{
	uint8_t *copy;

	if (hook_mode == HOOK_NONE || (seq != hook_seq &&
	    seq != hook_seq + 1)) {
		repl_frame_put(out, REPL_RECORD, p, len);
		return;
	}
	if (hook_mode == HOOK_CUT && seq == hook_seq)
		repl_frame_put(out, REPL_RECORD, p, len - 20);
	else if (hook_mode == HOOK_FLIP && seq == hook_seq) {
		if ((copy = malloc(len)) == NULL)
			return;
		memcpy(copy, p, len);
		copy[len - JOURNAL_HASH_LEN - 1] ^= 0x01;
		repl_frame_put(out, REPL_RECORD, copy, len);
		free(copy);
	} else if (hook_mode == HOOK_SWAP && seq == hook_seq) {
		stash->len = 0;
		wb_put(stash, p, len);
	} else if (hook_mode == HOOK_SWAP) {
		repl_frame_put(out, REPL_RECORD, p, len);
		repl_frame_put(out, REPL_RECORD, stash->data, stash->len);
	} else
		repl_frame_put(out, REPL_RECORD, p, len);
}

/* Reads the journal's segment files after a position. */
struct jreader {
	char		dir[CONF_PATH_MAX];
	char		seg[CONF_PATH_MAX + 64];	/* "" = by next */
	int		fd;
	uint64_t	off;
	uint64_t	next;		/* seq of the next record to send */
	uint8_t		prev[JOURNAL_HASH_LEN];
	struct wb	buf;
	struct wb	stash;		/* the test hook's */
};

struct pos_ctx {
	uint64_t	from;
	const uint8_t	*prev;
	int		prev_seen;
	int		found;
	char		seg[CONF_PATH_MAX + 64];
	uint64_t	off;
	char		err[512];
};

static int
pos_cb(const struct journal_rec *rec, const char *seg, uint64_t off,
    void *arg)
{
	struct pos_ctx *p = arg;

	if (p->from > 1 && rec->seq == p->from - 1) {
		p->prev_seen = 1;
		if (memcmp(rec->hash, p->prev, JOURNAL_HASH_LEN) != 0) {
			snprintf(p->err, sizeof(p->err), "diverged at seq %"
			    PRIu64 ": the standby's record %" PRIu64 " is not "
			    "the primary's (another history: provision the "
			    "standby again)", rec->seq, rec->seq);
			return 0;
		}
		return 1;
	}
	if (rec->seq == p->from) {
		p->found = 1;
		snprintf(p->seg, sizeof(p->seg), "%s", seg);
		p->off = off;
		return 0;
	}
	return 1;
}

/* Positions r at f->from_seq after checking the standby's last record. */
static int
jreader_open(struct jreader *r, const char *dir,
    const struct repl_follow *f, char *err, size_t err_len)
{
	struct journal_scan_opts so;
	struct journal_end end;
	struct pos_ctx p;
	uint64_t head, epoch;
	uint8_t hh[JOURNAL_HASH_LEN], gen[JOURNAL_HASH_LEN];

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	wb_init(&r->buf);
	wb_init(&r->stash);
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	store_journal_pos(R.d->store, &head, hh, &epoch);
	if (f->epoch > epoch) {
		snprintf(err, err_len, "the standby is at epoch %" PRIu64
		    ", newer than this primary's %" PRIu64 ": this server "
		    "was replaced by a promoted standby", f->epoch, epoch);
		return 0;
	}
	if (f->from_seq - 1 > head) {
		snprintf(err, err_len, "diverged at seq %" PRIu64 ": the "
		    "standby is at seq %" PRIu64 ", past this primary's %"
		    PRIu64, head + 1, f->from_seq - 1, head);
		return 0;
	}
	if (f->from_seq == 1 && (!store_journal_genesis(R.d->store, gen) ||
	    memcmp(f->prev, gen, sizeof(gen)) != 0)) {
		snprintf(err, err_len, "diverged at seq 1: the standby's store "
		    "is not a copy of this primary's (another CA's store?)");
		return 0;
	}
	memset(&p, 0, sizeof(p));
	p.from = f->from_seq;
	p.prev = f->prev;
	memset(&so, 0, sizeof(so));
	so.from = f->from_seq > 1 ? f->from_seq - 1 : 1;
	so.torn_ok = 1;
	if (!journal_scan(dir, &so, pos_cb, &p, &end, err, err_len))
		return 0;
	if (p.err[0] != '\0') {
		snprintf(err, err_len, "%s", p.err);
		return 0;
	}
	if (f->from_seq > 1 && !p.prev_seen) {
		if (f->from_seq - 1 == head &&
		    memcmp(hh, f->prev, JOURNAL_HASH_LEN) == 0 &&
		    end.last_seq == 0) {
			/* an empty journal at the store's position */
		} else if (f->from_seq - 1 == head &&
		    memcmp(hh, f->prev, JOURNAL_HASH_LEN) != 0) {
			snprintf(err, err_len, "diverged at seq %" PRIu64
			    ": the standby's record %" PRIu64 " is not the "
			    "primary's", head, head);
			return 0;
		} else {
			snprintf(err, err_len, "records from seq %" PRIu64
			    " are no longer in the primary's journal (the "
			    "journal starts at %" PRIu64 "): provision the "
			    "standby again", f->from_seq, end.first_seq);
			return 0;
		}
	}
	r->next = f->from_seq;
	memcpy(r->prev, f->prev, JOURNAL_HASH_LEN);
	if (p.found) {
		snprintf(r->seg, sizeof(r->seg), "%s", p.seg);
		r->off = p.off;
	} else if (end.last_seg[0] != '\0' && end.last_seq == head) {
		snprintf(r->seg, sizeof(r->seg), "%s", end.last_seg);
		r->off = end.valid_len;
	}
	return 1;
}

static void
jreader_close(struct jreader *r)
{
	if (r->fd != -1)
		close(r->fd);
	r->fd = -1;
	wb_cleanup(&r->buf);
	wb_cleanup(&r->stash);
}

/*
 * Appends to out the framed RECORD messages of the records up to
 * committed (at most about REPL_READ_CHUNK bytes).  1, or 0 with err.
 */
static int
jreader_read(struct jreader *r, uint64_t committed, struct wb *out,
    char *err, size_t err_len)
{
	struct journal_rec rec;
	struct stat sb;
	size_t used, pos, want;
	ssize_t n;
	enum journal_prc prc;
	char why[256];

	while (r->next <= committed && out->len < REPL_READ_CHUNK) {
		if (r->fd == -1) {
			if (r->seg[0] == '\0')
				snprintf(r->seg, sizeof(r->seg), "%s/%016"
				    PRIx64 "%s", r->dir, r->next,
				    JOURNAL_SEG_SUFFIX);
			if ((r->fd = open(r->seg, O_RDONLY | O_CLOEXEC)) ==
			    -1) {
				snprintf(err, err_len, "journal %.600s: %s",
				    r->seg, strerror(errno));
				return 0;
			}
		}
		if (fstat(r->fd, &sb) != 0) {
			snprintf(err, err_len, "journal %.600s: %s", r->seg,
			    strerror(errno));
			return 0;
		}
		if ((uint64_t)sb.st_size <= r->off) {
			/* the rest is in the next segment */
			close(r->fd);
			r->fd = -1;
			r->seg[0] = '\0';
			r->off = 0;
			continue;
		}
		want = (uint64_t)sb.st_size - r->off > REPL_READ_CHUNK ?
		    REPL_READ_CHUNK : (size_t)((uint64_t)sb.st_size - r->off);
		r->buf.len = 0;
		for (;;) {
			if (!wb_reserve(&r->buf, want)) {
				snprintf(err, err_len, "out of memory");
				return 0;
			}
			n = pread(r->fd, r->buf.data, want, (off_t)r->off);
			if (n < 0) {
				snprintf(err, err_len, "journal %.600s: %s",
				    r->seg, strerror(errno));
				return 0;
			}
			r->buf.len = (size_t)n;
			/* a record longer than the chunk: read it whole */
			if ((size_t)n == want && n >= JOURNAL_HDR_LEN) {
				size_t need = JOURNAL_HDR_LEN +
				    be32_get(r->buf.data + 4) +
				    JOURNAL_HASH_LEN;

				if (need > want && need <= REPL_FRAME_MAX &&
				    r->off + need <= (uint64_t)sb.st_size) {
					want = need;
					continue;
				}
			}
			break;
		}
		pos = 0;
		while (pos < r->buf.len && r->next <= committed) {
			prc = journal_rec_parse(&rec, &used, r->buf.data + pos,
			    r->buf.len - pos, why, sizeof(why));
			if (prc == JOURNAL_REC_SHORT)
				break;
			if (prc != JOURNAL_REC_OK || rec.seq != r->next ||
			    memcmp(rec.prev, r->prev, JOURNAL_HASH_LEN) != 0) {
				snprintf(err, err_len, "journal %.600s at offset %"
				    PRIu64 ": expected record seq %" PRIu64
				    ": %s", r->seg, r->off + pos, r->next,
				    prc != JOURNAL_REC_OK ? why :
				    "seq or prev hash does not follow");
				return 0;
			}
			put_record(out, &r->stash, rec.seq, r->buf.data + pos,
			    used);
			memcpy(r->prev, rec.hash, JOURNAL_HASH_LEN);
			r->next++;
			pos += used;
		}
		r->off += pos;
		if (pos == 0)
			break;	/* a record still being written */
	}
	return 1;
}

static X509 *
peer_cert(SSL *ssl)
{
	return SSL_get1_peer_certificate(ssl);
}

/* One standby: its checks, then the stream. */
static void *
follower_main(void *arg)
{
	struct follower *fo = arg;
	struct repl_follow f;
	struct repl_heartbeat hb;
	struct jreader jr;
	struct wb in, out;
	SSL *ssl = NULL;
	X509 *cert = NULL;
	char cn[256], name[REPL_NAME_MAX + 1], err[1024], why[256];
	uint64_t committed, sent = 0, last_hb = 0, crl_num[2] = { 0, 0 };
	uint64_t epoch;
	uint8_t type;
	int rc, jr_open = 0, k;

	wb_init(&in);
	wb_init(&out);
	set_timeouts(fo->fd, REPL_IO_TIMEOUT_S);
	if ((ssl = SSL_new(R.sctx)) == NULL || SSL_set_fd(ssl, fo->fd) != 1 ||
	    SSL_accept(ssl) != 1) {
		repl_sslerr(why, sizeof(why));
		log_warnx("replica %s: TLS handshake failed: %s", fo->peer,
		    why);
		goto out;
	}
	cn[0] = '\0';
	if ((cert = peer_cert(ssl)) == NULL ||
	    X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
	    NID_commonName, cn, sizeof(cn)) <= 0 ||
	    !repl_cn_name(cn, name, sizeof(name)) ||
	    !name_registered(name, cert)) {
		snprintf(err, sizeof(err), "the client certificate (CN=%s) is "
		    "not a registered replica (name and SHA-256 in the "
		    "primary's [replica] names_file: mica-admin replica add)",
		    cn);
		log_warnx("replica %s: %s", fo->peer, err);
		wb_init(&out);
		repl_frame_put(&out, REPL_ERROR, err, strlen(err));
		(void)ssl_write_all(ssl, out.data, out.len);
		goto out;
	}
	rc = read_frame(ssl, fo->fd, REPL_IO_TIMEOUT_S * 1000, &type, &in,
	    why, sizeof(why));
	if (rc == 1 && type == REPL_EPOCH_Q) {
		uint8_t b[17];

		store_journal_pos(R.d->store, &committed, NULL, &epoch);
		be64_put(b, epoch);
		be64_put(b + 8, committed);
		b[16] = R.standby ? 0 : 1;	/* 1: a primary */
		out.len = 0;
		repl_frame_put(&out, REPL_EPOCH, b, sizeof(b));
		(void)ssl_write_all(ssl, out.data, out.len);
		log_info("replica %s (%s): asked for the epoch (%" PRIu64 ")",
		    name, fo->peer, epoch);
		goto out;
	}
	if (rc != 1 || type != REPL_FOLLOW ||
	    !repl_follow_parse(in.data, in.len, &f)) {
		log_warnx("replica %s (%s): no FOLLOW: %s", name, fo->peer,
		    rc == 1 ? "bad frame" : rc == 0 ? "timeout" : why);
		goto out;
	}
	if (!jreader_open(&jr, R.d->conf->store.journal_dir, &f, err,
	    sizeof(err))) {
		log_warnx("replica %s (%s): refused: %s", name, fo->peer, err);
		out.len = 0;
		repl_frame_put(&out, REPL_ERROR, err, strlen(err));
		(void)ssl_write_all(ssl, out.data, out.len);
		goto out;
	}
	jr_open = 1;
	log_info("replica %s (%s): following from seq %" PRIu64, name,
	    fo->peer, f.from_seq);
	while (!atomic_load(&R.stopping)) {
		struct pollfd pfd = { fo->fd, POLLIN, 0 };

		committed = store_journal_wait(R.d->store, jr.next - 1,
		    REPL_WAKE_MS);
		out.len = 0;
		if (!jreader_read(&jr, committed, &out, err, sizeof(err))) {
			log_warnx("replica %s: %s", name, err);
			repl_frame_put(&out, REPL_ERROR, err, strlen(err));
			(void)ssl_write_all(ssl, out.data, out.len);
			break;
		}
		sent = jr.next - 1;
		/* the CRLs the CRL service signed, after the records */
		for (k = 0; R.d->crl != NULL && k < 2; k++) {
			const struct crl_snapshot *s;
			int building;

			/* never waits: the records go on during a first
			 * build; its CRL follows in a later round */
			s = crl_service_peek_nowait(R.d->crl, k == 0 ?
			    CRL_FULL : CRL_DELTA, &building);
			if (s == NULL)
				continue;
			if (s->number != crl_num[k]) {
				const uint8_t *der = crl_snapshot_der(s);

				if (der != NULL && s->der_len <= REPL_CRL_MAX) {
					repl_crl_put(&out, (uint8_t)k,
					    s->number, der, s->der_len);
					crl_num[k] = s->number;
				}
			}
			crl_snapshot_release(s);
		}
		if (out.len > 0 || mono_ms() - last_hb >= 1000) {
			store_journal_pos(R.d->store, &hb.head_seq, NULL,
			    &epoch);
			hb.time_us = now_us();
			hb.epoch = epoch;
			repl_heartbeat_put(&out, &hb);
			last_hb = mono_ms();
		}
		if (!wb_ok(&out)) {
			log_warnx("replica %s: out of memory", name);
			break;
		}
		if (out.len > 0 && !ssl_write_all(ssl, out.data, out.len)) {
			repl_sslerr(why, sizeof(why));
			log_warnx("replica %s (%s): dropped (sending: %s); it "
			    "catches up when it reconnects", name, fo->peer,
			    why);
			break;
		}
		if (out.len > 0) {
			pthread_mutex_lock(&R.mu);
			R.sent_records = sent;
			pthread_mutex_unlock(&R.mu);
		}
		/* the standby sends nothing after FOLLOW: readable = gone */
		if (poll(&pfd, 1, 0) > 0) {
			log_info("replica %s (%s): disconnected", name,
			    fo->peer);
			break;
		}
	}
 out:
	if (jr_open)
		jreader_close(&jr);
	X509_free(cert);
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	close(fo->fd);
	wb_cleanup(&in);
	wb_cleanup(&out);
	ERR_clear_error();
	atomic_store(&fo->done, 1);
	return NULL;
}

static void
reap_followers(int all)
{
	int i;

	for (i = 0; i < REPL_FOLLOWERS_MAX; i++) {
		if (!R.fol[i].used || (!all && !atomic_load(&R.fol[i].done)))
			continue;
		pthread_join(R.fol[i].th, NULL);
		R.fol[i].used = 0;
		pthread_mutex_lock(&R.mu);
		R.num_followers--;
		pthread_mutex_unlock(&R.mu);
	}
}

static void *
accept_main(void *arg)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[64];
	int fd, i;

	(void)arg;
	while (!atomic_load(&R.stopping)) {
		struct pollfd pfd = { R.lfd, POLLIN, 0 };

		reap_followers(0);
		if (poll(&pfd, 1, 250) <= 0)
			continue;
		sl = sizeof(ss);
		if ((fd = accept4(R.lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_CLOEXEC)) == -1)
			continue;
		host[0] = '\0';
		(void)getnameinfo((struct sockaddr *)&ss, sl, host,
		    sizeof(host), NULL, 0, NI_NUMERICHOST);
		for (i = 0; i < REPL_FOLLOWERS_MAX && R.fol[i].used; i++)
			;
		if (i == REPL_FOLLOWERS_MAX) {
			log_warnx("replica: %s refused: %d standbys connected",
			    host, REPL_FOLLOWERS_MAX);
			close(fd);
			continue;
		}
		R.fol[i].used = 1;
		atomic_store(&R.fol[i].done, 0);
		R.fol[i].fd = fd;
		snprintf(R.fol[i].peer, sizeof(R.fol[i].peer), "%s", host);
		if (pthread_create(&R.fol[i].th, NULL, follower_main,
		    &R.fol[i]) != 0) {
			R.fol[i].used = 0;
			close(fd);
			continue;
		}
		pthread_mutex_lock(&R.mu);
		R.num_followers++;
		pthread_mutex_unlock(&R.mu);
	}
	reap_followers(1);
	return NULL;
}

int
repl_bind(struct micad *d, char *err, size_t err_len)
{
	const struct mica_conf *c = d->conf;
	struct addrinfo hints, *res = NULL;
	char host[256], port[16];
	int one = 1, rc;

	if (!R.primary_on)
		return 1;
	hook_init();
	if (!split_hostport(c->replica.listen, host, sizeof(host), port,
	    sizeof(port))) {
		snprintf(err, err_len, "[replica] listen: must be HOST:PORT");
		return 0;
	}
	if ((R.sctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(R.sctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(R.sctx, c->ca.tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(R.sctx, c->ca.tls_key,
	    SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(R.sctx, c->ca.cert, NULL) != 1) {
		char why[256];

		repl_sslerr(why, sizeof(why));
		snprintf(err, err_len, "[replica] listen: TLS set-up (%s, %s, "
		    "%s): %s", c->ca.tls_cert, c->ca.tls_key, c->ca.cert, why);
		return 0;
	}
	SSL_CTX_set_verify(R.sctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) !=
	    0) {
		snprintf(err, err_len, "[replica] listen %s: %s",
		    c->replica.listen, gai_strerror(rc));
		return 0;
	}
	if ((R.lfd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
	    0)) == -1 ||
	    setsockopt(R.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(R.lfd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(R.lfd, 16) != 0) {
		snprintf(err, err_len, "[replica] listen %s: %s",
		    c->replica.listen, strerror(errno));
		freeaddrinfo(res);
		return 0;
	}
	freeaddrinfo(res);
	return 1;
}

/* ==================== standby ==================== */

static int
connect_primary(const char *addr, int *out_fd, char *err, size_t err_len)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], port[16];
	int fd = -1, rc;

	if (!split_hostport(addr, host, sizeof(host), port,
	    sizeof(port))) {
		snprintf(err, err_len, "[replica] primary: must be HOST:PORT");
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, err_len, "%s: %s", addr, gai_strerror(rc));
		return 0;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype |
		    SOCK_CLOEXEC, 0)) == -1)
			continue;
		set_timeouts(fd, REPL_IO_TIMEOUT_S);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		snprintf(err, err_len, "connect %s: %s", addr,
		    strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return 0;
	rc = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &rc, sizeof(rc));
	*out_fd = fd;
	return 1;
}

/* The checks a received record must pass before it is applied; the
 * serials it touched are added to *be (banned by the caller). */
static int
record_apply(const uint8_t *p, size_t len, struct ban_expr *be, char *err,
    size_t err_len)
{
	struct journal_rec rec;
	struct journal_op op;
	struct rd r;
	uint64_t seq, head;
	uint64_t epoch;
	uint8_t hh[JOURNAL_HASH_LEN];
	size_t used;
	uint32_t i;
	char why[256];
	enum journal_prc prc;

	store_journal_pos(R.d->store, &head, hh, &epoch);
	prc = journal_rec_parse(&rec, &used, p, len, why, sizeof(why));
	if (prc != JOURNAL_REC_OK || used != len) {
		if (repl_record_seq(p, len, &seq))
			snprintf(err, err_len, "record seq %" PRIu64 " (after "
			    "seq %" PRIu64 "): %s", seq, head,
			    prc == JOURNAL_REC_SHORT ? "truncated" :
			    prc == JOURNAL_REC_OK ? "trailing bytes" : why);
		else
			snprintf(err, err_len, "the record after seq %" PRIu64
			    ": truncated (%zu bytes)", head, len);
		return 0;
	}
	if (rec.seq != head + 1) {
		snprintf(err, err_len, "record seq %" PRIu64 ": expected seq %"
		    PRIu64 " (records missing or reordered)", rec.seq,
		    head + 1);
		return 0;
	}
	if (memcmp(rec.prev, hh, JOURNAL_HASH_LEN) != 0) {
		snprintf(err, err_len, "record seq %" PRIu64 ": its prev hash "
		    "is not the hash of record %" PRIu64 " (altered, or "
		    "another history)", rec.seq, head);
		return 0;
	}
	if (rec.epoch < epoch) {
		snprintf(err, err_len, "record seq %" PRIu64 ": epoch %" PRIu64
		    " is older than this store's %" PRIu64, rec.seq,
		    rec.epoch, epoch);
		return 0;
	}
	err[0] = '\0';
	if (store_journal_apply(R.d->store, &rec, p, len, err, err_len) !=
	    STORE_OK)
		return 0;
	pthread_mutex_lock(&R.mu);
	R.last_rec_time_us = rec.time_us;
	pthread_mutex_unlock(&R.mu);
	/*
	 * The certificates it touched: their OCSP answers are stale, here
	 * at once, and in the caches in front of this standby ([http]
	 * ban_urls) by ban_flush.
	 */
	rd_init(&r, rec.ops, rec.ops_len);
	for (i = 0; i < rec.num_ops; i++) {
		if (!journal_op_next(&r, &op))
			break;
		if (op.db != JOURNAL_DB_CERTS || op.key_len != 16)
			continue;
		if (R.d->ocsp != NULL)
			ocsp_invalidate(R.d->ocsp, op.key);
		ban_expr_add(be, op.key);
	}
	return 1;
}

/* Records applied before one BAN goes out, at most (catching up). */
#define REPL_BAN_BATCH	64

/*
 * The BAN for the records applied since the last one, bounded by
 * ban_timeout_ms (a cache that fails is counted and logged by ban_send;
 * following goes on).  It goes out before the next frame is waited for:
 * records that are already here (a standby catching up) are applied
 * first, up to REPL_BAN_BATCH, so that a cache that does not answer
 * costs ban_timeout_ms per batch, not per record.  This thread is the
 * only one that bans on a standby: its store refuses every other write.
 */
static void
ban_flush(struct ban_expr *be, int *records)
{
	if (R.d->ban != NULL && be->num > 0)
		ban_send_expr(R.d->ban, be);
	ban_expr_init(be);
	*records = 0;
}

/* 1 when the next frame's bytes are already here. */
static int
frame_waiting(SSL *ssl, int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };

	return SSL_pending(ssl) > 0 || poll(&pfd, 1, 0) > 0;
}

/* A CRL's nextUpdate (unix s), 0 when it has none or does not parse. */
static int64_t
crl_next_update(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	const ASN1_TIME *nu;
	X509_CRL *crl;
	struct tm tm;
	int64_t t = 0;

	if (len > LONG_MAX || (crl = d2i_X509_CRL(NULL, &p, (long)len)) ==
	    NULL) {
		ERR_clear_error();
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if ((nu = X509_CRL_get0_nextUpdate(crl)) != NULL &&
	    ASN1_TIME_to_tm(nu, &tm))
		t = (int64_t)timegm(&tm);
	X509_CRL_free(crl);
	return t;
}

static void
crl_keep(const struct repl_crl *c)
{
	uint8_t *copy;
	int64_t next;

	if ((copy = malloc(c->der_len)) == NULL)
		return;
	memcpy(copy, c->der, c->der_len);
	next = crl_next_update(c->der, c->der_len);
	pthread_mutex_lock(&R.mu);
	free(R.crl[c->kind]);
	R.crl[c->kind] = copy;
	R.crl_len[c->kind] = c->der_len;
	R.crl_number[c->kind] = c->number;
	R.crl_next[c->kind] = next;
	pthread_mutex_unlock(&R.mu);
	if (R.d->conf->crl.publish_dir[0] != '\0') {
		char path[CONF_PATH_MAX + 32], tmp[CONF_PATH_MAX + 40];
		int fd;

		snprintf(path, sizeof(path), "%s/%s",
		    R.d->conf->crl.publish_dir, c->kind == 0 ? "full.crl" :
		    "delta.crl");
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0644)) == -1)
			return;
		if (write(fd, c->der, c->der_len) != (ssize_t)c->der_len ||
		    fsync(fd) != 0) {
			close(fd);
			unlink(tmp);
			return;
		}
		close(fd);
		if (rename(tmp, path) != 0)
			unlink(tmp);
	}
}

static SSL	*tls_connect(const char *, int *, char *, size_t);

/* One connection: 1 = reconnect, 0 = stop following (a bad record). */
static int
follow_once(void)
{
	struct repl_follow f;
	struct repl_heartbeat hb;
	struct repl_crl crl;
	struct wb in, out;
	struct ban_expr be;
	SSL *ssl = NULL;
	char err[1024], why[512];
	uint64_t last_frame;
	uint8_t type;
	int fd = -1, rc, again = 1, unbanned = 0;

	ban_expr_init(&be);
	wb_init(&in);
	wb_init(&out);
	set_state("connecting", NULL);
	if ((ssl = tls_connect(R.primary, &fd, err, sizeof(err))) == NULL) {
		set_state("disconnected", err);
		goto out;
	}
	memset(&f, 0, sizeof(f));
	store_journal_pos(R.d->store, &f.from_seq, f.prev, &f.epoch);
	f.from_seq++;
	repl_follow_put(&out, &f);
	if (!ssl_write_all(ssl, out.data, out.len)) {
		repl_sslerr(why, sizeof(why));
		snprintf(err, sizeof(err), "sending to %.300s: %.300s", R.primary,
		    why);
		set_state("disconnected", err);
		goto out;
	}
	set_state("following", NULL);
	log_info("standby: following %s from seq %" PRIu64, R.primary,
	    f.from_seq);
	last_frame = mono_ms();
	while (!atomic_load(&R.stopping) && !atomic_load(&R.follow_stop)) {
		rc = read_frame(ssl, fd, 500, &type, &in, why, sizeof(why));
		if (rc == 0) {
			if (mono_ms() - last_frame > REPL_SILENCE_S * 1000) {
				snprintf(err, sizeof(err), "%s: nothing for "
				    "%d s", R.primary, REPL_SILENCE_S);
				set_state("disconnected", err);
				break;
			}
			continue;
		}
		if (rc < 0) {
			snprintf(err, sizeof(err), "%.300s: %.300s", R.primary, why);
			set_state("disconnected", err);
			break;
		}
		last_frame = mono_ms();
		switch (type) {
		case REPL_RECORD:
			if (!record_apply(in.data, in.len, &be, err,
			    sizeof(err))) {
				char msg[1200];

				snprintf(msg, sizeof(msg), "stopped: %.900s; the "
				    "store keeps the records up to the last "
				    "good one", err);
				log_warnx("standby: %s", msg);
				set_state("stopped", msg);
				pthread_mutex_lock(&R.mu);
				R.stopped = 1;
				pthread_mutex_unlock(&R.mu);
				again = 0;
				goto out;
			}
			unbanned++;
			break;
		case REPL_HEARTBEAT:
			if (repl_heartbeat_parse(in.data, in.len, &hb)) {
				pthread_mutex_lock(&R.mu);
				R.head_seq = hb.head_seq;
				R.head_time_us = hb.time_us;
				pthread_mutex_unlock(&R.mu);
			}
			break;
		case REPL_CRL:
			if (repl_crl_parse(in.data, in.len, &crl))
				crl_keep(&crl);
			break;
		case REPL_ERROR: {
			char msg[1200];

			snprintf(msg, sizeof(msg), "stopped: the primary %s "
			    "refused: %.*s", R.primary, (int)(in.len >
			    REPL_TEXT_MAX ? REPL_TEXT_MAX : in.len),
			    (const char *)in.data);
			log_warnx("standby: %s", msg);
			set_state("stopped", msg);
			pthread_mutex_lock(&R.mu);
			R.stopped = 1;
			pthread_mutex_unlock(&R.mu);
			again = 0;
			goto out;
		}
		default:
			break;
		}
		/* the BAN before the next wait, or before a frame that is
		 * not a record (a heartbeat after a record) */
		if (unbanned > 0 && (type != REPL_RECORD ||
		    unbanned >= REPL_BAN_BATCH || !frame_waiting(ssl, fd)))
			ban_flush(&be, &unbanned);
	}
 out:
	ban_flush(&be, &unbanned);	/* what was applied before */
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	if (fd != -1)
		close(fd);
	wb_cleanup(&in);
	wb_cleanup(&out);
	ERR_clear_error();
	return again;
}

static void *
standby_main(void *arg)
{
	int backoff = 500, i;

	(void)arg;
	while (!atomic_load(&R.stopping) && !atomic_load(&R.follow_stop)) {
		if (!follow_once())
			break;
		if (strcmp(R.state, "following") != 0)
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
		else
			backoff = 500;
		for (i = 0; i < backoff / 50 && !atomic_load(&R.stopping) &&
		    !atomic_load(&R.follow_stop); i++)
			usleep(50000);
	}
	return NULL;
}

/* ==================== micad ==================== */

static SSL_CTX *
client_ctx(const struct mica_conf *c, char *err, size_t err_len)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, c->replica.cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, c->replica.key,
	    SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, c->ca.cert, NULL) != 1) {
		char why[256];

		repl_sslerr(why, sizeof(why));
		snprintf(err, err_len, "[replica] cert %s, key %s (and [ca] "
		    "cert %s): %s", c->replica.cert, c->replica.key,
		    c->ca.cert, why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

/* Connects R.cctx to addr with TLS (host name or IP checked). */
static SSL *
tls_connect(const char *addr, int *out_fd, char *err, size_t err_len)
{
	char host[256], port[16], why[256];
	struct in6_addr a6;
	SSL *ssl;
	int fd;

	if (!connect_primary(addr, &fd, err, err_len))
		return NULL;
	if ((ssl = SSL_new(R.cctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		snprintf(err, err_len, "out of memory");
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	if (split_hostport(addr, host, sizeof(host), port, sizeof(port))) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		if (inet_pton(AF_INET, host, &a6) == 1 ||
		    inet_pton(AF_INET6, host, &a6) == 1)
			X509_VERIFY_PARAM_set1_ip_asc(vp, host);
		else {
			X509_VERIFY_PARAM_set1_host(vp, host, 0);
			SSL_set_tlsext_host_name(ssl, host);
		}
	}
	if (SSL_connect(ssl) != 1) {
		repl_sslerr(why, sizeof(why));
		snprintf(err, err_len, "TLS with %.300s: %.200s", addr, why);
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	*out_fd = fd;
	return ssl;
}

/* A peer's epoch: 1 with *epoch, or 0 (unreachable: err). */
static int
peer_epoch(const char *addr, uint64_t *epoch, uint64_t *seq, int *primary,
    char *err, size_t err_len)
{
	struct wb in, out;
	SSL *ssl;
	uint8_t type;
	int fd, rc, ok = 0;
	char why[256];

	if ((ssl = tls_connect(addr, &fd, err, err_len)) == NULL)
		return 0;
	wb_init(&in);
	wb_init(&out);
	repl_frame_put(&out, REPL_EPOCH_Q, NULL, 0);
	if (ssl_write_all(ssl, out.data, out.len)) {
		rc = read_frame(ssl, fd, 3000, &type, &in, why, sizeof(why));
		if (rc == 1 && type == REPL_EPOCH && in.len == 17) {
			*epoch = be64_get(in.data);
			*seq = be64_get(in.data + 8);
			*primary = in.data[16] == 1;
			ok = 1;
		} else if (rc == 1 && type == REPL_ERROR)
			snprintf(err, err_len, "%s refused: %.*s", addr,
			    (int)(in.len > 512 ? 512 : in.len),
			    (const char *)in.data);
		else
			snprintf(err, err_len, "%s: no epoch answer", addr);
	} else
		snprintf(err, err_len, "%s: cannot send", addr);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	wb_cleanup(&in);
	wb_cleanup(&out);
	ERR_clear_error();
	return ok;
}

int
repl_configured_standby(struct store *st, const struct mica_conf *c)
{
	uint64_t seq, epoch, promoted = 0;

	if (c->replica.primary[0] == '\0')
		return 0;
	store_journal_pos(st, &seq, NULL, &epoch);
	if (store_promoted_epoch(st, &promoted) != STORE_OK)
		promoted = 0;
	return !(promoted != 0 && promoted == epoch);
}

/*
 * The role: a standby when [replica] primary is set, unless this store
 * was promoted and has taken nothing newer since (its epoch is still the
 * promotion's).  A primary with [replica] peers asks them first: a peer
 * at a newer epoch replaced it, and it follows that peer.
 */
int
repl_init(struct micad *d, char *err, size_t err_len)
{
	const struct mica_conf *c = d->conf;
	char list[CONF_STR_MAX], *tok, *p, *save = NULL, perr[1024];
	uint64_t seq, epoch, promoted = 0, pe, ps;
	int pprim;

	R.d = d;
	pthread_mutex_init(&R.mu, NULL);
	R.primary_on = c->replica.listen[0] != '\0';
	store_journal_pos(d->store, &seq, NULL, &epoch);
	if (store_promoted_epoch(d->store, &promoted) != STORE_OK)
		promoted = 0;
	if (c->replica.primary[0] != '\0' && !(promoted != 0 &&
	    promoted == epoch)) {
		R.standby = 1;
		snprintf(R.primary, sizeof(R.primary), "%s",
		    c->replica.primary);
	} else if (c->replica.primary[0] != '\0')
		log_info("promoted at epoch %" PRIu64 ": a primary ([replica] "
		    "primary %s is the old one)", promoted,
		    c->replica.primary);
	if (!R.standby && c->replica.peers[0] != '\0') {
		if ((R.cctx = client_ctx(c, err, err_len)) == NULL)
			return 0;
		snprintf(list, sizeof(list), "%s", c->replica.peers);
		for (p = list; (tok = strtok_r(p, ", \t", &save)) != NULL;
		    p = NULL) {
			if (!peer_epoch(tok, &pe, &ps, &pprim, perr,
			    sizeof(perr))) {
				log_warnx("replica peer %s: %s (going on as "
				    "the primary)", tok, perr);
				continue;
			}
			log_info("replica peer %s: %s, epoch %" PRIu64 " seq %"
			    PRIu64 "; ours: epoch %" PRIu64 " seq %" PRIu64,
			    tok, pprim ? "a primary" : "a standby", pe, ps,
			    epoch, seq);
			/* a primary at our epoch or a newer one replaced us
			 * (a promotion raises the epoch) */
			if (pprim && pe >= epoch) {
				R.standby = 1;
				snprintf(R.primary, sizeof(R.primary), "%s",
				    tok);
				snprintf(R.why_standby, sizeof(R.why_standby),
				    "the peer %.200s is a primary at epoch %"
				    PRIu64 " (this store's: %" PRIu64 "): it "
				    "was promoted, and this server follows it",
				    tok, pe, epoch);
				log_warnx("%s; writes are refused",
				    R.why_standby);
				break;
			}
		}
		R.primary[0] = R.standby ? R.primary[0] : '\0';
	}
	store_set_standby(d->store, R.standby);
	if (!R.standby)
		return 1;
	if (c->store.journal_dir[0] == '\0') {
		snprintf(err, err_len, "[replica] primary: a standby needs its "
		    "own journal ([store] journal_dir)");
		return 0;
	}
	if (R.cctx == NULL && (R.cctx = client_ctx(c, err, err_len)) == NULL)
		return 0;
	snprintf(R.state, sizeof(R.state), "starting");
	log_info("standby of %s: the store takes changes only from it",
	    R.primary);
	return 1;
}

int
repl_promote(char *msg, size_t msg_len)
{
	const struct mica_conf *c = R.d->conf;
	uint64_t seq, epoch;
	enum store_rc rc;

	if (!R.standby) {
		snprintf(msg, msg_len, "this server is a primary already");
		return 0;
	}
	/* The signer loaded [ca] key at start and checked that it matches
	 * ca.crt (it refuses to start otherwise): present means usable. */
	if (c->ca.key[0] == '\0' || (!ca_key_is_uri(c->ca.key) &&
	    access(c->ca.key, F_OK) != 0)) {
		snprintf(msg, msg_len, "refused: no CA key here ([ca] key %s): "
		    "copy the CA key file (or use the same HSM) first",
		    c->ca.key[0] ? c->ca.key : "is not set");
		return 0;
	}
	atomic_store(&R.follow_stop, 1);
	if (R.standby_on)
		pthread_join(R.standby_th, NULL);
	R.standby_on = 0;
	store_journal_pos(R.d->store, &seq, NULL, &epoch);
	if ((rc = store_promote(R.d->store, epoch + 1)) != STORE_OK) {
		snprintf(msg, msg_len, "cannot write the new epoch: %s",
		    store_strerror(rc));
		return 0;
	}
	set_state("promoted", NULL);
	R.restart = 1;
	log_warnx("promoted: epoch %" PRIu64 " from seq %" PRIu64 " on; "
	    "micad restarts as the primary", epoch + 1, seq);
	snprintf(msg, msg_len, "promoted: epoch %" PRIu64 " at seq %" PRIu64
	    "; micad restarts as the primary (the old primary, if it comes "
	    "back with [replica] peers set to this server, stays a "
	    "standby)\n", epoch + 1, seq);
	kill(getpid(), SIGTERM);
	return 1;
}

void
repl_restart(char **argv)
{
	if (!R.restart)
		return;
	log_info("restarting as the primary");
	execv("/proc/self/exe", argv);
	log_warn("cannot run micad again (exec)");
	exit(75);	/* EX_TEMPFAIL: a service manager restarts it */
}

int
repl_start(struct micad *d)
{
	(void)d;
	if (R.primary_on && R.lfd != -1) {
		if (pthread_create(&R.accept_th, NULL, accept_main, NULL) != 0)
			return 0;
		R.accept_on = 1;
		log_info("replication: listening on %s",
		    R.d->conf->replica.listen);
	}
	if (R.standby) {
		if (pthread_create(&R.standby_th, NULL, standby_main, NULL) !=
		    0)
			return 0;
		R.standby_on = 1;
	}
	return 1;
}

void
repl_stop(void)
{
	int i;

	atomic_store(&R.stopping, 1);
	if (R.accept_on)
		pthread_join(R.accept_th, NULL);
	R.accept_on = 0;
	if (R.standby_on)
		pthread_join(R.standby_th, NULL);
	R.standby_on = 0;
	if (R.lfd != -1)
		close(R.lfd);
	R.lfd = -1;
	SSL_CTX_free(R.sctx);
	SSL_CTX_free(R.cctx);
	R.sctx = R.cctx = NULL;
	for (i = 0; i < 2; i++) {
		free(R.crl[i]);
		R.crl[i] = NULL;
	}
}

int
repl_is_standby(void)
{
	return R.standby;
}

/* Writes refused because this is a standby: [0] admin, [1] CA protocol
 * (this run; /metrics). */
static atomic_uint_fast64_t refused_writes[2];

int
repl_refuse_admin(const char *cmd, const char *sub, char *msg,
    size_t msg_len)
{
	static const char *const reads[] = {
		"status", "show", "list", "audit", "backup", "digest",
		"requests", "check", "promote", "replica",
	};
	size_t i;

	if (!R.standby)
		return 0;
	if (strcmp(cmd, "replica") == 0 && strcmp(sub, "record") == 0)
		goto refuse;	/* replica add while micad runs: a write */
	for (i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		if (strcmp(cmd, reads[i]) == 0)
			return 0;
	if (strcmp(cmd, "account") == 0 && strcmp(sub, "list") == 0)
		return 0;
 refuse:
	atomic_fetch_add(&refused_writes[0], 1);
	snprintf(msg, msg_len, "this server is a standby; the primary is %s",
	    R.primary);
	return 1;
}

int
repl_refuse_proto(int type, char *msg, size_t msg_len)
{
	if (!R.standby || type == PROTO_HELLO || type == PROTO_FETCH ||
	    type == PROTO_STATUS)
		return 0;
	atomic_fetch_add(&refused_writes[1], 1);
	/* [replica] primary is the primary's replication address: its
	 * host is the one to ask, its CA protocol port is its own */
	snprintf(msg, msg_len, "this server is a standby; the primary is "
	    "%.300s ([replica] primary): ask the primary's CA address; "
	    "only FETCH and STATUS are answered here", R.primary);
	return 1;
}

struct lag {
	uint64_t	applied;
	uint64_t	head;
	uint64_t	lag_records;
	uint64_t	lag_ms;
	uint64_t	epoch;
	char		state[64];
	char		last_error[1100];
	int		followers;
	uint64_t	sent;
};

static void
lag_get(struct lag *l)
{
	uint64_t now = now_us();

	memset(l, 0, sizeof(*l));
	store_journal_pos(R.d->store, &l->applied, NULL, &l->epoch);
	pthread_mutex_lock(&R.mu);
	l->head = R.head_seq > l->applied ? R.head_seq : l->applied;
	l->lag_records = l->head - l->applied;
	if (l->lag_records > 0 && R.last_rec_time_us != 0 &&
	    now > R.last_rec_time_us)
		l->lag_ms = (now - R.last_rec_time_us) / 1000;
	snprintf(l->state, sizeof(l->state), "%s", R.state);
	snprintf(l->last_error, sizeof(l->last_error), "%s", R.last_error);
	l->followers = R.num_followers;
	l->sent = R.sent_records;
	pthread_mutex_unlock(&R.mu);
}

static void
json_str(struct wb *out, const char *k, const char *v)
{
	size_t i;
	char e[8];

	wb_str(out, ",\"");
	wb_str(out, k);
	wb_str(out, "\":\"");
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] == '"' || v[i] == '\\') {
			wb_u8(out, '\\');
			wb_u8(out, (uint8_t)v[i]);
		} else if ((unsigned char)v[i] < 0x20) {
			snprintf(e, sizeof(e), "\\u%04x", v[i]);
			wb_str(out, e);
		} else
			wb_u8(out, (uint8_t)v[i]);
	}
	wb_u8(out, '"');
}

static void
json_u64(struct wb *out, const char *k, uint64_t v)
{
	char b[64];

	snprintf(b, sizeof(b), ",\"%s\":%" PRIu64, k, v);
	wb_str(out, b);
}

void
repl_status(struct wb *out, int json)
{
	struct lag l;
	char line[2400];

	if (R.d == NULL)
		return;
	lag_get(&l);
	if (json) {
		json_str(out, "role", R.standby ? "standby" : "primary");
		if (R.standby) {
			json_str(out, "replica_primary", R.primary);
			json_str(out, "replica_state", l.state);
			json_u64(out, "replica_applied_seq", l.applied);
			json_u64(out, "replica_primary_seq", l.head);
			json_u64(out, "replica_lag_records", l.lag_records);
			json_u64(out, "replica_lag_ms", l.lag_ms);
			json_str(out, "replica_last_error", l.last_error);
		} else if (R.primary_on)
			json_u64(out, "replica_standbys", (uint64_t)
			    l.followers);
		return;
	}
	if (!R.standby) {
		if (R.primary_on)
			snprintf(line, sizeof(line), "role: primary (epoch %"
			    PRIu64 "), replication on %s, %d standby(s) "
			    "connected, sent up to seq %" PRIu64 "\n",
			    l.epoch, R.d->conf->replica.listen, l.followers,
			    l.sent);
		else
			snprintf(line, sizeof(line), "role: primary (epoch %"
			    PRIu64 ")\n", l.epoch);
		wb_str(out, line);
		return;
	}
	snprintf(line, sizeof(line), "role: standby of %s (epoch %" PRIu64
	    "): %s\nreplica: applied seq %" PRIu64 ", primary at seq %" PRIu64
	    ", lag %" PRIu64 " records, %" PRIu64 " ms\n", R.primary, l.epoch,
	    l.state, l.applied, l.head, l.lag_records, l.lag_ms);
	wb_str(out, line);
	if (l.last_error[0] != '\0') {
		snprintf(line, sizeof(line), "replica last error: %s\n",
		    l.last_error);
		wb_str(out, line);
	}
	if (R.why_standby[0] != '\0') {
		snprintf(line, sizeof(line), "replica: a standby because %s\n",
		    R.why_standby);
		wb_str(out, line);
	}
}

static void
metric(struct wb *m, const char *name, const char *help, uint64_t v)
{
	char line[512];

	snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s gauge\n%s %"
	    PRIu64 "\n", name, help, name, name, v);
	wb_str(m, line);
}

void
repl_metrics(struct wb *m)
{
	struct lag l;
	char line[256];

	if (R.d == NULL)
		return;
	lag_get(&l);
	metric(m, "mica_replica_standby", "1 on a standby, 0 on a primary",
	    (uint64_t)R.standby);
	metric(m, "mica_replica_epoch", "the journal's epoch", l.epoch);
	if (R.standby) {
		metric(m, "mica_replica_connected", "1 while following the "
		    "primary", strcmp(l.state, "following") == 0);
		metric(m, "mica_replica_stopped", "1 after a bad record "
		    "stopped following", (uint64_t)R.stopped);
		metric(m, "mica_replica_applied_seq", "last journal record "
		    "applied", l.applied);
		metric(m, "mica_replica_primary_seq", "the primary's last "
		    "record (heartbeat)", l.head);
		metric(m, "mica_replica_lag_records", "records behind the "
		    "primary", l.lag_records);
		metric(m, "mica_replica_lag_ms", "ms since the last applied "
		    "record's commit on the primary, when behind",
		    l.lag_ms);
		wb_str(m, "# HELP mica_replica_writes_refused_total Writes "
		    "refused because this server is a standby, by where they "
		    "came (admin socket, CA protocol: ERROR 14); this run.\n"
		    "# TYPE mica_replica_writes_refused_total counter\n");
		snprintf(line, sizeof(line), "mica_replica_writes_refused_total"
		    "{via=\"admin\"} %" PRIu64 "\n"
		    "mica_replica_writes_refused_total{via=\"protocol\"} %"
		    PRIu64 "\n", (uint64_t)atomic_load(&refused_writes[0]),
		    (uint64_t)atomic_load(&refused_writes[1]));
		wb_str(m, line);
	} else
		metric(m, "mica_replica_standbys", "standbys connected",
		    (uint64_t)l.followers);
}

int
repl_crl_info(int kind, uint64_t *number, int64_t *next_update)
{
	int have;

	*number = 0;
	*next_update = 0;
	if (!R.standby || kind < 0 || kind > 1)
		return 0;
	pthread_mutex_lock(&R.mu);
	have = R.crl[kind] != NULL;
	if (have) {
		*number = R.crl_number[kind];
		*next_update = R.crl_next[kind];
	}
	pthread_mutex_unlock(&R.mu);
	return have;
}

int
repl_crl_http(struct ocsp_http_req *req, const char *path)
{
	enum ocsp_http_method m = ocsp_http_req_method(req);
	int kind;
	size_t plen = strcspn(path, "?#");

	if (!R.standby)
		return 0;
	if ((plen == 4 && strncmp(path, "/crl", 4) == 0) ||
	    (plen == 13 && strncmp(path, "/crl/full.crl", 13) == 0))
		kind = 0;
	else if (plen == 14 && strncmp(path, "/crl/delta.crl", 14) == 0)
		kind = 1;
	else {
		ocsp_http_send_error(req, 404, "Not Found");
		return 1;
	}
	if (m != OCSP_HTTP_GET && m != OCSP_HTTP_HEAD) {
		ocsp_http_add_header(req, "Allow", "GET, HEAD");
		ocsp_http_send_error(req, 405, "Method Not Allowed");
		return 1;
	}
	pthread_mutex_lock(&R.mu);
	if (R.crl[kind] == NULL) {
		pthread_mutex_unlock(&R.mu);
		ocsp_http_send_error(req, 503, "Service Unavailable");
		return 1;
	}
	if (!ocsp_http_body_add(req, R.crl[kind], R.crl_len[kind])) {
		pthread_mutex_unlock(&R.mu);
		ocsp_http_send_error(req, 500, "Internal Server Error");
		return 1;
	}
	pthread_mutex_unlock(&R.mu);
	ocsp_http_add_header(req, "Content-Type", "application/pkix-crl");
	ocsp_http_add_header(req, "Cache-Control", "max-age=60, public");
	ocsp_http_send(req, 200, "OK");
	return 1;
}
