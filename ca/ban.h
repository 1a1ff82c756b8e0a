/*
 * ban.h - HTTP BAN requests to the caches in front of the OCSP
 * responder ([http] ban_urls, e.g. Varnish with conf/varnish/mica.vcl).
 *
 * After a commit that changed certificate statuses, and before anyone is
 * told, micad sends every cache one
 *
 *   BAN / HTTP/1.1
 *   X-Mica-Ban: (^|,)(SERIAL|SERIAL...)(,|$)
 *
 * (a regular expression over the X-Mica-Serials field of the cached OCSP
 * answers), all caches at once over non-blocking sockets, the whole
 * bounded by [http] ban_timeout_ms.  A cache that does not answer 200 in
 * time is counted and logged (once a minute per cache); the
 * acknowledgement goes on (the answers' short max-age bounds how long
 * that cache may serve a stale one).
 */
#ifndef MICA_BAN_H
#define MICA_BAN_H

#include <stddef.h>
#include <stdint.h>

struct wb;
struct ban;

#define BAN_EXPR_MAX	4096	/* X-Mica-Ban value; more serials: "." */
#define BAN_RESP_MAX	4096	/* bytes of a cache's answer read */
#define BAN_ERR_MAX	96

/* The X-Mica-Ban value for one commit batch, built serial by serial. */
struct ban_expr {
	char	text[BAN_EXPR_MAX];
	size_t	len;
	int	num;		/* serials added */
	int	all;		/* too many: ban every OCSP answer */
};

void	ban_expr_init(struct ban_expr *);
/* Adds a 16-byte big-endian serial. */
void	ban_expr_add(struct ban_expr *, const uint8_t serial[16]);
/* The regular expression (NUL-terminated, borrowed); "" when empty. */
const char *ban_expr_get(struct ban_expr *);

/* One cache's counters, for mica-admin status and /metrics. */
struct ban_cache_stat {
	char		url[128];
	uint64_t	bans;		/* BANs answered 200 */
	uint64_t	failures;	/* refused, timed out, not 200 */
	int64_t		last_ok;	/* unix s of the last 200, 0: never */
	int64_t		last_failure;	/* unix s, 0: never */
	char		last_error[BAN_ERR_MAX];
};

/*
 * A ban client for urls ("http://HOST:PORT" separated by spaces or
 * commas; hosts resolved now).  Returns NULL with the reason in err, or
 * when urls names no cache (then err is "").  ban_free takes NULL.
 */
struct ban	*ban_new(const char *urls, int timeout_ms, char *err,
		    size_t err_len);
void		 ban_free(struct ban *);
int		 ban_num_caches(const struct ban *);

/*
 * Sends BAN with X-Mica-Ban: expr to every cache in parallel, waiting at
 * most the timeout for all.  Returns how many caches answered 200.
 * Failures are counted and logged (rate-limited).  One thread at a time
 * (micad: the writer thread); the counters may be read meanwhile.
 */
int	ban_send(struct ban *, const char *expr);
/* ban_send with e's expression; nothing is sent for an empty e. */
int	ban_send_expr(struct ban *, struct ban_expr *e);

/* Copies cache i's counters; 0 when there is no cache i.  Any thread. */
int	ban_stat(struct ban *, int i, struct ban_cache_stat *out);
/* mica_cache_bans_total and mica_cache_ban_failures_total, per cache. */
void	ban_metrics_append(struct ban *, struct wb *);

enum ban_status {
	BAN_STATUS_MORE = 0,	/* no complete status line yet */
	BAN_STATUS_OK,		/* *out_code holds the status code */
	BAN_STATUS_BAD		/* not an HTTP/1.x status line */
};

/*
 * Parses the status line at the start of a cache's answer buf[0..len)
 * ("HTTP/1.1 200 OK\r\n"; RFC 9112 4).  Looks at no byte past len.
 */
enum ban_status	ban_parse_status(const uint8_t *buf, size_t len,
		    int *out_code);

#endif
