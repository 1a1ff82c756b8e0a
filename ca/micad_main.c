/*
 * micad_main.c - the mica CA daemon: one libevent loop serving the admin
 * socket, the CA protocol (TLS 1.3) and, on its own threads, HTTP (OCSP,
 * CRLs, the CA certificate, metrics).  Runs in the foreground and logs to
 * stderr (systemd style).
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "admin/admin.h"
#include "ca/ban.h"
#include "ca/ca.h"
#include "ca/expiry.h"
#include "ca/listener.h"
#include "ca/micad.h"
#include "ca/notify.h"
#include "ca/privdrop.h"
#include "ca/renew.h"
#include "ca/reissue.h"
#include "ca/repl.h"
#include "ca/restore.h"
#include "ca/sign_client.h"
#include "common/bytes.h"
#include "common/hwm.h"
#include "common/log.h"
#include "common/totpseal.h"
#include "common/version.h"
#include "common/workq.h"
#include "conf/conf.h"
#include "crl/crl.h"
#include "ocsp/ocsp.h"
#include "store/store.h"

static struct micad micad;
static struct ocsp_http *http;
static uint8_t *ca_der, *ca_pem, *chain_pem;
static size_t ca_der_len, ca_pem_len, chain_pem_len;

/*
 * store_info walks every certificate, so /metrics never calls it: the
 * HTTP threads read these atomics, and ask (si_wanted) for a refresh that
 * a loop timer hands to a worker at most every SI_REFRESH_S seconds.
 */
#define SI_REFRESH_S	5
enum { SI_MAP, SI_USED, SI_CERTS, SI_GOOD, SI_HOLD, SI_REVOKED, SI_ACCOUNTS,
	SI_REQUESTS, SI_PENDING, SI_AUDIT, SI_REV_EVENTS, SI_COUNT };
static const char *si_names[SI_COUNT] = {
	"mica_store_map_size_bytes", "mica_store_used_bytes",
	"mica_store_certs", "mica_store_certs_good", "mica_store_certs_hold",
	"mica_store_certs_revoked", "mica_store_accounts",
	"mica_store_requests", "mica_store_requests_pending",
	"mica_store_audit_records", "mica_store_revocation_events",
};
static _Atomic uint64_t si_vals[SI_COUNT];
/* Login failures, counted from the audit trail ("auth.failure" records,
 * appended by the CA protocol listener) incrementally on the worker. */
static _Atomic uint64_t auth_failures, auth_logins;
static uint64_t audit_seen;	/* last audit seq counted; worker only */
/* Reissue/enrolment requests by outcome recorded in the audit trail
 * before this run started (request.created, .refused, .approved,
 * .rejected): /metrics adds this run's counters, so the totals survive a
 * restart. */
enum { RQ_CREATED, RQ_REFUSED, RQ_APPROVED, RQ_REJECTED, RQ_COUNT };
static _Atomic uint64_t req_before[RQ_COUNT];
static int audit_at_start;	/* the scan at start counts req_before */
/* notAfter (unix) of micad's own certificates, read by the worker. */
enum { OWN_CA, OWN_OCSP, OWN_TLS, OWN_COUNT };
static _Atomic int64_t own_not_after[OWN_COUNT];
static _Atomic int64_t si_time;
static _Atomic int si_wanted = 1, si_busy;
static _Atomic int si_stop;	/* stopping: a walk in progress gives up */
static struct event *si_timer;
/* The last CRL numbers the signer signed (full, delta; its HELLO). */
static uint64_t signed_crl[2];
/* The first CRLs could not be made: the exit status says so. */
static atomic_int crl_failed;

/*
 * Where start and stop time goes: a debug line per step with the
 * milliseconds since main (start) or since the stop signal was handled,
 * and the CPU time of the process (all its threads) so far.
 */
static void
step(const char *phase, const char *what)
{
	struct timespec cpu;
	struct rusage ru;

	if (log_getlevel() < LOG_LVL_DEBUG)
		return;
	(void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	(void)getrusage(RUSAGE_SELF, &ru);
	log_debug("%s: %s +%.1f ms (process cpu %.1f ms, %ld page faults)",
	    phase, what, log_clock_ms(), (double)cpu.tv_sec * 1e3 +
	    (double)cpu.tv_nsec / 1e6, ru.ru_minflt + ru.ru_majflt);
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: micad [-c CONF] [-n] [-d] [--accept-restore] | -V\n"
"\n"
"The mica CA daemon.  Runs in the foreground and logs to stderr, each\n"
"line stamped with the UTC time unless stderr is the systemd journal.\n"
"\n"
"  -c, --config CONF     configuration file (default: $MICA_CONF, else\n"
"                        ./mica.conf); mica-admin init writes one\n"
"  -n, --check-config    load the configuration and keys, compare the\n"
"                        store with the high-water mark and the journal,\n"
"                        print \"configuration OK\" and exit\n"
"  -d, --debug           log at debug level\n"
"      --accept-restore  start on a store older than what micad already\n"
"                        published (a restored backup): CRL numbers\n"
"                        continue above the high-water mark, the changes\n"
"                        still in the last published CRLs are applied\n"
"                        again, what was lost is logged and shown by\n"
"                        mica-admin status.  Without it micad refuses\n"
"                        such a store (-n reports it)\n"
"  -V, --version         print the version and exit\n"
"  -h, --help            this text\n"
"\n"
"Signals: SIGTERM/SIGINT stop (in-flight work is finished, the store is\n"
"closed cleanly, exit 0); SIGHUP reloads the log level and policy.\n");
}

/*
 * [ca] chain: the CA up to its root, checked against the CA certificate
 * (micad.chain); a chain that does not fit stops micad.
 */
static void
load_chain(const struct mica_conf *c)
{
	char err[CA_ERR_MAX + CONF_PATH_MAX];

	if (!ca_chain_load(&micad.chain, c->ca.chain,
	    ca_signer_get0_cert(micad.signer), err, sizeof(err)))
		fatalx("[ca] chain: %s", err);
	if (sk_X509_num(micad.chain) > 1)
		log_info("CA chain: %d certificates up to the root (%s)",
		    sk_X509_num(micad.chain), c->ca.chain);
}

/* micad.chain as one PEM text for /chain.pem; out of memory is fatal. */
static int
load_chain_pem(void)
{
	BIO *b;
	char *d;
	long l;
	int i, rc = 0;

	if ((b = BIO_new(BIO_s_mem())) == NULL)
		fatalx("BIO_new: out of memory");
	for (i = 0; i < sk_X509_num(micad.chain); i++)
		if (!PEM_write_bio_X509(b, sk_X509_value(micad.chain, i))) {
			log_ssl("chain: PEM_write_bio_X509");
			goto out;
		}
	if ((l = BIO_get_mem_data(b, &d)) <= 0)
		goto out;
	if ((chain_pem = malloc((size_t)l)) == NULL)
		fatal("malloc");
	memcpy(chain_pem, d, (size_t)l);
	chain_pem_len = (size_t)l;
	rc = 1;
 out:
	BIO_free(b);
	return rc;
}

/* The CA certificate as DER and PEM for /ca.*; out of memory is fatal. */
static int
load_ca_files(const char *path)
{
	X509 *x = NULL;
	BIO *b = NULL;
	unsigned char *p = NULL;
	char *d;
	long l;
	int n, rc = 0;
	char err[CA_ERR_MAX];

	if (!ca_cert_read(&x, path, err, sizeof(err))) {
		log_warnx("%s", err);
		goto out;
	}
	if ((n = i2d_X509(x, &p)) <= 0) {
		log_ssl("%s: i2d_X509", path);
		goto out;
	}
	if ((ca_der = malloc((size_t)n)) == NULL)
		fatal("malloc");
	memcpy(ca_der, p, (size_t)n);
	ca_der_len = (size_t)n;
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		fatalx("BIO_new: out of memory");
	if (!PEM_write_bio_X509(b, x) || (l = BIO_get_mem_data(b, &d)) <= 0) {
		log_ssl("%s: PEM_write_bio_X509", path);
		goto out;
	}
	if ((ca_pem = malloc((size_t)l)) == NULL)
		fatal("malloc");
	memcpy(ca_pem, d, (size_t)l);
	ca_pem_len = (size_t)l;
	rc = 1;
 out:
	OPENSSL_free(p);
	BIO_free(b);
	X509_free(x);
	return rc;
}

static void
route_ca(struct ocsp_http_req *req, const char *path, void *arg)
{
	enum ocsp_http_method m = ocsp_http_req_method(req);
	const char *ct;
	const void *body;
	size_t len;

	(void)arg;
	if (m != OCSP_HTTP_GET && m != OCSP_HTTP_HEAD) {
		ocsp_http_add_header(req, "Allow", "GET, HEAD");
		ocsp_http_send_error(req, 405, "Method Not Allowed");
		return;
	}
	if (strcmp(path, "/ca.crt") == 0 || strcmp(path, "/ca.der") == 0) {
		/* RFC 5280 4.2.2.1: caIssuers over HTTP is DER */
		ct = "application/pkix-cert";
		body = ca_der;
		len = ca_der_len;
	} else if (strcmp(path, "/ca.pem") == 0) {
		ct = "application/x-pem-file";
		body = ca_pem;
		len = ca_pem_len;
	} else if (strcmp(path, "/chain.pem") == 0) {
		/* the CA first, the root last */
		ct = "application/x-pem-file";
		body = chain_pem;
		len = chain_pem_len;
	} else {
		ocsp_http_send_error(req, 404, "Not Found");
		return;
	}
	if (!ocsp_http_body_add_ref(req, body, len, NULL, NULL)) {
		ocsp_http_send_error(req, 500, "Internal Server Error");
		return;
	}
	ocsp_http_add_header(req, "Content-Type", ct);
	ocsp_http_add_header(req, "Cache-Control", "max-age=3600, public");
	ocsp_http_send(req, 200, "OK");
}

/* micad.crl is set after the privilege drop, before the HTTP threads
 * start; the route is registered before that. */
static void
route_crl(struct ocsp_http_req *req, const char *path, void *arg)
{
	(void)arg;
	if (repl_crl_http(req, path))	/* a standby: the primary's */
		return;
	crl_http_handle(micad.crl, req, path);
}

static int
audit_count_cb(const struct audit_rec *a, void *arg)
{
	(void)arg;
	static const char *req_actions[RQ_COUNT] = { "request.created",
	    "request.refused", "request.approved", "request.rejected" };
	int i;

	if (strcmp(a->action, "auth.failure") == 0)
		atomic_fetch_add(&auth_failures, 1);
	else if (strcmp(a->action, "auth.login") == 0)
		atomic_fetch_add(&auth_logins, 1);
	else if (audit_at_start)
		for (i = 0; i < RQ_COUNT; i++)
			if (strcmp(a->action, req_actions[i]) == 0)
				atomic_fetch_add(&req_before[i], 1);
	audit_seen = a->seq;
	return 1;
}

static enum store_rc
audit_count_txn(struct store_txn *txn, void *arg)
{
	return store_audit_iter(txn, audit_seen + 1, audit_count_cb, arg);
}

/* notAfter of the certificate in path (0 when it cannot be read). */
static int64_t
file_not_after(const char *path)
{
	X509 *x = NULL;
	int64_t nb, na = 0;
	char err[CA_ERR_MAX];

	if (path[0] == '\0' || !ca_cert_read(&x, path, err, sizeof(err)) ||
	    !ca_cert_times(x, &nb, &na))
		na = 0;
	X509_free(x);
	return na;
}

static void
si_work(void *arg)
{
	struct store_info si;

	(void)arg;
	/* the files: renewals replace ocsp.crt and tls.crt while running */
	atomic_store(&own_not_after[OWN_CA], file_not_after(micad.conf->ca.cert));
	atomic_store(&own_not_after[OWN_OCSP],
	    file_not_after(micad.conf->ca.ocsp_cert));
	atomic_store(&own_not_after[OWN_TLS],
	    file_not_after(micad.conf->ca.tls_cert));
	(void)store_read(micad.store, audit_count_txn, NULL);
	memset(&si, 0, sizeof(si));
	if (store_info_until(micad.store, &si, &si_stop) != STORE_OK)
		return;
	atomic_store(&si_vals[SI_MAP], si.map_size);
	atomic_store(&si_vals[SI_USED], si.used_bytes);
	atomic_store(&si_vals[SI_CERTS], si.num_certs);
	atomic_store(&si_vals[SI_GOOD], si.num_good);
	atomic_store(&si_vals[SI_HOLD], si.num_hold);
	atomic_store(&si_vals[SI_REVOKED], si.num_revoked);
	atomic_store(&si_vals[SI_ACCOUNTS], si.num_accounts);
	atomic_store(&si_vals[SI_REQUESTS], si.num_requests);
	atomic_store(&si_vals[SI_PENDING], si.num_pending);
	atomic_store(&si_vals[SI_AUDIT], si.num_audit);
	atomic_store(&si_vals[SI_REV_EVENTS], si.num_rev_events);
	atomic_store(&si_time, (int64_t)time(NULL));
}

static void
si_done(void *arg)
{
	(void)arg;
	atomic_store(&si_busy, 0);
}

static void
on_si_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!atomic_load(&si_wanted) || atomic_load(&si_busy))
		return;
	atomic_store(&si_wanted, 0);
	atomic_store(&si_busy, 1);
	if (!workq_submit(micad.workers, si_work, si_done, NULL))
		atomic_store(&si_busy, 0);
}

static void
metric(struct wb *m, const char *type, const char *name, const char *help,
    uint64_t v)
{
	char line[512];

	snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n%s %"
	    PRIu64 "\n", name, help, name, type, name, v);
	wb_str(m, line);
}

/* The last full CRL build. */
static void
crl_full_metrics(struct wb *m)
{
	struct crl_full_stats fs;
	char line[512];

	crl_service_full_stats(micad.crl, &fs);
	snprintf(line, sizeof(line),
	    "# HELP mica_crl_full_last_build_seconds Duration of the last "
	    "full CRL build (build, sign, publish).\n"
	    "# TYPE mica_crl_full_last_build_seconds gauge\n"
	    "mica_crl_full_last_build_seconds %.6f\n",
	    (double)fs.duration_usec / 1e6);
	wb_str(m, line);
	metric(m, "gauge", "mica_crl_full_last_entries",
	    "Entries (revoked certificates) in the last full CRL.",
	    fs.entries);
	metric(m, "gauge", "mica_crl_full_last_build_timestamp_seconds",
	    "thisUpdate (unix time) of the last full CRL built.",
	    (uint64_t)(fs.time > 0 ? fs.time : 0));
	metric(m, "counter", "mica_crl_full_builds_total",
	    "Full CRL builds (this run: resets at restart).", fs.builds);
	metric(m, "counter", "mica_crl_full_build_failures_total",
	    "Full CRL builds that failed (this run: resets at restart).",
	    fs.failures);
}

/* notAfter of the CA, OCSP signer and TLS certificates, and the seconds
 * left. */
static void
cert_metrics(struct wb *m)
{
	static const char *names[OWN_COUNT] = { "ca", "ocsp", "tls" };
	char line[256];
	int64_t na, now = (int64_t)time(NULL);
	int i;

	wb_str(m, "# HELP mica_certificate_not_after_timestamp_seconds "
	    "notAfter (unix time) of micad's own certificates: the CA, the "
	    "OCSP signer, the CA protocol's TLS certificate (read from the "
	    "files, refreshed with the store gauges; 0: unreadable).\n"
	    "# TYPE mica_certificate_not_after_timestamp_seconds gauge\n");
	for (i = 0; i < OWN_COUNT; i++) {
		snprintf(line, sizeof(line),
		    "mica_certificate_not_after_timestamp_seconds"
		    "{cert=\"%s\"} %" PRId64 "\n", names[i],
		    atomic_load(&own_not_after[i]));
		wb_str(m, line);
	}
	wb_str(m, "# HELP mica_certificate_expiry_seconds Seconds until "
	    "notAfter of micad's own certificates (negative: expired).\n"
	    "# TYPE mica_certificate_expiry_seconds gauge\n");
	for (i = 0; i < OWN_COUNT; i++) {
		if ((na = atomic_load(&own_not_after[i])) == 0)
			continue;
		snprintf(line, sizeof(line), "mica_certificate_expiry_seconds"
		    "{cert=\"%s\"} %" PRId64 "\n", names[i], na - now);
		wb_str(m, line);
	}
}

static void
crl_metrics(struct wb *m)
{
	const struct crl_snapshot *sn;
	char line[256];
	int k, pending;

	wb_str(m, "# HELP mica_crl_number Number of the published CRL.\n"
	    "# TYPE mica_crl_number gauge\n");
	for (k = CRL_FULL; k <= CRL_DELTA; k++) {
		/* an HTTP thread: none while the first build runs */
		if ((sn = crl_service_peek_nowait(micad.crl, (enum crl_kind)k,
		    &pending)) == NULL)
			continue;
		snprintf(line, sizeof(line), "mica_crl_number{kind=\"%s\"} %"
		    PRIu64 "\n", k == CRL_FULL ? "full" : "delta",
		    sn->number);
		wb_str(m, line);
		crl_snapshot_release(sn);
	}
	metric(m, "counter", "mica_crl_not_ready_total",
	    "CRL requests answered 503 with Retry-After because the first "
	    "CRLs of this start were still being built (this run: resets at "
	    "restart).", crl_service_not_ready_total(micad.crl));
	metric(m, "counter", "mica_crl_delta_builds_total",
	    "Delta CRL rebuilds after a status change (this run: resets at "
	    "restart).", micad_stat_get(MSTAT_CRL_DELTA_BUILDS));
	metric(m, "counter", "mica_crl_delta_build_failures_total",
	    "Delta CRL rebuilds that failed (this run: resets at restart).",
	    micad_stat_get(MSTAT_CRL_DELTA_FAILED));
	snprintf(line, sizeof(line), "# HELP mica_crl_delta_build_seconds_total"
	    " Time spent in delta CRL rebuilds (this run: resets at "
	    "restart).\n# TYPE mica_crl_delta_build_seconds_total counter\n"
	    "mica_crl_delta_build_seconds_total %.6f\n",
	    (double)micad_stat_get(MSTAT_CRL_DELTA_USEC) / 1e6);
	wb_str(m, line);
	crl_full_metrics(m);
}

static void
reissue_metrics(struct wb *m)
{
	static const struct {
		const char *state; enum micad_stat s; int before;
	} rs[] = {
		{ "created", MSTAT_REQ_CREATED, RQ_CREATED },
		{ "refused", MSTAT_REQ_REFUSED, RQ_REFUSED },
		{ "approved", MSTAT_REQ_APPROVED, RQ_APPROVED },
		{ "rejected", MSTAT_REQ_REJECTED, RQ_REJECTED },
	};
	char line[256];
	size_t i;

	wb_str(m, "# HELP mica_reissue_requests_total Reissue and enrolment "
	    "requests by outcome (kept across restarts: earlier runs are "
	    "counted from the audit trail).\n"
	    "# TYPE mica_reissue_requests_total counter\n");
	for (i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
		snprintf(line, sizeof(line), "mica_reissue_requests_total"
		    "{state=\"%s\"} %" PRIu64 "\n", rs[i].state,
		    micad_stat_get(rs[i].s) +
		    atomic_load(&req_before[rs[i].before]));
		wb_str(m, line);
	}
}

/* Connections refused, shed or closed by the listeners' flood limits. */
static void
conn_metrics(struct wb *m)
{
	static const struct { const char *label; enum ocsp_http_stat s; }
	    hs[] = {
		{ "max_connections", OCSP_HTTP_REFUSED_MAX_CONNECTIONS },
		{ "max_per_address", OCSP_HTTP_REFUSED_PER_ADDRESS },
		{ "shed", OCSP_HTTP_SHED },
		{ "header_timeout", OCSP_HTTP_HEADER_TIMEOUT },
	};
	static const struct { const char *label; enum ca_listener_stat s; }
	    ps[] = {
		{ "max_connections", CA_LISTENER_REFUSED_MAX_CONNECTIONS },
		{ "max_per_address", CA_LISTENER_REFUSED_PER_ADDRESS },
		{ "shed", CA_LISTENER_SHED },
		{ "handshake", CA_LISTENER_HANDSHAKE_FAILED },
		{ "login_timeout", CA_LISTENER_LOGIN_TIMEOUT },
		{ "prelogin_error", CA_LISTENER_PRELOGIN_ERROR },
	};
	char line[256];
	size_t i;

	wb_str(m, "# HELP mica_connections_dropped_total Connections refused "
	    "at accept (max_connections, max_per_address), shed to make "
	    "room (shed) or closed by a timeout before a request, by "
	    "listener and reason (this run: resets at restart).\n"
	    "# TYPE mica_connections_dropped_total counter\n");
	for (i = 0; http != NULL && i < sizeof(hs) / sizeof(hs[0]); i++) {
		snprintf(line, sizeof(line), "mica_connections_dropped_total"
		    "{listener=\"http\",reason=\"%s\"} %" PRIu64 "\n",
		    hs[i].label, ocsp_http_stat(http, hs[i].s));
		wb_str(m, line);
	}
	for (i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		snprintf(line, sizeof(line), "mica_connections_dropped_total"
		    "{listener=\"protocol\",reason=\"%s\"} %" PRIu64 "\n",
		    ps[i].label, ca_listener_stat(ps[i].s));
		wb_str(m, line);
	}	if (http == NULL)
		return;
	wb_str(m, "# HELP mica_ocsp_signer_busy_total OCSP requests answered "
	    "503 because the HTTP thread's queue for the signer process was "
	    "full (this run: resets at restart).\n"
	    "# TYPE mica_ocsp_signer_busy_total counter\n");
	snprintf(line, sizeof(line), "mica_ocsp_signer_busy_total %" PRIu64
	    "\n", ocsp_http_stat(http, OCSP_HTTP_SIGN_BUSY));
	wb_str(m, line);
}

static void
route_metrics(struct ocsp_http_req *req, const char *path, void *arg)
{
	struct wb m;
	enum ocsp_http_method meth = ocsp_http_req_method(req);
	int i;

	(void)path;
	(void)arg;
	if (meth != OCSP_HTTP_GET && meth != OCSP_HTTP_HEAD) {
		ocsp_http_add_header(req, "Allow", "GET, HEAD");
		ocsp_http_send_error(req, 405, "Method Not Allowed");
		return;
	}
	/* [http] metrics_from: immutable after start, so thread-safe */
	if (!conf_net_match(micad.conf->http.metrics_from,
	    micad.conf->http.num_metrics_from, ocsp_http_req_peer(req))) {
		ocsp_http_send_error(req, 403, "Forbidden");
		return;
	}
	wb_init(&m);
	if (micad.ocsp != NULL)
		ocsp_metrics_append(micad.ocsp, &m);
	if (micad.crl != NULL)
		crl_metrics(&m);
	reissue_metrics(&m);
	cert_metrics(&m);
	conn_metrics(&m);
	if (micad.ban != NULL)
		ban_metrics_append(micad.ban, &m);
	repl_metrics(&m);
	metric(&m, "counter", "mica_notify_delivered_total",
	    "Notify events delivered (command exited 0; this run: resets at "
	    "restart).",
	    notify_stat_delivered(micad.notify));
	metric(&m, "counter", "mica_notify_failures_total",
	    "Failed notify command runs (retried; this run: resets at "
	    "restart).",
	    notify_stat_failures(micad.notify));
	metric(&m, "gauge", "mica_notify_queued", "Notify events waiting.",
	    notify_stat_queued(micad.notify));
	metric(&m, "counter", "mica_expiry_events_total",
	    "cert.expiring events emitted (this run: resets at restart).",
	    micad_stat_get(MSTAT_EXPIRY_SENT));
	metric(&m, "counter", "mica_store_write_batches_total",
	    "Writer group commits (one journal and one store fsync each).",
	    micad_stat_get(MSTAT_WRITE_COMMITS));
	metric(&m, "counter", "mica_store_writes_grouped_total",
	    "Writes that shared a group commit with an earlier one.",
	    micad_stat_get(MSTAT_WRITE_GROUPED));
	metric(&m, "counter", "mica_auth_failures_total",
	    "Failed CA protocol logins (from the audit trail, so kept across "
	    "restarts; refreshed with the store gauges).",
	    atomic_load(&auth_failures));
	metric(&m, "counter", "mica_auth_logins_total",
	    "Successful CA protocol logins (from the audit trail, so kept "
	    "across restarts).",
	    atomic_load(&auth_logins));
	atomic_store(&si_wanted, 1);
	for (i = 0; i < SI_COUNT; i++)
		metric(&m, "gauge", si_names[i], "Store contents (refreshed "
		    "at most every 5 s).", atomic_load(&si_vals[i]));
	metric(&m, "gauge", "mica_store_info_timestamp_seconds",
	    "When the store gauges were computed.",
	    (uint64_t)atomic_load(&si_time));
	metric(&m, "gauge", "mica_uptime_seconds", "Seconds since start.",
	    (uint64_t)(time(NULL) - micad.started));
	if (!wb_ok(&m) || !ocsp_http_body_add(req, m.data, m.len)) {
		wb_cleanup(&m);
		ocsp_http_send_error(req, 500, "Internal Server Error");
		return;
	}
	wb_cleanup(&m);
	ocsp_http_add_header(req, "Content-Type", "text/plain; version=0.0.4");
	ocsp_http_send(req, 200, "OK");
}

/*
 * The path parts of [ca] http_url and of the earlier URLs in
 * old_http_urls: certificates carry <url>/ocsp, <url>/crl, ...; after
 * http_url changed, both the old and the new certificates' URLs must be
 * answered.  1, or 0 when the HTTP layer refused one.
 */
static int
add_url_prefixes(struct ocsp_http *h, const struct mica_conf *c)
{
	char buf[CONF_STR_MAX], path[CONF_STR_MAX], *tok, *p, *save = NULL;

	if (conf_url_path(path, sizeof(path), c->ca.http_url) &&
	    !ocsp_http_add_prefix(h, path))
		return 0;
	snprintf(buf, sizeof(buf), "%s", c->ca.old_http_urls);
	for (p = buf; (tok = strtok_r(p, ", \t", &save)) != NULL; p = NULL)
		if (conf_url_path(path, sizeof(path), tok) &&
		    !ocsp_http_add_prefix(h, path))
			return 0;
	return 1;
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_clock_mark();
	log_info("signal %d: stopping", (int)sig);
	micad.stopping = 1;
	event_base_loopexit(micad.base, NULL);
}

/*
 * SIGHUP: re-reads the config and publishes the reloadable settings as
 * one copy (micad_settings_set), so a job on another thread sees either
 * the old or the new ones, never a mix.  micad.conf itself is not
 * written: other threads read it without a lock.
 */
static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct mica_conf *nc;
	struct micad_settings ns;
	char err[1024];

	(void)sig;
	(void)what;
	(void)arg;
	if ((nc = calloc(1, sizeof(*nc))) == NULL)
		goto out;
	if (!conf_load(nc, micad.conf->path, err, sizeof(err))) {
		log_warnx("SIGHUP: configuration not reloaded: %s", err);
		goto out;
	}
	if (!micad_settings_from_conf(&ns, nc, err, sizeof(err))) {
		log_warnx("SIGHUP: configuration not reloaded: [ca] "
		    "profile: %s", err);
		goto out;
	}
	micad_settings_set(&micad, &ns);
	log_setlevel(nc->daemon.log_level);
	if (micad.notify != NULL)
		notify_set_command(micad.notify, nc->daemon.notify_command);
	ca_listener_set_argon2(ns.policy.argon2_opslimit,
	    (size_t)ns.policy.argon2_memlimit);
	log_info("SIGHUP: reloaded [daemon] log_level=%s notify_command, "
	    "[policy] review=%s argon2_opslimit=%" PRIu64 " argon2_memlimit=%"
	    PRIu64 " (and the rest of [policy]), [ca] "
	    "default_days=%d key_usage ext_key_usage copy_san "
	    "renew_before_days, [profile.*]; not reloaded (restart needed): listeners, "
	    "keys and certificates, store, [http], [protocol], [crl], [admin], "
	    "[daemon] user/group/workers/notify_timeout/notify_retry_delay/"
	    "expiry_interval", nc->daemon.log_level == LOG_LVL_DEBUG ?
	    "debug" : nc->daemon.log_level == LOG_LVL_INFO ? "info" :
	    nc->daemon.log_level == LOG_LVL_WARN ? "warn" : "error",
	    nc->policy.review == REVIEW_AUTO ? "auto" : "manual",
	    nc->policy.argon2_opslimit, nc->policy.argon2_memlimit,
	    nc->ca.default_days);
 out:
	free(nc);
}

/* As root: the OCSP responder and the HTTP sockets, bound, no thread. */
static void
bind_http(struct mica_conf *c)
{
	struct ocsp_opts oo;
	struct ocsp_http_opts ho;
	X509 *ca = ca_signer_get0_cert(micad.signer);

	ocsp_opts_defaults(&oo);
	oo.next_update = c->http.ocsp_next_update;
	oo.max_certids = c->http.ocsp_max_certids;
	oo.unknown_revoked = c->http.ocsp_unknown_revoked;
	oo.max_request = (size_t)c->http.max_body;
	/* responses are signed by the signer process; the stand-in key
	 * only tells the encoder the signature algorithm */
	oo.rsign = sign_client_rsign(micad.sclient);
	micad.ocsp = ocsp_responder_new(&oo, ca,
	    ca_signer_get0_ocsp_cert(micad.signer),
	    sign_client_standin(micad.sclient,
	    ca_signer_get0_ocsp_cert(micad.signer)), micad.store);
	if (micad.ocsp == NULL)
		fatalx("cannot start the OCSP responder");

	ocsp_http_opts_defaults(&ho);
	if (strlen(c->http.listen) >= sizeof(ho.listen))
		fatalx("[http] listen: too long");
	memcpy(ho.listen, c->http.listen, strlen(c->http.listen) + 1);
	ho.threads = c->http.threads;
	ho.signers = c->http.signers;
	ho.max_body = c->http.max_body;
	ho.timeout = c->http.idle_timeout;
	ho.header_timeout = c->http.header_timeout;
	ho.max_connections = c->http.max_connections;
	ho.max_per_address = c->http.max_per_address;
	ho.shed_start = c->http.shed_start;
	ho.cache_max_age = c->http.cache_max_age;
	if ((http = ocsp_http_new(micad.ocsp, &ho)) == NULL)
		fatalx("cannot set up HTTP on %s", c->http.listen);
	if (!load_ca_files(c->ca.cert) || !load_chain_pem())
		fatalx("cannot read %s", c->ca.cert);
	if (!add_url_prefixes(http, c))
		fatalx("cannot serve the paths of [ca] http_url and "
		    "old_http_urls (at most 8)");
	if (!ocsp_http_add_route(http, "/ca.", route_ca, NULL) ||
	    !ocsp_http_add_route(http, "/chain.", route_ca, NULL) ||
	    !ocsp_http_add_route(http, "/crl", route_crl, NULL) ||
	    !ocsp_http_add_route(http, "/metrics", route_metrics, NULL))
		fatalx("cannot add the HTTP routes");
	if (!ocsp_http_bind(http))
		fatalx("cannot listen for HTTP on %s", c->http.listen);
}

/*
 * The CRL thread made the first CRLs (or could not): a copy for a later
 * restore, or stop (micad exits 1).
 */
static void
on_crl_ready(void *arg, int ok)
{
	(void)arg;
	if (ok) {
		restore_keep_crls(micad.crl, micad.crl_keep_dir,
		    RESTORE_KEEP_FULL, RESTORE_KEEP_DELTA);
		return;
	}
	log_warnx("cannot make the first CRLs; stopping");
	atomic_store(&crl_failed, 1);
	kill(getpid(), SIGTERM);
}

/*
 * After the privilege drop: the CRL service and the HTTP threads.  The
 * CRL thread makes the first CRLs in the background (OCSP does not wait
 * for them); until then the CRLs published before are served if they
 * are the last ones the signer signed and still current, else a CRL
 * request gets 503 with Retry-After at once (the HTTP threads never
 * wait for the build).
 */
static void
start_serving(struct mica_conf *c)
{
	struct crl_opts co;

	memset(&co, 0, sizeof(co));
	co.full_interval = c->crl.full_interval;
	co.next_update = c->crl.next_update;
	co.delta_max_age = c->crl.delta_max_age;
	co.base_url = c->ca.http_url;
	co.publish_dir = c->crl.publish_dir;
	co.hwm = micad.hwm;
	co.rsign = sign_client_rsign(micad.sclient);
	co.background = 1;
	co.seed_dir = c->crl.publish_dir[0] != '\0' ? c->crl.publish_dir :
	    micad.crl_keep_dir;
	co.seed_name[CRL_FULL] = c->crl.publish_dir[0] != '\0' ?
	    "full.crl" : RESTORE_KEEP_FULL;
	co.seed_name[CRL_DELTA] = c->crl.publish_dir[0] != '\0' ?
	    "delta.crl" : RESTORE_KEEP_DELTA;
	co.seed_last[CRL_FULL] = signed_crl[0];
	co.seed_last[CRL_DELTA] = signed_crl[1];
	co.ready = on_crl_ready;
	if (repl_is_standby())	/* serves the CRLs its primary signed */
		goto http;
	micad.crl = crl_service_new(micad.store,
	    ca_signer_get0_cert(micad.signer),
	    X509_get0_pubkey(ca_signer_get0_cert(micad.signer)), &co);
	if (micad.crl == NULL)
		fatalx("cannot start the CRL service");
	step("start", "CRL service started");
 http:
	if (!ocsp_http_start(http))
		fatalx("cannot start HTTP on %s", c->http.listen);
	step("start", "HTTP threads serving");
	log_info("http listening on %s (OCSP, CRL, CA certificate)",
	    c->http.listen);
}

/*
 * SIGHUP re-reads the config as the user micad runs as: say now, not at
 * the first SIGHUP, when that cannot work.
 */
static void
check_reloadable(const struct privdrop *pd, const char *path)
{
	char err[CONF_PATH_MAX + 256];

	if (!pd->active)
		return;
	if (!privdrop_can_read(pd, path, err, sizeof(err)))
		log_warnx("SIGHUP will not be able to reload: %s is not "
		    "readable by %s (%s)", path, pd->user, err);
}

/*
 * Where the last published CRLs are for a restore: [crl] publish_dir, or
 * copies micad keeps next to the high-water mark.
 */
static void
restore_paths(const struct mica_conf *c, struct restore_opts *ro)
{
	static char keep[CONF_PATH_MAX];
	char *slash;

	ro->hwm_path = c->store.hwm_file;
	ro->store_path = c->store.path;
	ro->ca_cert = ca_signer_get0_cert(micad.signer);
	if (c->crl.publish_dir[0] != '\0') {
		ro->crl_dir = c->crl.publish_dir;
		ro->full_name = "full.crl";
		ro->delta_name = "delta.crl";
		return;
	}
	snprintf(keep, sizeof(keep), "%s", c->store.hwm_file);
	if ((slash = strrchr(keep, '/')) == NULL)
		snprintf(keep, sizeof(keep), ".");
	else if (slash == keep)
		keep[1] = '\0';
	else
		*slash = '\0';
	ro->crl_dir = micad.crl_keep_dir = keep;
	ro->full_name = RESTORE_KEEP_FULL;
	ro->delta_name = RESTORE_KEEP_DELTA;
}

/* micad -n: compares the store (read-only) with the high-water mark. */
static int
check_restore(const struct mica_conf *c, int accept)
{
	struct restore_opts ro;
	struct store_opts so;
	struct store *st = NULL;
	struct hwm *h = NULL;
	char err[2048];
	enum store_rc rc;
	int ok = 1;

	memset(&so, 0, sizeof(so));
	so.read_only = 1;
	if ((rc = store_open(&st, c->store.path, &so)) != STORE_OK) {
		log_warnx("store %s: %s; not compared with the high-water mark",
		    c->store.path, store_strerror(rc));
		return 1;
	}
	memset(&ro, 0, sizeof(ro));
	restore_paths(c, &ro);
	ro.accept = accept;
	ro.check_only = 1;
	if (!restore_guard(&h, st, &ro, err, sizeof(err))) {
		log_warnx("refusing to start: %s", err);
		ok = 0;
	}
	if (c->store.journal_dir[0] != '\0') {
		char info[2048];

		if (!store_journal_check(st, c->store.journal_dir, info,
		    sizeof(info), err, sizeof(err))) {
			log_warnx("refusing to start: %s", err);
			ok = 0;
		} else
			log_info("%s", info);
	}
	hwm_free(h);
	store_close(st);
	return ok;
}

/*
 * At start, as root: the high-water mark must be owned like the keys;
 * compare it with the store (refuse an older one unless accepted), then
 * hand the file to the user micad runs as.
 */
static void
guard_restore(struct mica_conf *c, const struct privdrop *pd, int accept)
{
	struct restore_opts ro;
	struct stat sb;
	char err[2048];

	if (lstat(c->store.hwm_file, &sb) == 0 &&
	    !privdrop_check_key(pd, c->store.hwm_file, err, sizeof(err)))
		fatalx("refusing to start: %s", err);
	memset(&ro, 0, sizeof(ro));
	restore_paths(c, &ro);
	ro.accept = accept;
	if (!restore_guard(&micad.hwm, micad.store, &ro, err, sizeof(err)))
		fatalx("refusing to start: %s", err);
	if (!privdrop_chown(pd, c->store.hwm_file, 0))
		fatalx("cannot hand %s to %s", c->store.hwm_file, pd->user);
}

/* "ca key: token mica object ca" at start: where each key lives. */
static void
log_key_places(const struct mica_conf *c)
{
	char where[CA_KEY_URI_MAX + 32];

	ca_key_describe(where, sizeof(where), c->ca.key);
	log_info("ca key: %s", where);
	if (c->ca.ocsp_cert[0] == '\0')
		log_info("ocsp signer key: the CA key");
	else {
		ca_key_describe(where, sizeof(where), c->ca.ocsp_key);
		log_info("ocsp signer key: %s", where);
	}
}

/*
 * The journal position never goes back: the high-water mark's journal_seq
 * is the store's seq at the last start and clean stop.  A store behind it
 * lost acknowledged changes (a backup restored without its journal):
 * refused unless --accept-restore, which moves the mark down to it.
 */
static void
guard_journal(const struct mica_conf *c, int accept)
{
	struct store_journal_info ji;
	struct hwm_state hs;
	enum store_rc rc;

	if (micad.hwm == NULL)
		return;
	if ((rc = store_journal_info(micad.store, &ji)) != STORE_OK)
		fatalx("store %s: %s", c->store.path, store_strerror(rc));
	hwm_get(micad.hwm, &hs);
	if (hs.journal_seq > ji.seq && !accept)
		fatalx("refusing to start: store %s is at journal seq %" PRIu64
		    " but the high-water mark %s records seq %" PRIu64 ": "
		    "changes were acknowledged that this store lacks (a "
		    "backup restored without its journal?).  Restore it with "
		    "mica-admin restore BACKUP --journal DIR --to NEWDIR, or "
		    "start once with micad --accept-restore", c->store.path,
		    ji.seq, hwm_path(micad.hwm), hs.journal_seq);
	if (hs.journal_seq != ji.seq) {
		hs.journal_seq = ji.seq;
		if (!hwm_set(micad.hwm, &hs))
			fatalx("cannot write the high-water mark %s",
			    hwm_path(micad.hwm));
	}
}

/* At a clean stop: the mark's journal_seq catches up with the store. */
static void
mark_journal(void)
{
	struct store_journal_info ji;
	struct hwm_state hs;

	if (micad.hwm == NULL || micad.store == NULL ||
	    store_journal_info(micad.store, &ji) != STORE_OK)
		return;
	hwm_get(micad.hwm, &hs);
	if (ji.seq > hs.journal_seq) {
		hs.journal_seq = ji.seq;
		if (!hwm_set(micad.hwm, &hs))
			log_warnx("cannot record journal seq %" PRIu64 " in the "
			    "high-water mark", ji.seq);
	}
}

/* The TOTP sealing key (micad.totp_key), freed at the end. */
static struct totpseal_key *totp_key;

/*
 * At start, as root, before the store opens (a schema 3 store is sealed
 * with it in the opening transaction): the TOTP key, made on first use
 * for a CA directory from before it existed, owned like the other keys.
 */
static struct totpseal_key *
load_totp_key(const struct mica_conf *c, const struct privdrop *pd,
    int *out_created)
{
	struct totpseal_key *k = NULL;
	struct stat sb;
	char err[2048];
	enum totpseal_load lr;

	if (lstat(c->store.totp_key_file, &sb) == 0 &&
	    !privdrop_check_key(pd, c->store.totp_key_file, err, sizeof(err)))
		fatalx("refusing to start: %s", err);
	lr = totpseal_key_load(&k, c->store.totp_key_file, 1, err,
	    sizeof(err));
	if (lr == TOTPSEAL_FAILED)
		fatalx("refusing to start: %s", err);
	*out_created = lr == TOTPSEAL_CREATED;
	if (lr == TOTPSEAL_CREATED) {
		log_info("TOTP key created: %s (back it up separately: it is "
		    "not in the store or a backup)", c->store.totp_key_file);
		if (!privdrop_chown(pd, c->store.totp_key_file, 0))
			fatalx("cannot hand %s to %s",
			    c->store.totp_key_file, pd->user);
	}
	return k;
}

/*
 * As root: the journal directory (store_open may have made it) and its
 * segments go to the user micad runs as, who appends and rotates.
 */
static void
chown_journal(const struct mica_conf *c, const struct privdrop *pd)
{
	char path[CONF_PATH_MAX + 300];
	struct dirent *e;
	DIR *d;

	if (c->store.journal_dir[0] == '\0')
		return;
	if (!privdrop_chown(pd, c->store.journal_dir, 0))
		fatalx("cannot hand %s to %s", c->store.journal_dir, pd->user);
	if ((d = opendir(c->store.journal_dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strstr(e->d_name, ".mjnl") == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->store.journal_dir,
		    e->d_name);
		if (!privdrop_chown(pd, path, 0))
			fatalx("cannot hand %s to %s", path, pd->user);
	}
	closedir(d);
}

/* What the command line asked for. */
struct args {
	const char	*cpath;
	int		 check;
	int		 debug;
	int		 accept_restore;
};

static void
parse_args(struct args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'n' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "accept-restore", no_argument, NULL, 'R' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(a, 0, sizeof(*a));
	a->cpath = getenv("MICA_CONF");
	while ((ch = getopt_long(argc, argv, "c:ndhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			a->cpath = optarg;
			break;
		case 'n':
			a->check = 1;
			break;
		case 'd':
			a->debug = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'R':
			a->accept_restore = 1;
			break;
		case 'V':
			printf("micad %s\n", MICA_VERSION);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (a->cpath == NULL)
		a->cpath = "mica.conf";
}

/* The configuration, the log level and the issuance profile. */
static void
load_config(struct mica_conf *conf, const struct args *a)
{
	struct micad_settings set;
	struct rlimit no_core = { 0, 0 };
	char err[1024];

	if (!conf_load(conf, a->cpath, err, sizeof(err)))
		fatalx("%s", err);
	log_setlevel(a->debug ? LOG_LVL_DEBUG : conf->daemon.log_level);
	/* the issuance profile is checked now, not at first use; published
	 * before any other thread runs */
	if (!micad_settings_from_conf(&set, conf, err, sizeof(err)))
		fatalx("%s: [ca] profile: %s", a->cpath, err);
	micad_settings_set(&micad, &set);
	/* Passwords, TOTP secrets and the TLS key pass through this
	 * process's memory: never into a core dump (nor readable by a
	 * same-uid ptrace). */
	if (setrlimit(RLIMIT_CORE, &no_core) != 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_warn("cannot disable core dumps");
	if (sodium_init() < 0)
		fatalx("libsodium initialisation failed");
}

/* [daemon] user, and key files that belong to it. */
static void
check_user(struct mica_conf *c, struct privdrop *pd, const char *cpath)
{
	char err[1024];

	if (!privdrop_resolve(pd, c->daemon.user, c->daemon.group, err,
	    sizeof(err)))
		fatalx("%s", err);
	check_reloadable(pd, cpath);
	/* A token key (pkcs11: URI) has no file; its PIN file is checked
	 * when the signer reads it. */
	if ((!ca_key_is_uri(c->ca.key) &&
	    !privdrop_check_key(pd, c->ca.key, err, sizeof(err))) ||
	    (!ca_key_is_uri(c->ca.ocsp_key) &&
	    !privdrop_check_key(pd, c->ca.ocsp_key, err, sizeof(err))) ||
	    !privdrop_check_key(pd, c->ca.tls_key, err, sizeof(err)) ||
	    !privdrop_check_key(pd, c->ca.key_passphrase_file, err,
	    sizeof(err)))
		fatalx("refusing to start: %s", err);
}

/*
 * The signer's HELLO answer: its keys are loaded (else micad stops with
 * its reason), and the numbers of the last CRLs it signed.  Once.
 */
static void
signer_ready(void)
{
	static int done;
	char err[2048], info[4096];
	const char *p;

	if (done)
		return;
	if (!sign_client_ready(micad.sclient, info, sizeof(info), err,
	    sizeof(err)))
		fatalx("%s", err);
	done = 1;
	step("start", "signer HELLO answered");
	log_info("signer process: %s", info);
	if ((p = strstr(info, " crl_full=")) == NULL ||
	    sscanf(p, " crl_full=%" SCNu64 " crl_delta=%" SCNu64,
	    &signed_crl[0], &signed_crl[1]) != 2)
		signed_crl[0] = signed_crl[1] = 0;	/* serve none before */
}

/*
 * Forks the signer process, the only one that loads the CA and OCSP
 * keys (it also finishes a renewal that crashed between its renames);
 * this process keeps the certificates.  The signer loads its keys while
 * this process goes on (signer_ready waits for it before the privilege
 * drop, a renewal at start as soon as it signs), unless a renewal was
 * interrupted: the signer's renames come before the certificates are
 * read here.
 */
static void
start_signer(struct mica_conf *c, const struct privdrop *pd)
{
	X509 *ca = NULL, *ocsp = NULL;
	char err[2048];

	ca_key_pkcs11_module(c->ca.pkcs11_module);	/* read in the signer */
	if ((micad.sclient = sign_client_spawn(c, pd, err, sizeof(err))) ==
	    NULL)
		fatalx("%s", err);
	step("start", "signer forked");
	if (renew_interrupted(c))
		signer_ready();
	if (!ca_cert_read(&ca, c->ca.cert, err, sizeof(err)) ||
	    (c->ca.ocsp_cert[0] != '\0' &&
	    !ca_cert_read(&ocsp, c->ca.ocsp_cert, err, sizeof(err))) ||
	    !ca_signer_new_remote(&micad.signer, ca, ocsp, sign_client_cert,
	    micad.sclient, err, sizeof(err)))
		fatalx("%s", err);
	ca_signer_set_remote_der(micad.signer, sign_client_der);
	X509_free(ca);
	X509_free(ocsp);
	load_chain(c);
	log_key_places(c);
}

/* micad -n: the keys loaded (in the signer), the store compared. */
static int
check_only(const struct mica_conf *c, int accept_restore)
{
	int ok;

	signer_ready();
	ok = check_restore(c, accept_restore);

	sk_X509_pop_free(micad.chain, X509_free);
	ca_signer_free(micad.signer);
	sign_client_free(micad.sclient);
	if (!ok)
		return 1;
	printf("configuration OK\n");
	return 0;
}

static void
open_store(struct mica_conf *c, const struct privdrop *pd, int accept)
{
	struct store_opts so;
	enum store_rc rc;
	int standby;

	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0)
		fatalx("libevent threads unavailable");
	memset(&so, 0, sizeof(so));
	so.map_size = c->store.map_size;
	so.map_max = c->store.map_max;
	so.no_grow = c->store.no_grow;
	so.exclusive = 1;
	so.totp_key = micad.totp_key = totp_key = load_totp_key(c, pd,
	    &so.totp_key_new);
	if (c->store.journal_dir[0] != '\0') {
		so.journal_dir = c->store.journal_dir;
		so.journal_segment_size = c->store.journal_segment_size;
	}
	step("start", "TOTP key loaded");
	rc = store_open(&micad.store, c->store.path, &so);
	step("start", "store_open");
	if (rc != STORE_OK && so.totp_key_new)
		unlink(c->store.totp_key_file);	/* not the right one */
	if (rc == STORE_INVALID && so.totp_key_new)
		fatalx("store %s: the TOTP key %s is missing and the accounts' "
		    "TOTP secrets are sealed with it: restore it from your "
		    "copy of the keys", c->store.path,
		    c->store.totp_key_file);
	if (rc == STORE_LOCKED)
		fatalx("store %s is in use by another micad; refusing to "
		    "start a second one", c->store.path);
	if (rc != STORE_OK)
		fatalx("store %s: %s", c->store.path, store_strerror(rc));
	/* a standby's store changes only with its primary's records */
	standby = repl_configured_standby(micad.store, c);
	store_set_standby(micad.store, standby);
	/* the audit trail so far: what /metrics counts from earlier runs
	 * (the worker goes on from there) */
	audit_at_start = 1;
	if (store_read(micad.store, audit_count_txn, NULL) != STORE_OK)
		log_warnx("metrics: the audit trail could not be counted");
	audit_at_start = 0;
	step("start", "audit trail counted");
	/* a standby's store is its primary's: no own high-water mark */
	if (!standby) {
		guard_restore(c, pd, accept);
		guard_journal(c, accept);
		step("start", "restore and journal guards");
	}
	chown_journal(c, pd);
	micad.conf = c;
	micad.started = time(NULL);
}

/* As root, before any thread serves: renew, bind every socket. */
static void
bind_all(struct mica_conf *c, const struct privdrop *pd)
{
	int renewed = 0;
	char err[1024];

	if ((micad.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if (!repl_init(&micad, err, sizeof(err)) ||
	    !repl_bind(&micad, err, sizeof(err)))
		fatalx("%s", err);
	/* a standby has no CA key: mica-admin replica add again instead */
	if (!repl_is_standby() &&
	    !renew_at_start(&micad, pd, &renewed, err, sizeof(err)))
		fatalx("certificate renewal: %s", err);
	step("start", "replication set up, renewal checked");
	bind_http(c);
	step("start", "HTTP bound");
	/* The CA listener wants the pool; workers get work only from the
	 * loop, which runs after the drop. */
	if ((micad.workers = workq_new(micad.base, c->daemon.workers)) ==
	    NULL)
		fatalx("cannot start worker threads");
	/* Every store commit of the loop's callers, in order, off the loop;
	 * the OCSP/CRL updates after a status change run there too. */
	if ((micad.writer = workq_new(micad.base, 1)) == NULL)
		fatalx("cannot start the writer thread");
	/* Operators' issuances are signed there, many at once, before their
	 * writes (ca/micad.h) */
	if ((micad.presign = workq_new(micad.base, MICAD_PRESIGN_THREADS)) ==
	    NULL)
		fatalx("cannot start the signing threads");
	/* An OCSP signer found invalid while signing kicks a renewal. */
	if (!renew_start(&micad))
		fatalx("cannot set up certificate renewal");
	if ((micad.reissue = reissue_new(&micad)) == NULL)
		fatalx("cannot set up the reissue workflow");
	step("start", "worker threads");
	if (!ca_listener_start(&micad))
		fatalx("cannot listen for the CA protocol on %s",
		    c->proto.listen);
	step("start", "CA protocol listener (TLS context)");
	if (!adm_server_start(&micad))
		fatalx("cannot serve the admin socket %s", c->admin.socket);
	step("start", "admin socket");
}

/* Everything is bound: hand the admin socket over, drop root for good. */
static void
drop_privileges(struct mica_conf *c, const struct privdrop *pd)
{
	char err[1024];

	if (!privdrop_chown(pd, c->admin.socket, c->admin.group[0] != '\0'))
		fatalx("cannot hand the admin socket to %s", pd->user);
	if (!privdrop_drop(pd, err, sizeof(err)))
		fatalx("%s", err);
	/* setuid made the process dumpable again; and nothing it runs (the
	 * notify command) gains privileges through set-uid bits */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		log_warn("prctl");
}

/* After the drop: notifier, CRLs, HTTP threads, expiry, metrics. */
static void
start_services(struct mica_conf *c)
{
	struct notify_opts no;
	struct timeval si_tv = { SI_REFRESH_S, 0 };
	char err[256];

	/* [http] ban_urls: before the first write can change a status */
	if ((micad.ban = ban_new(c->http.ban_urls, c->http.ban_timeout_ms,
	    err, sizeof(err))) == NULL && err[0] != '\0')
		fatalx("%s: [http] %s", c->path, err);
	if (micad.ban != NULL)
		log_info("ban: %d HTTP caches (%s), timeout %d ms",
		    ban_num_caches(micad.ban), c->http.ban_urls,
		    c->http.ban_timeout_ms);
	memset(&no, 0, sizeof(no));
	no.command = c->daemon.notify_command;
	no.timeout = c->daemon.notify_timeout;
	no.retry_delay = c->daemon.notify_retry_delay;
	if ((micad.notify = notify_new(&no)) == NULL)
		fatalx("cannot start the notifier");
	step("start", "ban and notifier");
	start_serving(c);
	if (!repl_is_standby() && (micad.expiry = expiry_new(&micad,
	    c->daemon.expiry_interval)) == NULL)
		fatalx("cannot start the expiry watch");
	step("start", "expiry watch");
	if ((si_timer = event_new(micad.base, -1, EV_PERSIST, on_si_timer,
	    NULL)) == NULL || event_add(si_timer, &si_tv) != 0)
		fatalx("cannot start the metrics timer");
	on_si_timer(-1, 0, NULL);
	if (!repl_start(&micad))
		fatalx("cannot start replication");
	step("start", "metrics walk and replication started");
	/* review = auto: what a stop left pending is decided now. */
	if (!repl_is_standby() && !reissue_resume_auto(&micad))
		log_warnx("requests left pending were not looked at");
}

static atomic_int signer_lost;

/* Receiver thread: the signer is gone; stop like on SIGTERM. */
static void
on_signer_lost(void *arg)
{
	(void)arg;
	atomic_store(&signer_lost, 1);
	kill(getpid(), SIGTERM);
}

static struct event *sig_ev[3];

/*
 * SIGTERM, SIGINT and SIGHUP are caught before anything serves: a stop
 * that comes as soon as the first OCSP answer went out is a clean stop
 * (handled when the loop runs), not the default death by signal.  Not
 * earlier: until the signer has answered (a token may be slow), a stop
 * still ends micad at once, as nothing has been served.
 */
static void
catch_signals(void)
{
	int i;

	sig_ev[0] = evsignal_new(micad.base, SIGTERM, on_stop, NULL);
	sig_ev[1] = evsignal_new(micad.base, SIGINT, on_stop, NULL);
	sig_ev[2] = evsignal_new(micad.base, SIGHUP, on_hup, NULL);
	for (i = 0; i < 3; i++)
		if (sig_ev[i] == NULL || event_add(sig_ev[i], NULL) != 0)
			fatalx("cannot set up the signal handlers");
}

static void
run_loop(const struct mica_conf *c)
{
	int i;

	sign_client_on_lost(micad.sclient, on_signer_lost, NULL);
	log_info("micad ready: CA protocol on %s, http on %s, admin socket %s",
	    c->proto.listen, c->http.listen, c->admin.socket);
	event_base_dispatch(micad.base);
	for (i = 0; i < 3; i++)
		event_free(sig_ev[i]);
}

/* Stop taking work, finish what is in flight, close cleanly. */
static void
shutdown_all(void)
{
	/* what runs in the background gives up: the walks of every
	 * certificate (metrics, expiry), a first CRL build not yet begun */
	atomic_store(&si_stop, 1);
	expiry_cancel();
	crl_service_stopping(micad.crl);
	adm_server_stop();
	ca_listener_stop();
	repl_stop();
	ocsp_http_stop(http);
	event_free(si_timer);
	step("stop", "listeners stopped");
	/* Workers first: their done callbacks (a hashed LOGIN, account add)
	 * queue writes; the writer then commits everything queued, runs the
	 * done callbacks (connections are gone: nobody is told) and joins,
	 * before the notifier, the CRL service and the store go. */
	workq_free(micad.workers);
	micad.workers = NULL;
	workq_free(micad.presign);	/* its done callbacks queue writes */
	micad.presign = NULL;
	workq_free(micad.writer);
	micad.writer = NULL;
	step("stop", "workers and writer joined");
	ban_free(micad.ban);
	micad.ban = NULL;
	mark_journal();
	step("stop", "journal position marked");
	expiry_free(micad.expiry);
	renew_stop();
	notify_free(micad.notify);
	reissue_free(micad.reissue);
	step("stop", "expiry, renewal, notifier, reissue freed");
	ocsp_http_free(http);
	step("stop", "HTTP threads joined");
	restore_keep_crls(micad.crl, micad.crl_keep_dir, RESTORE_KEEP_FULL,
	    RESTORE_KEEP_DELTA);
	step("stop", "CRLs kept");
	crl_service_free(micad.crl);
	step("stop", "CRL service joined");
	hwm_free(micad.hwm);
	ocsp_responder_free(micad.ocsp);
	event_base_free(micad.base);
	store_close(micad.store);
	step("stop", "store closed");
	totpseal_key_free(totp_key);
	micad.totp_key = NULL;
	ca_signer_free(micad.signer);
	/* the signer exits when its socket closes */
	sign_client_free(micad.sclient);
	step("stop", "signer exited");
	sk_X509_pop_free(micad.chain, X509_free);
	free(ca_der);
	free(ca_pem);
	free(chain_pem);
}

int
main(int argc, char **argv)
{
	static struct mica_conf conf;
	struct privdrop pd;
	struct args a;

	log_clock_mark();
	if (argc > 1 && strcmp(argv[1], "--argon2-dummy") == 0)
		return ca_listener_dummy_main(argc, argv);
	log_init("micad", LOG_LVL_INFO);
	log_stamp_auto();
	parse_args(&a, argc, argv);
	load_config(&conf, &a);
	step("start", "config loaded");
	check_user(&conf, &pd, a.cpath);
	step("start", "user and key files checked");
	start_signer(&conf, &pd);
	step("start", "certificates read");
	if (a.check)
		return check_only(&conf, a.accept_restore);
	open_store(&conf, &pd, a.accept_restore);
	step("start", "store open");
	bind_all(&conf, &pd);
	signer_ready();
	catch_signals();
	drop_privileges(&conf, &pd);
	step("start", "privileges dropped");
	start_services(&conf);
	step("start", "services started");
	run_loop(&conf);
	shutdown_all();
	step("stop", "done");
	repl_restart(argv);	/* after mica-admin promote */
	if (atomic_load(&crl_failed))
		return 1;
	if (atomic_load(&signer_lost)) {
		log_warnx("stopped: the signer process is gone (what was "
		    "committed is in the store); exit status 1");
		return 1;
	}
	log_info("stopped");
	return 0;
}
