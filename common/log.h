/*
 * log.h - leveled logging to stderr for all mica programs.
 *
 * Lines look like "micad: info: req=12 reissue approved serial=AB..",
 * after log_stamp_auto with the time in front.
 * One write(2) per line, so lines from several threads never interleave.
 * Never pass a secret to these functions.
 */
#ifndef MICA_LOG_H
#define MICA_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/* Sets the program name printed before every line and the threshold. */
void	log_init(const char *progname, int level);
/* Daemons: start each line with "2026-12-02T11:08:15Z " (RFC 3339, UTC)
 * unless stderr is the systemd journal (JOURNAL_STREAM), which adds its
 * own time. */
void	log_stamp_auto(void);
void	log_setlevel(int level);
int	log_getlevel(void);
/*
 * Step timing for start and stop (debug lines "start: STEP +12.3 ms"):
 * log_clock_mark sets the origin (CLOCK_MONOTONIC; a forked child
 * inherits it), log_clock_ms gives the milliseconds since then.
 */
void	log_clock_mark(void);
double	log_clock_ms(void);
/* Parses "error|warn|info|debug"; returns the level or -1. */
int	log_level_parse(const char *name);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* fatal appends strerror(errno); both exit(1). */
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Logs "what: <drained OpenSSL error queue>" at warn level. */
void	log_ssl(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Drains the OpenSSL error queue into buf (for messages sent to a client). */
void	ssl_errstr(char *buf, size_t len);

#endif
