/*
 * conf.h - mica.conf, in OpenSSL's config format (NCONF), shared by all
 * programs.  Every key is validated; an unknown key or a bad value is an
 * error naming the file, the line and the key.  Relative paths are taken
 * relative to the directory holding the config file.
 */
#ifndef MICA_CONF_H
#define MICA_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_PATH_MAX	1024
#define CONF_STR_MAX	512

struct conf_ca {
	char		dir[CONF_PATH_MAX];		/* directory of mica.conf */
	char		cert[CONF_PATH_MAX];		/* ca.crt */
	char		chain[CONF_PATH_MAX];		/* "" = the CA alone;
							 * else the CA, its
							 * issuers, the root */
	char		key[CONF_PATH_MAX];		/* private/ca.key, or a
							 * pkcs11: URI */
	char		key_passphrase_file[CONF_PATH_MAX];	/* "" = none */
	char		ocsp_cert[CONF_PATH_MAX];
	char		ocsp_key[CONF_PATH_MAX];	/* path or pkcs11: URI */
	char		pkcs11_module[CONF_PATH_MAX];	/* "" = none: a URI
							 * then needs
							 * module-path= */
	char		tls_cert[CONF_PATH_MAX];
	char		tls_key[CONF_PATH_MAX];
	char		http_url[CONF_STR_MAX];		/* AIA / CRL DP base */
	char		old_http_urls[CONF_STR_MAX];	/* earlier http_url
							 * values, comma-
							 * separated: their
							 * paths are served
							 * too */
	int		default_days;			/* 365 */
	char		key_usage[CONF_STR_MAX];	/* digitalSignature */
	char		ext_key_usage[CONF_STR_MAX];	/* clientAuth */
	int		copy_san;			/* 0: copy the CSR's
							 * DNS/email/IP SANs */
	int		renew_before_days;		/* 0 = auto: 30 days or
							 * 1/4 of the lifetime,
							 * the smaller */
};

struct conf_proto {			/* [protocol]: the CA protocol */
	char		listen[CONF_STR_MAX];		/* 127.0.0.1:7700 */
	int		max_connections;		/* 256 */
	int		max_per_address;		/* 32 */
	int		shed_start;			/* % of max_connections,
							 * 75: above it a new
							 * connection sheds one
							 * not logged in; 0 off */
	int		handshake_timeout;		/* s, 10 */
	int		idle_timeout;			/* s, 300 */
	int		login_timeout;			/* s, 30: log in
							 * by then */
	uint32_t	max_frame;			/* 65536 */
	int		login_queue_per_address;	/* 32: LOGINs waiting
							 * for a worker, from
							 * one address */
	int		login_queue_max;		/* 256: in all */
};

#define CONF_NETS_MAX	16

struct sockaddr;

/* An address prefix: family AF_INET or AF_INET6, bits of addr that
 * must match. */
struct conf_net {
	int		family;
	uint8_t		addr[16];
	int		bits;
};

/*
 * 1 if sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as
 * IPv4) lies in one of the n prefixes.
 */
int	conf_net_match(const struct conf_net *nets, int n,
	    const struct sockaddr *sa);

struct conf_http {			/* [http]: OCSP, CRL, CA cert */
	char		listen[CONF_STR_MAX];		/* 127.0.0.1:7780 */
	int		threads;			/* 1 */
	int		signers;			/* 2 */
	int		max_body;			/* 16384 */
	int		header_timeout;			/* s, 10 */
	int		idle_timeout;			/* s, 60 */
	int		max_connections;		/* 1024 */
	int		max_per_address;		/* 64 */
	int		shed_start;			/* % of max_connections,
							 * 75: above it a new
							 * connection sheds one
							 * without a request;
							 * 0 off */
	int		ocsp_next_update;		/* s, 3600 */
	int		ocsp_max_certids;		/* 16 */
	int		ocsp_unknown_revoked;		/* 0: unknown, 1: revoked
							 * (RFC 6960 2.2) */
	struct conf_net	metrics_from[CONF_NETS_MAX];	/* who may GET
							 * /metrics; loopback */
	int		num_metrics_from;		/* 0: nobody */
	int		cache_max_age;			/* s, 60: longest
							 * max-age of a GET
							 * answer; 0 no-store */
	char		ban_urls[CONF_STR_MAX];		/* http://HOST:PORT of
							 * HTTP caches to BAN
							 * changed serials in;
							 * "" = none */
	int		ban_timeout_ms;			/* 200: all bans of a
							 * commit together */
};

struct conf_admin {
	char		socket[CONF_PATH_MAX];		/* admin.sock */
	uint32_t	allowed_uids[16];		/* besides root and own */
	int		num_allowed_uids;
	char		group[CONF_STR_MAX];		/* "" = none; else the
							 * socket is 0660 with
							 * this group */
};

enum conf_review { REVIEW_MANUAL = 0, REVIEW_AUTO = 1 };
/* [policy] renew: mica renew with the current key */
enum conf_renew { RENEW_AUTO = 0, RENEW_MANUAL = 1, RENEW_OFF = 2 };

struct conf_policy {
	int		review;				/* enum conf_review */
	int		hold_on_request;		/* 0 */
	int		max_failures;			/* 5 */
	int		lockout_seconds;		/* 900 */
	uint64_t	argon2_opslimit;		/* MODERATE */
	uint64_t	argon2_memlimit;		/* MODERATE */
	int		request_days;			/* validity of a
							 * replacement, 365 */
	int		min_password_length;		/* 12 */
	int		password_max_days;		/* 0 = no maximum age */
	int		enrol_code_lifetime;		/* s, 86400 */
	int		renew;				/* enum conf_renew,
							 * auto */
	int		renew_window;			/* days before
							 * notAfter, 30 */
	int		renew_revoke_old;		/* 1: superseded at
							 * once; 0: expires */
};

struct conf_store {
	char		path[CONF_PATH_MAX];		/* store */
	uint64_t	map_size;			/* 64 MiB */
	uint64_t	map_max;			/* 0 = no ceiling */
	int		no_grow;			/* 0 */
	char		hwm_file[CONF_PATH_MAX];	/* private/hwm: the
							 * high-water mark */
	char		totp_key_file[CONF_PATH_MAX];	/* private/totp.key:
							 * seals the TOTP
							 * secrets */
	char		journal_dir[CONF_PATH_MAX];	/* journal; "" = off */
	uint64_t	journal_segment_size;		/* 16 MiB */
};

struct conf_crl {
	int		full_interval;			/* s, 3600 */
	int		next_update;			/* s, 0 = full_interval */
	int		delta_max_age;			/* s, 60 */
	int		rebuild_delay_ms;		/* obsolete, ignored */
	char		publish_dir[CONF_PATH_MAX];	/* "" = none */
};

struct conf_replica {			/* [replica]: a warm standby */
	char		listen[CONF_STR_MAX];		/* "" = off; primary:
							 * ADDR:PORT for
							 * standbys */
	char		primary[CONF_STR_MAX];		/* "" = a primary;
							 * HOST:PORT: this
							 * micad is a standby */
	char		cert[CONF_PATH_MAX];		/* standby: client cert
							 * CN=replica:NAME */
	char		key[CONF_PATH_MAX];
	char		names_file[CONF_PATH_MAX];	/* primary: replicas,
							 * one NAME a line */
	char		peers[CONF_STR_MAX];		/* HOST:PORT of the
							 * other machine */
};

struct conf_daemon {
	int		log_level;			/* LOG_LVL_INFO */
	char		user[CONF_STR_MAX];		/* "" = stay */
	char		group[CONF_STR_MAX];
	char		notify_command[CONF_PATH_MAX];	/* "" = none */
	int		notify_timeout;			/* s, 30 */
	int		notify_retry_delay;		/* s, 5 (then x6, x24) */
	int		expiry_interval;		/* s, 3600 */
	int		workers;			/* 2 */
};

/*
 * A named issuance profile, section [profile.NAME] (mica-admin issue
 * --profile NAME).  Unset keys take [ca]'s value.
 */
#define CONF_PROFILES_MAX	8
#define CONF_PROFILE_NAME_MAX	31	/* a-z 0-9 _ - */
struct conf_profile {
	char		name[CONF_PROFILE_NAME_MAX + 1];
	char		key_usage[CONF_STR_MAX];
	char		ext_key_usage[CONF_STR_MAX];
	int		copy_san;
	int		default_days;
};

struct mica_conf {
	char			path[CONF_PATH_MAX];
	struct conf_ca		ca;
	struct conf_proto	proto;
	struct conf_http	http;
	struct conf_admin	admin;
	struct conf_policy	policy;
	struct conf_store	store;
	struct conf_crl		crl;
	struct conf_daemon	daemon;
	struct conf_replica	replica;
	struct conf_profile	profiles[CONF_PROFILES_MAX];
	int			num_profiles;
};

/*
 * The CRL/OCSP base URL rule (http_url, init's --http-url): http:// only.
 * A relying party checking revocation over https:// would first have to
 * check the revocation of the HTTPS server's certificate (circular; RFC
 * 5280 4.2.1.13 and RFC 6960 practice: CRL and OCSP URLs are http).
 * Returns 1, or 0 with the reason in why.
 */
int	conf_http_url_check(const char *url, char *why, size_t why_len);

#define CONF_BAN_MAX	16	/* [http] ban_urls */

/*
 * Splits one [http] ban_urls entry "http://HOST:PORT" (or
 * "http://[V6]:PORT", a trailing "/" allowed) into host and port.
 * Returns 1, or 0 when it is not that form or host does not fit.
 */
int	conf_ban_url_parse(const char *url, char *host, size_t host_len,
	    int *out_port);

/* The profile [profile.name], or NULL. */
const struct conf_profile *conf_profile_find(const struct mica_conf *,
	    const char *name);

/*
 * The path part of an http:// URL ("/pki" of "http://ca:80/pki"), with
 * no trailing slash; "" when it has none.  Returns 0 when it does not
 * fit out or the URL has no "http://host".
 */
int	conf_url_path(char *out, size_t out_len, const char *url);

/* Fills every field with its default (paths relative to dir). */
void	conf_defaults(struct mica_conf *, const char *dir);
/*
 * Loads path over the defaults.  On error returns 0 with a message like
 * "mica.conf:12: [http] threads: must be 1..64" in err, or "cannot read
 * mica.conf: Permission denied" when the file cannot be opened.
 */
int	conf_load(struct mica_conf *, const char *path, char *err,
	    size_t err_len);

#endif
