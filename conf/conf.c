/*
 * conf.c - mica.conf: OpenSSL NCONF syntax, every key checked.
 *
 * NCONF reports syntax errors with a line number, but not where a key
 * stands, so the file is also scanned once to map "[section] key" to its
 * line for value errors.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/conf.h>
#include <openssl/err.h>
#include <sodium.h>

#include "common/log.h"
#include "conf/conf.h"

enum ktype {
	K_STR,		/* text, copied */
	K_PATH,		/* file name, relative to the config's directory */
	K_KEY,		/* K_PATH, or a pkcs11: URI (RFC 7512) kept as is */
	K_INT,		/* int in [min, max] */
	K_SIZE,		/* u64 with optional K/M/G suffix, in [min, max] */
	K_U32,		/* uint32_t in [min, max], K/M suffix allowed */
	K_BOOL,		/* yes/no/true/false/1/0 */
	K_REVIEW,	/* manual|auto */
	K_RENEW,	/* auto|manual|off */
	K_LOGLEVEL,	/* error|warn|info|debug */
	K_UIDS,		/* comma-separated uids */
	K_NETS,		/* comma-separated addresses or prefixes */
	K_LISTEN,	/* host:port */
	K_URL,		/* http://... */
};

struct key {
	const char	*section;
	const char	*name;
	enum ktype	 type;
	size_t		 off;
	size_t		 size;		/* for strings */
	uint64_t	 min, max;
};

#define S(f)	offsetof(struct mica_conf, f), sizeof(((struct mica_conf *)0)->f)
#define N(f)	offsetof(struct mica_conf, f), 0

static const struct key keys[] = {
	{ "ca", "cert", K_PATH, S(ca.cert), 0, 0 },
	{ "ca", "chain", K_PATH, S(ca.chain), 0, 0 },
	{ "ca", "key", K_KEY, S(ca.key), 0, 0 },
	{ "ca", "key_passphrase_file", K_PATH, S(ca.key_passphrase_file), 0, 0 },
	{ "ca", "ocsp_cert", K_PATH, S(ca.ocsp_cert), 0, 0 },
	{ "ca", "ocsp_key", K_KEY, S(ca.ocsp_key), 0, 0 },
	{ "ca", "pkcs11_module", K_PATH, S(ca.pkcs11_module), 0, 0 },
	{ "ca", "tls_cert", K_PATH, S(ca.tls_cert), 0, 0 },
	{ "ca", "tls_key", K_PATH, S(ca.tls_key), 0, 0 },
	{ "ca", "http_url", K_URL, S(ca.http_url), 0, 0 },
	{ "ca", "old_http_urls", K_STR, S(ca.old_http_urls), 0, 0 },
	{ "ca", "default_days", K_INT, N(ca.default_days), 1, 36500 },
	{ "ca", "key_usage", K_STR, S(ca.key_usage), 0, 0 },
	{ "ca", "ext_key_usage", K_STR, S(ca.ext_key_usage), 0, 0 },
	{ "ca", "copy_san", K_BOOL, N(ca.copy_san), 0, 0 },
	{ "ca", "renew_before_days", K_INT, N(ca.renew_before_days), 0, 36500 },

	{ "protocol", "listen", K_LISTEN, S(proto.listen), 0, 0 },
	{ "protocol", "max_connections", K_INT, N(proto.max_connections), 1, 100000 },
	{ "protocol", "max_per_address", K_INT, N(proto.max_per_address), 1, 100000 },
	{ "protocol", "shed_start", K_INT, N(proto.shed_start), 0, 100 },
	{ "protocol", "handshake_timeout", K_INT, N(proto.handshake_timeout), 1, 3600 },
	{ "protocol", "idle_timeout", K_INT, N(proto.idle_timeout), 1, 86400 },
	{ "protocol", "login_timeout", K_INT, N(proto.login_timeout), 1, 3600 },
	{ "protocol", "max_frame", K_U32, N(proto.max_frame), 1024, 1 << 20 },
	{ "protocol", "login_queue_per_address", K_INT, N(proto.login_queue_per_address), 0, 100000 },
	{ "protocol", "login_queue_max", K_INT, N(proto.login_queue_max), 0, 100000 },

	{ "http", "listen", K_LISTEN, S(http.listen), 0, 0 },
	{ "http", "threads", K_INT, N(http.threads), 1, 64 },
	{ "http", "signers", K_INT, N(http.signers), 0, 64 },
	{ "http", "max_body", K_INT, N(http.max_body), 256, 1 << 20 },
	{ "http", "header_timeout", K_INT, N(http.header_timeout), 1, 3600 },
	{ "http", "idle_timeout", K_INT, N(http.idle_timeout), 1, 86400 },
	{ "http", "max_connections", K_INT, N(http.max_connections), 1, 100000 },
	{ "http", "max_per_address", K_INT, N(http.max_per_address), 1, 100000 },
	{ "http", "shed_start", K_INT, N(http.shed_start), 0, 100 },
	{ "http", "ocsp_next_update", K_INT, N(http.ocsp_next_update), 60, 7 * 86400 },
	{ "http", "ocsp_max_certids", K_INT, N(http.ocsp_max_certids), 1, 256 },
	{ "http", "ocsp_unknown_revoked", K_BOOL, N(http.ocsp_unknown_revoked), 0, 0 },
	{ "http", "metrics_from", K_NETS, N(http), 0, 0 },
	{ "http", "cache_max_age", K_INT, N(http.cache_max_age), 0, 86400 },
	{ "http", "ban_urls", K_STR, S(http.ban_urls), 0, 0 },
	{ "http", "ban_timeout_ms", K_INT, N(http.ban_timeout_ms), 10, 10000 },

	{ "admin", "socket", K_PATH, S(admin.socket), 0, 0 },
	{ "admin", "allowed_uids", K_UIDS, N(admin), 0, 0 },
	{ "admin", "group", K_STR, S(admin.group), 0, 0 },

	{ "policy", "review", K_REVIEW, N(policy.review), 0, 0 },
	{ "policy", "hold_on_request", K_BOOL, N(policy.hold_on_request), 0, 0 },
	{ "policy", "max_failures", K_INT, N(policy.max_failures), 1, 1000 },
	{ "policy", "lockout_seconds", K_INT, N(policy.lockout_seconds), 1, 30 * 86400 },
	{ "policy", "argon2_opslimit", K_SIZE, N(policy.argon2_opslimit), 1, 1000 },
	{ "policy", "argon2_memlimit", K_SIZE, N(policy.argon2_memlimit), 8192, 4ULL << 30 },
	{ "policy", "request_days", K_INT, N(policy.request_days), 1, 36500 },
	{ "policy", "min_password_length", K_INT, N(policy.min_password_length), 8, 1024 },
	{ "policy", "password_max_days", K_INT, N(policy.password_max_days), 0, 36500 },
	{ "policy", "enrol_code_lifetime", K_INT, N(policy.enrol_code_lifetime), 1, 30 * 86400 },
	{ "policy", "renew", K_RENEW, N(policy.renew), 0, 0 },
	{ "policy", "renew_window", K_INT, N(policy.renew_window), 0, 36500 },
	{ "policy", "renew_revoke_old", K_BOOL, N(policy.renew_revoke_old), 0, 0 },

	{ "store", "path", K_PATH, S(store.path), 0, 0 },
	{ "store", "map_size", K_SIZE, N(store.map_size), 1 << 20, 1ULL << 40 },
	{ "store", "map_max", K_SIZE, N(store.map_max), 0, 1ULL << 40 },
	{ "store", "no_grow", K_BOOL, N(store.no_grow), 0, 0 },
	{ "store", "hwm_file", K_PATH, S(store.hwm_file), 0, 0 },
	{ "store", "totp_key_file", K_PATH, S(store.totp_key_file), 0, 0 },
	{ "store", "journal_dir", K_PATH, S(store.journal_dir), 0, 0 },
	{ "store", "journal_segment_size", K_SIZE, N(store.journal_segment_size), 64 << 10, 1ULL << 30 },

	{ "crl", "full_interval", K_INT, N(crl.full_interval), 1, 365 * 86400 },
	{ "crl", "next_update", K_INT, N(crl.next_update), 60, 365 * 86400 },
	{ "crl", "delta_max_age", K_INT, N(crl.delta_max_age), 1, 86400 },
	/* obsolete (full CRLs are built on a schedule): read, ignored */
	{ "crl", "rebuild_delay_ms", K_INT, N(crl.rebuild_delay_ms), 0, 60000 },
	{ "crl", "publish_dir", K_PATH, S(crl.publish_dir), 0, 0 },

	{ "daemon", "log_level", K_LOGLEVEL, N(daemon.log_level), 0, 0 },
	{ "daemon", "user", K_STR, S(daemon.user), 0, 0 },
	{ "daemon", "group", K_STR, S(daemon.group), 0, 0 },
	{ "daemon", "notify_command", K_STR, S(daemon.notify_command), 0, 0 },
	{ "daemon", "notify_timeout", K_INT, N(daemon.notify_timeout), 1, 3600 },
	{ "daemon", "notify_retry_delay", K_INT, N(daemon.notify_retry_delay), 1, 3600 },
	{ "daemon", "expiry_interval", K_INT, N(daemon.expiry_interval), 10, 7 * 86400 },
	{ "daemon", "workers", K_INT, N(daemon.workers), 1, 64 },

	{ "replica", "listen", K_STR, S(replica.listen), 0, 0 },
	{ "replica", "primary", K_STR, S(replica.primary), 0, 0 },
	{ "replica", "cert", K_PATH, S(replica.cert), 0, 0 },
	{ "replica", "key", K_PATH, S(replica.key), 0, 0 },
	{ "replica", "names_file", K_PATH, S(replica.names_file), 0, 0 },
	{ "replica", "peers", K_STR, S(replica.peers), 0, 0 },
};

/* The keys of a [profile.NAME] section; offsets into profiles[0]. */
#define P(f)	offsetof(struct mica_conf, profiles[0].f), \
	sizeof(((struct mica_conf *)0)->profiles[0].f)
#define PN(f)	offsetof(struct mica_conf, profiles[0].f), 0
static const struct key profile_keys[] = {
	{ "profile.NAME", "key_usage", K_STR, P(key_usage), 0, 0 },
	{ "profile.NAME", "ext_key_usage", K_STR, P(ext_key_usage), 0, 0 },
	{ "profile.NAME", "copy_san", K_BOOL, PN(copy_san), 0, 0 },
	{ "profile.NAME", "default_days", K_INT, PN(default_days), 1, 36500 },
};
#define PROFILE_PREFIX	"profile."

static const char *sections[] = {
	"ca", "protocol", "http", "admin", "policy", "store", "crl", "daemon",
	"replica",
};

static void
join(char *out, size_t len, const char *dir, const char *name)
{
	if (name[0] == '/' || dir[0] == '\0')
		snprintf(out, len, "%s", name);
	else
		snprintf(out, len, "%s/%s", dir, name);
}

/* "127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8" */
static int
parse_net(const char *tok, struct conf_net *n)
{
	char a[INET6_ADDRSTRLEN + 8], *slash, *end;
	long bits;
	int max;

	if (strlen(tok) >= sizeof(a))
		return 0;
	snprintf(a, sizeof(a), "%s", tok);
	memset(n, 0, sizeof(*n));
	if ((slash = strchr(a, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, a, n->addr) == 1) {
		n->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, a, n->addr) == 1) {
		n->family = AF_INET6;
		max = 128;
	} else
		return 0;
	n->bits = max;
	if (slash != NULL) {
		errno = 0;
		bits = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || errno != 0 || bits < 0 ||
		    bits > max)
			return 0;
		n->bits = (int)bits;
	}
	return 1;
}

static int
parse_nets(const char *v, struct conf_net *nets, int *num, char *why,
    size_t why_len)
{
	char tmp[CONF_STR_MAX], *tok, *save = NULL;

	*num = 0;
	snprintf(tmp, sizeof(tmp), "%s", v);
	for (tok = strtok_r(tmp, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (*num == CONF_NETS_MAX) {
			snprintf(why, why_len, "at most %d addresses",
			    CONF_NETS_MAX);
			return 0;
		}
		if (!parse_net(tok, &nets[*num])) {
			snprintf(why, why_len, "\"%s\" is not an address or "
			    "address/prefix-length", tok);
			return 0;
		}
		(*num)++;
	}
	return 1;
}

void
conf_defaults(struct mica_conf *c, const char *dir)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->ca.dir, sizeof(c->ca.dir), "%s", dir);
	join(c->ca.cert, sizeof(c->ca.cert), dir, "ca.crt");
	join(c->ca.key, sizeof(c->ca.key), dir, "private/ca.key");
	join(c->ca.ocsp_cert, sizeof(c->ca.ocsp_cert), dir, "ocsp.crt");
	join(c->ca.ocsp_key, sizeof(c->ca.ocsp_key), dir, "private/ocsp.key");
	join(c->ca.tls_cert, sizeof(c->ca.tls_cert), dir, "tls.crt");
	join(c->ca.tls_key, sizeof(c->ca.tls_key), dir, "private/tls.key");
	snprintf(c->ca.http_url, sizeof(c->ca.http_url),
	    "http://127.0.0.1:7780");
	c->ca.default_days = 365;
	snprintf(c->ca.key_usage, sizeof(c->ca.key_usage), "digitalSignature");
	snprintf(c->ca.ext_key_usage, sizeof(c->ca.ext_key_usage),
	    "clientAuth");

	snprintf(c->proto.listen, sizeof(c->proto.listen), "127.0.0.1:7700");
	c->proto.max_connections = 256;
	c->proto.max_per_address = 32;
	c->proto.shed_start = 75;
	c->proto.handshake_timeout = 10;
	c->proto.idle_timeout = 300;
	c->proto.login_timeout = 30;
	c->proto.max_frame = 65536;
	c->proto.login_queue_per_address = 32;
	c->proto.login_queue_max = 256;

	snprintf(c->http.listen, sizeof(c->http.listen), "127.0.0.1:7780");
	c->http.threads = 1;
	c->http.signers = 6;
	c->http.max_body = 16384;
	c->http.header_timeout = 10;
	c->http.idle_timeout = 60;
	c->http.max_connections = 1024;
	c->http.max_per_address = 64;
	c->http.shed_start = 75;
	c->http.ocsp_next_update = 3600;
	/* /metrics: loopback only by default */
	parse_nets("127.0.0.0/8, ::1", c->http.metrics_from,
	    &c->http.num_metrics_from, NULL, 0);
	c->http.ocsp_max_certids = 16;
	c->http.cache_max_age = 60;
	c->http.ban_timeout_ms = 200;

	join(c->admin.socket, sizeof(c->admin.socket), dir, "admin.sock");

	c->policy.review = REVIEW_MANUAL;
	c->policy.max_failures = 5;
	c->policy.lockout_seconds = 900;
	c->policy.argon2_opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
	c->policy.argon2_memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
	c->policy.request_days = 365;
	c->policy.min_password_length = 12;
	c->policy.password_max_days = 0;
	c->policy.enrol_code_lifetime = 86400;
	c->policy.renew = RENEW_AUTO;
	c->policy.renew_window = 30;
	c->policy.renew_revoke_old = 1;

	join(c->store.path, sizeof(c->store.path), dir, "store");
	c->store.map_size = 64ULL << 20;
	join(c->store.hwm_file, sizeof(c->store.hwm_file), dir, "private/hwm");
	join(c->store.totp_key_file, sizeof(c->store.totp_key_file), dir,
	    "private/totp.key");
	join(c->store.journal_dir, sizeof(c->store.journal_dir), dir, "journal");
	c->store.journal_segment_size = 16ULL << 20;

	c->crl.full_interval = 3600;
	c->crl.next_update = 0;		/* = full_interval */
	c->crl.delta_max_age = 60;
	c->crl.rebuild_delay_ms = 200;

	c->daemon.log_level = LOG_LVL_INFO;
	c->daemon.workers = 2;
	c->daemon.notify_timeout = 30;
	c->daemon.notify_retry_delay = 5;
	c->daemon.expiry_interval = 3600;

	join(c->replica.cert, sizeof(c->replica.cert), dir, "replica.crt");
	join(c->replica.key, sizeof(c->replica.key), dir,
	    "private/replica.key");
	join(c->replica.names_file, sizeof(c->replica.names_file), dir,
	    "replicas");
}

/* Finds the line of "key =" in [section] by scanning the file text. */
static int
key_line(const char *path, const char *section, const char *name)
{
	FILE *f;
	char line[4096], cur[128] = "default";
	int n = 0, found = 0;
	size_t klen = strlen(name);

	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line;

		n++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[') {
			char *e;

			p++;
			while (*p == ' ' || *p == '\t')
				p++;
			if ((e = strchr(p, ']')) != NULL) {
				while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
					e--;
				snprintf(cur, sizeof(cur), "%.*s",
				    (int)(e - p), p);
			}
			continue;
		}
		if (strcmp(cur, section) == 0 &&
		    strncmp(p, name, klen) == 0 &&
		    strchr(" \t=", p[klen]) != NULL)
			found = n;	/* the last one wins, as in NCONF */
	}
	fclose(f);
	return found;
}

static int
parse_u64(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long x;
	uint64_t mul = 1;

	if (*v == '\0' || *v == '-')
		return 0;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno != 0 || end == v)
		return 0;
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	else if (*end == 'g' || *end == 'G')
		mul = 1024ULL * 1024 * 1024, end++;
	if (*end != '\0')
		return 0;
	if (x > UINT64_MAX / mul)
		return 0;
	*out = x * mul;
	return 1;
}

static int
parse_listen(const char *v)
{
	const char *colon = strrchr(v, ':');
	uint64_t port;

	if (colon == NULL || colon == v)
		return 0;
	if (!parse_u64(colon + 1, &port) || port == 0 || port > 65535)
		return 0;
	return 1;
}

int
conf_http_url_check(const char *url, char *why, size_t why_len)
{
	if (strncmp(url, "https://", 8) == 0) {
		snprintf(why, why_len, "https:// is refused: RFC 5280 "
		    "4.2.1.13: CRL and OCSP URLs must be http:// (checking "
		    "revocation over HTTPS needs a revocation check of the "
		    "HTTPS server first)");
		return 0;
	}
	if (strncmp(url, "http://", 7) != 0 || url[7] == '\0' ||
	    url[7] == '/') {
		snprintf(why, why_len, "must be an http:// URL with a host "
		    "(RFC 5280 4.2.1.13)");
		return 0;
	}
	return 1;
}

int
conf_url_path(char *out, size_t out_len, const char *url)
{
	const char *p;
	size_t n;

	if (strncmp(url, "http://", 7) != 0 || url[7] == '\0')
		return 0;
	if ((p = strchr(url + 7, '/')) == NULL)
		p = "";
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n >= out_len)
		return 0;
	memcpy(out, p, n);
	out[n] = '\0';
	return 1;
}

int
conf_ban_url_parse(const char *url, char *host, size_t host_len,
    int *out_port)
{
	const char *h, *colon, *end;
	char *e;
	long port;

	if (strncmp(url, "http://", 7) != 0)
		return 0;
	h = url + 7;
	end = h + strlen(h);
	if (end > h && end[-1] == '/')
		end--;
	if (memchr(h, '/', (size_t)(end - h)) != NULL)
		return 0;
	if (*h == '[') {		/* [v6]:port */
		if ((colon = memchr(h, ']', (size_t)(end - h))) == NULL ||
		    colon[1] != ':')
			return 0;
		h++;
		if ((size_t)(colon - h) + 1 > host_len || colon == h)
			return 0;
		memcpy(host, h, (size_t)(colon - h));
		host[colon - h] = '\0';
		colon++;
	} else {
		if ((colon = memchr(h, ':', (size_t)(end - h))) == NULL ||
		    colon == h || (size_t)(colon - h) + 1 > host_len)
			return 0;
		memcpy(host, h, (size_t)(colon - h));
		host[colon - h] = '\0';
	}
	if (colon + 1 >= end || end - colon > 6 || colon[1] < '0' ||
	    colon[1] > '9')
		return 0;
	port = strtol(colon + 1, &e, 10);
	if (e != end || port < 1 || port > 65535)
		return 0;
	*out_port = (int)port;
	return 1;
}

/* [http] ban_urls: each one http://HOST:PORT, at most CONF_BAN_MAX. */
static int
check_ban_urls(const struct mica_conf *c, const char *path, char *err,
    size_t err_len)
{
	char buf[CONF_STR_MAX], *tok, *save = NULL, *p, host[256];
	int port, n = 0;

	snprintf(buf, sizeof(buf), "%s", c->http.ban_urls);
	for (p = buf; (tok = strtok_r(p, ", \t", &save)) != NULL; p = NULL) {
		if (++n > CONF_BAN_MAX) {
			snprintf(err, err_len, "%s:%d: [http] ban_urls: more "
			    "than %d caches", path, key_line(path, "http",
			    "ban_urls"), CONF_BAN_MAX);
			return 0;
		}
		if (!conf_ban_url_parse(tok, host, sizeof(host), &port)) {
			snprintf(err, err_len, "%s:%d: [http] ban_urls: "
			    "\"%s\": not http://HOST:PORT", path,
			    key_line(path, "http", "ban_urls"), tok);
			return 0;
		}
	}
	return 1;
}

/* [ca] old_http_urls: each one an http_url, their paths not too long. */
static int
check_old_urls(const struct mica_conf *c, const char *path, char *err,
    size_t err_len)
{
	char buf[CONF_STR_MAX], *tok, *save = NULL, *p, why[256];
	char up[CONF_STR_MAX];

	snprintf(buf, sizeof(buf), "%s", c->ca.old_http_urls);
	for (p = buf; (tok = strtok_r(p, ", \t", &save)) != NULL; p = NULL) {
		if (!conf_http_url_check(tok, why, sizeof(why)) ||
		    !conf_url_path(up, 100, tok)) {
			if (why[0] == '\0' || conf_http_url_check(tok, why,
			    sizeof(why)))
				snprintf(why, sizeof(why), "its path is longer "
				    "than 99 characters");
			snprintf(err, err_len, "%s:%d: [ca] old_http_urls: "
			    "\"%s\": %s", path, key_line(path, "ca",
			    "old_http_urls"), tok, why);
			return 0;
		}
		why[0] = '\0';
	}
	return 1;
}

int
conf_net_match(const struct conf_net *nets, int n, const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	const uint8_t *a;
	int fam, i, full, rest;

	if (sa->sa_family == AF_INET) {
		fam = AF_INET;
		a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr.s6_addr;
		fam = AF_INET6;
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			fam = AF_INET;
			a += sizeof(mapped);
		}
	} else
		return 0;
	for (i = 0; i < n; i++) {
		if (nets[i].family != fam)
			continue;
		full = nets[i].bits / 8;
		rest = nets[i].bits % 8;
		if (memcmp(a, nets[i].addr, (size_t)full) != 0)
			continue;
		if (rest != 0 && ((a[full] ^ nets[i].addr[full]) &
		    (uint8_t)(0xff << (8 - rest))) != 0)
			continue;
		return 1;
	}
	return 0;
}

static int
set_key(struct mica_conf *c, const struct key *k, const char *v, char *why,
    size_t why_len)
{
	char *base = (char *)c + k->off;
	uint64_t u;

	switch (k->type) {
	case K_STR:
	case K_URL:
		if (strlen(v) >= k->size) {
			snprintf(why, why_len, "value too long (max %zu)",
			    k->size - 1);
			return 0;
		}
		if (k->type == K_URL && !conf_http_url_check(v, why, why_len))
			return 0;
		snprintf(base, k->size, "%s", v);
		if (k->type == K_URL) {	/* no trailing slash */
			size_t l = strlen(base);

			while (l > 8 && base[l - 1] == '/')
				base[--l] = '\0';
		}
		return 1;
	case K_KEY:
		if (strncasecmp(v, "pkcs11:", 7) == 0) {
			size_t i;

			if (strlen(v) >= k->size) {
				snprintf(why, why_len, "URI too long (max %zu)",
				    k->size - 1);
				return 0;
			}
			for (i = 0; v[i] != '\0'; i++)
				if ((unsigned char)v[i] <= ' ' ||
				    (unsigned char)v[i] >= 0x7f) {
					snprintf(why, why_len, "RFC 7512: a "
					    "pkcs11: URI has no spaces or "
					    "control characters (percent-"
					    "encode them)");
					return 0;
				}
			snprintf(base, k->size, "%s", v);
			return 1;
		}
		/* FALLTHROUGH */
	case K_PATH:
		if (strlen(v) + strlen(c->ca.dir) + 2 > k->size) {
			snprintf(why, why_len, "path too long");
			return 0;
		}
		if (*v == '\0')
			base[0] = '\0';
		else
			join(base, k->size, c->ca.dir, v);
		return 1;
	case K_LISTEN:
		if (!parse_listen(v) || strlen(v) >= k->size) {
			snprintf(why, why_len, "must be HOST:PORT, e.g. "
			    "127.0.0.1:7780");
			return 0;
		}
		snprintf(base, k->size, "%s", v);
		return 1;
	case K_INT:
	case K_SIZE:
	case K_U32:
		if (!parse_u64(v, &u) || u < k->min || u > k->max) {
			snprintf(why, why_len, "must be a number from %llu to "
			    "%llu", (unsigned long long)k->min,
			    (unsigned long long)k->max);
			return 0;
		}
		if (k->type == K_INT)
			*(int *)base = (int)u;
		else if (k->type == K_U32)
			*(uint32_t *)base = (uint32_t)u;
		else
			*(uint64_t *)base = u;
		return 1;
	case K_BOOL:
		if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
		    !strcmp(v, "1") || !strcasecmp(v, "on"))
			*(int *)base = 1;
		else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
		    !strcmp(v, "0") || !strcasecmp(v, "off"))
			*(int *)base = 0;
		else {
			snprintf(why, why_len, "must be yes or no");
			return 0;
		}
		return 1;
	case K_REVIEW:
		if (strcmp(v, "manual") == 0)
			*(int *)base = REVIEW_MANUAL;
		else if (strcmp(v, "auto") == 0)
			*(int *)base = REVIEW_AUTO;
		else {
			snprintf(why, why_len, "must be manual or auto");
			return 0;
		}
		return 1;
	case K_RENEW:
		if (strcmp(v, "auto") == 0)
			*(int *)base = RENEW_AUTO;
		else if (strcmp(v, "manual") == 0)
			*(int *)base = RENEW_MANUAL;
		else if (strcmp(v, "off") == 0)
			*(int *)base = RENEW_OFF;
		else {
			snprintf(why, why_len, "must be auto, manual or off");
			return 0;
		}
		return 1;
	case K_LOGLEVEL:
		if ((*(int *)base = log_level_parse(v)) < 0) {
			snprintf(why, why_len,
			    "must be error, warn, info or debug");
			return 0;
		}
		return 1;
	case K_NETS:
		return parse_nets(v, c->http.metrics_from,
		    &c->http.num_metrics_from, why, why_len);
	case K_UIDS: {
		char tmp[CONF_STR_MAX], *tok, *save = NULL;

		c->admin.num_allowed_uids = 0;
		snprintf(tmp, sizeof(tmp), "%s", v);
		for (tok = strtok_r(tmp, ", \t", &save); tok != NULL;
		    tok = strtok_r(NULL, ", \t", &save)) {
			if (!parse_u64(tok, &u) || u > UINT32_MAX - 1) {
				snprintf(why, why_len, "\"%s\" is not a uid",
				    tok);
				return 0;
			}
			if (c->admin.num_allowed_uids == 16) {
				snprintf(why, why_len, "at most 16 uids");
				return 0;
			}
			c->admin.allowed_uids[c->admin.num_allowed_uids++] =
			    (uint32_t)u;
		}
		return 1;
	}
	}
	return 0;
}

static const struct key *
find_key(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* 1 when s is "profile.NAME" with a valid NAME. */
static int
profile_section(const char *s)
{
	size_t n;

	if (strncmp(s, PROFILE_PREFIX, strlen(PROFILE_PREFIX)) != 0)
		return 0;
	s += strlen(PROFILE_PREFIX);
	n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-");
	return n > 0 && n <= CONF_PROFILE_NAME_MAX && s[n] == '\0';
}

static int
known_section(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(sections[i], s) == 0)
			return 1;
	return profile_section(s);
}

/*
 * One [profile.NAME] section into c->profiles (after [ca] was applied:
 * unset keys keep [ca]'s values).  0 with err on an unknown key, a bad
 * value, a repeated section or too many profiles.
 */
static int
apply_profile(struct mica_conf *c, CONF *nc, const char *path,
    const char *secname, int line, char *err, size_t err_len)
{
	STACK_OF(CONF_VALUE) *sec;
	struct conf_profile *pr;
	struct key k;
	CONF_VALUE *cv;
	const char *name = secname + strlen(PROFILE_PREFIX);
	char why[256];
	size_t i;
	int j, found, n;

	for (j = 0; j < c->num_profiles; j++)
		if (strcmp(c->profiles[j].name, name) == 0) {
			snprintf(err, err_len, "%s:%d: [%s]: section given "
			    "twice", path, line, secname);
			return 0;
		}
	if (c->num_profiles == CONF_PROFILES_MAX) {
		snprintf(err, err_len, "%s:%d: [%s]: more than %d profiles",
		    path, line, secname, CONF_PROFILES_MAX);
		return 0;
	}
	n = c->num_profiles++;
	pr = &c->profiles[n];
	memset(pr, 0, sizeof(*pr));
	snprintf(pr->name, sizeof(pr->name), "%s", name);
	snprintf(pr->key_usage, sizeof(pr->key_usage), "%s", c->ca.key_usage);
	snprintf(pr->ext_key_usage, sizeof(pr->ext_key_usage), "%s",
	    c->ca.ext_key_usage);
	pr->copy_san = c->ca.copy_san;
	pr->default_days = c->ca.default_days;
	if ((sec = NCONF_get_section(nc, secname)) == NULL)
		return 1;
	for (j = 0; j < sk_CONF_VALUE_num(sec); j++) {
		cv = sk_CONF_VALUE_value(sec, j);
		found = 0;
		for (i = 0; i < sizeof(profile_keys) / sizeof(profile_keys[0]);
		    i++) {
			if (strcmp(profile_keys[i].name, cv->name) != 0)
				continue;
			k = profile_keys[i];
			k.off += (size_t)n * sizeof(struct conf_profile);
			found = 1;
			if (!set_key(c, &k, cv->value, why, sizeof(why))) {
				snprintf(err, err_len, "%s:%d: [%s] %s: %s",
				    path, key_line(path, secname, cv->name),
				    secname, cv->name, why);
				return 0;
			}
		}
		if (!found) {
			snprintf(err, err_len, "%s:%d: [%s] %s: unknown key (a "
			    "profile has key_usage, ext_key_usage, copy_san, "
			    "default_days)", path, key_line(path, secname,
			    cv->name), secname, cv->name);
			return 0;
		}
	}
	return 1;
}

/* Every [profile.NAME] section of the file, in the file's order. */
static int
apply_profiles(struct mica_conf *c, CONF *nc, const char *path, char *err,
    size_t err_len)
{
	FILE *f;
	char line[4096];
	int n = 0, rc = 1;

	c->num_profiles = 0;
	if ((f = fopen(path, "r")) == NULL)
		return 1;
	while (rc && fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *e;

		n++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '[')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if ((e = strchr(p, ']')) == NULL)
			continue;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';
		if (profile_section(p))
			rc = apply_profile(c, nc, path, p, n, err, err_len);
	}
	fclose(f);
	return rc;
}

const struct conf_profile *
conf_profile_find(const struct mica_conf *c, const char *name)
{
	int i;

	for (i = 0; i < c->num_profiles; i++)
		if (strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	return NULL;
}

/* Walks every section NCONF found: unknown sections or keys are errors. */
static int
apply(struct mica_conf *c, CONF *nc, const char *path, char *err,
    size_t err_len)
{
	const struct key *k;
	CONF_VALUE *cv;
	char why[256];
	int i, line;

	for (i = 0; i < (int)(sizeof(sections) / sizeof(sections[0])); i++) {
		STACK_OF(CONF_VALUE) *sec;
		int j;

		if ((sec = NCONF_get_section(nc, sections[i])) == NULL)
			continue;
		for (j = 0; j < sk_CONF_VALUE_num(sec); j++) {
			cv = sk_CONF_VALUE_value(sec, j);
			if ((k = find_key(sections[i], cv->name)) == NULL) {
				line = key_line(path, sections[i], cv->name);
				snprintf(err, err_len, "%s:%d: [%s] %s: unknown "
				    "key", path, line, sections[i], cv->name);
				return 0;
			}
			if (!set_key(c, k, cv->value, why, sizeof(why))) {
				line = key_line(path, sections[i], cv->name);
				snprintf(err, err_len, "%s:%d: [%s] %s: %s",
				    path, line, sections[i], cv->name, why);
				return 0;
			}
		}
	}
	return 1;
}

/* Section names come only from the file scan: NCONF has no iterator. */
static int
check_sections(const char *path, char *err, size_t err_len)
{
	FILE *f;
	char line[4096];
	int n = 0, rc = 1;

	if ((f = fopen(path, "r")) == NULL)
		return 1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *e;

		n++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '[')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if ((e = strchr(p, ']')) == NULL)
			continue;	/* NCONF reports it */
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';
		if (!known_section(p) && strcmp(p, "default") != 0) {
			snprintf(err, err_len, "%s:%d: [%s]: unknown section",
			    path, n, p);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

/*
 * Keys before the first [section] land in NCONF's "default" section, where
 * mica would silently ignore them: an error instead.  (.include is
 * refused too: its sections would escape the scan above.)
 */
static int
check_default(CONF *nc, const char *path, char *err, size_t err_len)
{
	STACK_OF(CONF_VALUE) *sec;
	CONF_VALUE *cv;

	if ((sec = NCONF_get_section(nc, "default")) == NULL ||
	    sk_CONF_VALUE_num(sec) == 0)
		return 1;
	cv = sk_CONF_VALUE_value(sec, 0);
	snprintf(err, err_len, "%s:%d: %s: key outside any [section] (or an "
	    ".include, which mica does not support)", path,
	    key_line(path, "default", cv->name), cv->name);
	return 0;
}

int
conf_load(struct mica_conf *c, const char *path, char *err, size_t err_len)
{
	CONF *nc = NULL;
	FILE *f;
	long eline = -1;
	struct stat sb;
	char dir[CONF_PATH_MAX], *slash;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	conf_defaults(c, dir);
	snprintf(c->path, sizeof(c->path), "%s", path);

	if (stat(path, &sb) != 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, err_len, "%s: not a regular file", path);
		goto out;
	}
	if (sb.st_mode & 0022) {
		snprintf(err, err_len, "%s: writable by group or others "
		    "(mode %03o); chmod 600 it", path,
		    (unsigned)(sb.st_mode & 0777));
		goto out;
	}
	/* An I/O error is not a syntax error: say what it is (a SIGHUP
	 * after the privilege drop meets a root-only file here). */
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, err_len, "cannot read %s: %s", path,
		    strerror(errno));
		goto out;
	}
	fclose(f);
	if ((nc = NCONF_new(NULL)) == NULL)
		fatalx("NCONF_new: out of memory");
	if (NCONF_load(nc, path, &eline) <= 0) {
		char e[512];

		ssl_errstr(e, sizeof(e));
		snprintf(err, err_len, "%s:%ld: syntax error (%s)", path,
		    eline, e);
		goto out;
	}
	if (!check_sections(path, err, err_len) ||
	    !check_default(nc, path, err, err_len))
		goto out;
	if (!apply(c, nc, path, err, err_len) ||
	    !check_old_urls(c, path, err, err_len) ||
	    !check_ban_urls(c, path, err, err_len) ||
	    !apply_profiles(c, nc, path, err, err_len))
		goto out;
	rc = 1;
 out:
	NCONF_free(nc);
	return rc;
}
