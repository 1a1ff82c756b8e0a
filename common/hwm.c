/*
 * hwm.c - the high-water mark file (see hwm.h for the format and why it
 * lives outside the store).
 */
#include <sys/stat.h>

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

#include "common/hwm.h"
#include "common/log.h"

#define HWM_MAGIC	"mica-hwm"
#define HWM_KEY_MAX	64
#define HWM_VAL_MAX	256
#define HWM_EXTRA_MAX	64	/* unknown keys kept */

struct hwm_extra {
	char	key[HWM_KEY_MAX + 1];
	char	val[HWM_VAL_MAX + 1];
};

struct hwm {
	pthread_mutex_t		mu;
	char			*path;
	struct hwm_state	st;
	struct hwm_extra	extra[HWM_EXTRA_MAX];
	size_t			num_extra;
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

struct hwm *
hwm_new(const char *path)
{
	struct hwm *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if ((h->path = strdup(path != NULL ? path : "")) == NULL) {
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->mu, NULL);
	return h;
}

void
hwm_free(struct hwm *h)
{
	if (h == NULL)
		return;
	pthread_mutex_destroy(&h->mu);
	free(h->path);
	free(h);
}

const char *
hwm_path(const struct hwm *h)
{
	return h->path;
}

/* Strict decimal: digits only, no sign, no leading zero, no overflow. */
static int
parse_dec(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 1;
}

/* Exactly 16 lowercase hex digits. */
static int
parse_id(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;
	int d;

	for (i = 0; i < 16; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else
			return 0;
		v = v << 4 | (uint64_t)d;
	}
	if (s[16] != '\0')
		return 0;
	*out = v;
	return 1;
}

static int
key_ok(const char *k, size_t n)
{
	size_t i;

	if (n == 0 || n > HWM_KEY_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') ||
		    (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return 0;
	return 1;
}

static int
val_ok(const char *v, size_t n)
{
	size_t i;

	if (n == 0 || n > HWM_VAL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] > '~')
			return 0;
	return 1;
}

enum { K_ID, K_CRL, K_REV, K_JOURNAL, K_NUM };
static const char *known[K_NUM] = {
	"store_id", "crl_number", "rev_seq", "journal_seq",
};

/* One "key value" line (NUL-terminated, no newline) into h. */
static int
parse_line(struct hwm *h, char *line, size_t lineno, int *seen, char *err,
    size_t err_len)
{
	char *sp, *val;
	uint64_t *dst[K_NUM] = { &h->st.store_id, &h->st.crl_number,
	    &h->st.rev_seq, &h->st.journal_seq };
	size_t i;
	int k = -1, ok;

	if ((sp = strchr(line, ' ')) == NULL) {
		seterr(err, err_len, "line %zu: not \"key value\"", lineno);
		return 0;
	}
	*sp = '\0';
	val = sp + 1;
	if (!key_ok(line, strlen(line)) || !val_ok(val, strlen(val))) {
		seterr(err, err_len, "line %zu: bad key or value (key: "
		    "[a-z0-9_]{1,%d}, value: 1..%d printable characters, no "
		    "space)", lineno, HWM_KEY_MAX, HWM_VAL_MAX);
		return 0;
	}
	for (i = 0; i < K_NUM; i++)
		if (strcmp(line, known[i]) == 0)
			k = (int)i;
	if (k >= 0) {
		if (seen[k]) {
			seterr(err, err_len, "line %zu: %s given twice",
			    lineno, line);
			return 0;
		}
		seen[k] = 1;
		ok = k == K_ID ? parse_id(val, dst[k]) : parse_dec(val, dst[k]);
		if (!ok) {
			seterr(err, err_len, "line %zu: %s: bad value \"%.32s\""
			    " (%s)", lineno, line, val, k == K_ID ?
			    "16 lowercase hex digits" : "a decimal number");
			return 0;
		}
		return 1;
	}
	for (i = 0; i < h->num_extra; i++)
		if (strcmp(h->extra[i].key, line) == 0) {
			seterr(err, err_len, "line %zu: %s given twice",
			    lineno, line);
			return 0;
		}
	if (h->num_extra >= HWM_EXTRA_MAX) {
		seterr(err, err_len, "line %zu: more than %d unknown keys",
		    lineno, HWM_EXTRA_MAX);
		return 0;
	}
	snprintf(h->extra[h->num_extra].key, HWM_KEY_MAX + 1, "%s", line);
	snprintf(h->extra[h->num_extra].val, HWM_VAL_MAX + 1, "%s", val);
	h->num_extra++;
	return 1;
}

int
hwm_parse(struct hwm *h, const char *text, size_t len, char *err,
    size_t err_len)
{
	char line[HWM_KEY_MAX + HWM_VAL_MAX + 8];
	char head[32];
	size_t pos = 0, n, lineno = 0;
	uint64_t ver;
	int seen[K_NUM] = { 0 }, ended = 0;
	const char *nl;

	memset(&h->st, 0, sizeof(h->st));
	h->num_extra = 0;
	if (len == 0) {
		seterr(err, err_len, "empty file");
		return 0;
	}
	if (len > HWM_FILE_MAX) {
		seterr(err, err_len, "larger than %d bytes", HWM_FILE_MAX);
		return 0;
	}
	while (pos < len) {
		lineno++;
		if ((nl = memchr(text + pos, '\n', len - pos)) == NULL) {
			seterr(err, err_len, "line %zu: truncated (no newline; "
			    "the file must end with an \"end\" line)", lineno);
			return 0;
		}
		n = (size_t)(nl - (text + pos));
		if (n >= sizeof(line) || memchr(text + pos, '\0', n) != NULL) {
			seterr(err, err_len, "line %zu: too long or binary",
			    lineno);
			return 0;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if (ended) {
			seterr(err, err_len, "line %zu: text after \"end\"",
			    lineno);
			return 0;
		}
		if (lineno == 1) {
			snprintf(head, sizeof(head), "%s ", HWM_MAGIC);
			if (strncmp(line, head, strlen(head)) != 0 ||
			    !parse_dec(line + strlen(head), &ver)) {
				seterr(err, err_len, "line 1: not a mica "
				    "high-water mark (want \"%s %d\")",
				    HWM_MAGIC, HWM_VERSION);
				return 0;
			}
			if (ver != HWM_VERSION) {
				seterr(err, err_len, "line 1: version %" PRIu64
				    " (this micad reads version %d)", ver,
				    HWM_VERSION);
				return 0;
			}
			continue;
		}
		if (strcmp(line, "end") == 0) {
			ended = 1;
			continue;
		}
		if (!parse_line(h, line, lineno, seen, err, err_len))
			return 0;
	}
	if (!ended) {
		seterr(err, err_len, "truncated: no \"end\" line");
		return 0;
	}
	if (!seen[K_ID] || !seen[K_CRL] || !seen[K_REV]) {
		seterr(err, err_len, "missing %s", !seen[K_ID] ? "store_id" :
		    !seen[K_CRL] ? "crl_number" : "rev_seq");
		return 0;
	}
	return 1;
}

static enum hwm_rc
read_file(const char *path, char **out, size_t *out_len, char *err,
    size_t err_len)
{
	struct stat sb;
	char *buf = NULL;
	size_t n = 0;
	ssize_t r;
	int fd;
	enum hwm_rc rc = HWM_IO;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return HWM_MISSING;
		seterr(err, err_len, "%s: %s", path, strerror(errno));
		return HWM_IO;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		seterr(err, err_len, "%s: not a regular file", path);
		goto out;
	}
	if (sb.st_size > HWM_FILE_MAX) {
		seterr(err, err_len, "%s: larger than %d bytes", path,
		    HWM_FILE_MAX);
		rc = HWM_CORRUPT;
		goto out;
	}
	if ((buf = malloc(HWM_FILE_MAX + 1)) == NULL)
		fatal("malloc");
	while (n < HWM_FILE_MAX + 1) {
		r = read(fd, buf + n, HWM_FILE_MAX + 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			seterr(err, err_len, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = buf;
	*out_len = n;
	buf = NULL;
	rc = HWM_OK;
out:
	free(buf);
	close(fd);
	return rc;
}

enum hwm_rc
hwm_load(struct hwm **out, const char *path, char *err, size_t err_len)
{
	struct hwm *h = NULL;
	char *text = NULL, why[256];
	size_t len = 0;
	enum hwm_rc rc;

	*out = NULL;
	if ((h = hwm_new(path)) == NULL)
		fatalx("out of memory");
	rc = read_file(path, &text, &len, err, err_len);
	if (rc == HWM_OK && !hwm_parse(h, text, len, why, sizeof(why))) {
		seterr(err, err_len, "%s: %s", path, why);
		rc = HWM_CORRUPT;
	}
	if (rc == HWM_OK || rc == HWM_MISSING) {
		*out = h;
		h = NULL;
	}
	free(text);
	hwm_free(h);
	return rc;
}

void
hwm_get(struct hwm *h, struct hwm_state *out)
{
	pthread_mutex_lock(&h->mu);
	*out = h->st;
	pthread_mutex_unlock(&h->mu);
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		if ((w = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		p += w;
		len -= (size_t)w;
	}
	return 1;
}

/* The file text for st plus the kept unknown keys; malloc'd. */
static char *
format(const struct hwm *h, const struct hwm_state *st, size_t *out_len)
{
	size_t cap = 256 + h->num_extra * (HWM_KEY_MAX + HWM_VAL_MAX + 2);
	size_t n, i;
	char *buf;

	if ((buf = malloc(cap)) == NULL)
		fatal("malloc");
	n = (size_t)snprintf(buf, cap, "%s %d\nstore_id %016" PRIx64
	    "\ncrl_number %" PRIu64 "\nrev_seq %" PRIu64 "\njournal_seq %"
	    PRIu64 "\n", HWM_MAGIC, HWM_VERSION, st->store_id,
	    st->crl_number, st->rev_seq, st->journal_seq);
	for (i = 0; i < h->num_extra; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s %s\n",
		    h->extra[i].key, h->extra[i].val);
	n += (size_t)snprintf(buf + n, cap - n, "end\n");
	*out_len = n;
	return buf;
}

/* Temp file next to path, fsync, rename, fsync the directory. */
static int
write_durable(const struct hwm *h, const struct hwm_state *st)
{
	char tmp[PATH_MAX], dir[PATH_MAX], *slash, *text;
	size_t len;
	int fd = -1, dfd = -1, rc = 0;

	text = format(h, st, &len);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", h->path) >=
	    sizeof(tmp)) {
		log_warnx("hwm: %s: path too long", h->path);
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", h->path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	/* a leftover (crash) or planted temp file is removed, not followed */
	if (unlink(tmp) == -1 && errno != ENOENT) {
		log_warn("hwm: remove %s", tmp);
		goto out;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		log_warn("hwm: create %s", tmp);
		goto out;
	}
	if (!write_all(fd, text, len) || fsync(fd) == -1) {
		log_warn("hwm: write %s", tmp);
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		log_warn("hwm: close %s", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, h->path) == -1) {
		log_warn("hwm: rename %s", h->path);
		goto out;
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(dfd) == -1) {
		log_warn("hwm: fsync %s", dir);
		goto out;
	}
	rc = 1;
out:
	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	if (dfd != -1)
		close(dfd);
	free(text);
	return rc;
}

int
hwm_set(struct hwm *h, const struct hwm_state *st)
{
	int rc;

	pthread_mutex_lock(&h->mu);
	if ((rc = write_durable(h, st)))
		h->st = *st;
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int
hwm_raise(struct hwm *h, uint64_t crl_number, uint64_t rev_seq)
{
	struct hwm_state st;
	int rc = 1;

	pthread_mutex_lock(&h->mu);
	st = h->st;
	if (crl_number > st.crl_number)
		st.crl_number = crl_number;
	if (rev_seq > st.rev_seq)
		st.rev_seq = rev_seq;
	if (st.crl_number != h->st.crl_number || st.rev_seq != h->st.rev_seq) {
		if ((rc = write_durable(h, &st)))
			h->st = st;
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}
