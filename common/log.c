/*
 * log.c - leveled logging to stderr.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "common/log.h"

static const char *log_prog = "mica";
/* Set on the main thread (SIGHUP), read by all: atomic. */
static _Atomic int log_level = LOG_LVL_INFO;

/* 1: lines start with the UTC time (stderr is not the journal). */
static _Atomic int log_stamp;

static const char *level_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *progname, int level)
{
	log_prog = progname;
	log_level = level;
}

/*
 * systemd sets JOURNAL_STREAM=DEV:INODE when stderr is the journal, which
 * stamps every line itself; anything else (a terminal, a file, a pipe)
 * gets an RFC 3339 UTC time in front of each line.
 */
void
log_stamp_auto(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	struct stat sb;
	char end;

	log_stamp = 1;
	if (js != NULL && sscanf(js, "%ju:%ju%c", &dev, &ino, &end) == 2 &&
	    fstat(STDERR_FILENO, &sb) == 0 && (uintmax_t)sb.st_dev == dev &&
	    (uintmax_t)sb.st_ino == ino)
		log_stamp = 0;
}

static struct timespec log_t0;

void
log_clock_mark(void)
{
	(void)clock_gettime(CLOCK_MONOTONIC, &log_t0);
}

double
log_clock_ms(void)
{
	struct timespec now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - log_t0.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - log_t0.tv_nsec) / 1e6;
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

int
log_level_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	if (strcmp(name, "warning") == 0)
		return LOG_LVL_WARN;
	return -1;
}

static void
vlog(int level, const char *suffix, const char *fmt, va_list ap)
{
	char line[2048];
	int n, m;

	if (level > log_level)
		return;
	n = 0;
	if (log_stamp) {
		struct tm tm;
		time_t now = time(NULL);

		gmtime_r(&now, &tm);
		n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ",
		    &tm);
	}
	m = snprintf(line + n, sizeof(line) - n, "%s: %s: ", log_prog,
	    level_names[level]);
	if (m < 0 || (size_t)(n + m) >= sizeof(line))
		return;
	n += m;
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n >= sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (suffix != NULL) {
		m = snprintf(line + n, sizeof(line) - n, ": %s", suffix);
		if (m > 0)
			n += m;
		if ((size_t)n >= sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, strerror(saved), fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

void
ssl_errstr(char *buf, size_t len)
{
	unsigned long e;
	size_t off = 0;
	int n;

	if (len == 0)
		return;
	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		char one[256];

		ERR_error_string_n(e, one, sizeof(one));
		n = snprintf(buf + off, len - off, "%s%s", off ? "; " : "",
		    one);
		if (n < 0 || (size_t)n >= len - off) {
			ERR_clear_error();
			break;
		}
		off += n;
	}
	if (off == 0)
		snprintf(buf, len, "no OpenSSL error reported");
}

void
log_ssl(const char *fmt, ...)
{
	va_list ap;
	char err[1024];

	ssl_errstr(err, sizeof(err));
	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, err, fmt, ap);
	va_end(ap);
}
