/*
 * adm_cmd.c - the commands served on the admin socket.  They run on the
 * event loop; slow work (argon2id, backup, the walks over a whole table
 * in status, list and requests) goes to the worker pool and the reply is
 * sent from its done callback.  Every state change is one store
 * write transaction with its audit record, queued on micad's writer
 * thread (micad_write); after the commit, OCSP and the CRLs are brought
 * up to date there, and only then, back on the loop, is the admin told.
 * The adm_req lives until adm_done, so a done callback may always use it.
 */
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "admin/adm_local.h"
#include "ca/auth.h"
#include "ca/ban.h"
#include "ca/notify.h"
#include "ca/ca.h"
#include "ca/micad.h"
#include "ca/reissue.h"
#include "ca/renew.h"
#include "ca/repl.h"
#include "ca/restore.h"
#include "ca/subrenew.h"
#include "common/json.h"
#include "common/log.h"
#include "common/workq.h"
#include "conf/conf.h"
#include "crl/crl.h"
#include "ocsp/ocsp.h"
#include "store/store.h"

#define MAX_OPTS	40

struct args {
	const char	*pos[8];
	int		 num_pos;
	const char	*name[MAX_OPTS];
	const char	*val[MAX_OPTS];
	int		 num;
};

/*
 * Splits argv[start..] into positionals and options.  valopts take a
 * value, flags do not; anything else starting with "--" is a usage error.
 */
static int
args_parse(struct adm_req *r, int start, const char *valopts,
    const char *flags, struct args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = start; i < r->in.argc; i++) {
		const char *s = r->in.argv[i];
		char key[64];

		if (s[0] == '-' && s[1] != '-' && s[1] != '\0') {
			/* "-1", "-0A": serials and ids are positive (RFC
			 * 5280 section 4.1.2.2); "-x": not an option here */
			if (strspn(s + 1, "0123456789abcdefABCDEF:") ==
			    strlen(s + 1))
				adm_usage(r, "%s: a serial or id never starts "
				    "with '-' (serials are positive integers, "
				    "RFC 5280 section 4.1.2.2)", s);
			else
				adm_usage(r, "unknown option %s", s);
			return 0;
		}
		if (strncmp(s, "--", 2) != 0 || s[2] == '\0') {
			if (a->num_pos == 8) {
				adm_usage(r, "too many arguments");
				return 0;
			}
			a->pos[a->num_pos++] = s;
			continue;
		}
		snprintf(key, sizeof(key), " %s ", s);
		if (a->num == MAX_OPTS) {
			adm_usage(r, "too many options");
			return 0;
		}
		if (valopts != NULL && strstr(valopts, key) != NULL) {
			if (i + 1 >= r->in.argc) {
				adm_usage(r, "%s needs a value", s);
				return 0;
			}
			a->name[a->num] = s;
			a->val[a->num++] = r->in.argv[++i];
		} else if (flags != NULL && strstr(flags, key) != NULL) {
			a->name[a->num] = s;
			a->val[a->num++] = "";
		} else {
			adm_usage(r, "unknown option %s", s);
			return 0;
		}
	}
	return 1;
}

static int collect_sans(struct adm_req *, const char *, const struct args *,
    char **, size_t *);
static void free_texts(char **, size_t);

static const char *
arg(const struct args *a, const char *name)
{
	int i;
	const char *v = NULL;

	for (i = 0; i < a->num; i++)
		if (strcmp(a->name[i], name) == 0)
			v = a->val[i];
	return v;
}

static const char *
status_name(int st)
{
	switch (st) {
	case CERT_GOOD: return "good";
	case CERT_HOLD: return "hold";
	case CERT_REVOKED: return "revoked";
	default: return "unknown";
	}
}

static const char *
req_state_name(int st)
{
	switch (st) {
	case REQ_PENDING: return "pending";
	case REQ_APPROVED: return "approved";
	case REQ_REJECTED: return "rejected";
	case REQ_ISSUED: return "issued";
	default: return "unknown";
	}
}

static const char *
req_reason_name(int r)
{
	switch (r) {
	case REQREASON_LOST: return "lost";
	case REQREASON_COMPROMISED: return "compromised";
	case REQREASON_DAMAGED: return "damaged";
	default: return "unknown";
	}
}

/* ISO 8601 UTC, "-" for 0. */
static const char *
fmt_time(char buf[32], int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == 0) {
		snprintf(buf, 32, "-");
		return buf;
	}
	gmtime_r(&tt, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static int
parse_u64_arg(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return 0;
	*out = v;
	return 1;
}

static void
fail_store(struct adm_req *r, const char *what, enum store_rc rc)
{
	adm_fail(r, "%s: %s", what, store_strerror(rc));
}

/* ---- whole-store walks on a worker ---- */

/*
 * status, list and requests read every record of a table.  With 10^6
 * certificates that takes seconds, so the read transaction runs on a
 * worker (store_read begins its own there: LMDB read transactions belong
 * to one thread), the reply text is built in w->out, and walk_done sends
 * it from the loop.  Until adm_done the adm_req is the walk's: a client
 * that hangs up meanwhile only makes the reply's write fail, and
 * adm_server.c frees the connection then.  At most walk_max() walks run
 * at once, so that a worker stays free for argon2id (LOGIN, account
 * add); the others wait in walks, in order.
 */
struct walk;
typedef void (*walk_fn)(struct walk *);

struct walk {
	struct walk	*next;
	struct adm_req	*r;
	struct store	*store;
	const char	*what;		/* names the command in errors */
	walk_fn		 work;		/* worker: fills out, sets rc */
	walk_fn		 finish;	/* loop: rc is STORE_OK; may be NULL */
	void		*ctx;		/* the command's; freed with the walk */
	struct wb	 out;		/* the reply text, built by work */
	enum store_rc	 rc;
};

static struct {
	struct walk	*head, *tail;	/* waiting for a worker */
	int		 running;
} walks;

static int
walk_max(const struct micad *d)
{
	int n = 1;

	if (d->conf != NULL && d->conf->daemon.workers > 2)
		n = d->conf->daemon.workers - 1;
	return n;
}

static struct walk *
walk_new(struct adm_req *r, const char *what, walk_fn work, walk_fn finish,
    void *ctx)
{
	struct walk *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatalx("out of memory");
	w->r = r;
	w->store = r->d->store;
	w->what = what;
	w->work = work;
	w->finish = finish;
	w->ctx = ctx;
	wb_init(&w->out);	/* certificates and requests: not secret */
	w->rc = STORE_OK;
	return w;
}

static void
walk_free(struct walk *w)
{
	wb_cleanup(&w->out);
	free(w->ctx);
	free(w);
}

/* printf to a walk's buffer: what adm_out does, without the wiping. */
static void
walk_printf(struct wb *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
walk_printf(struct wb *o, const char *fmt, ...)
{
	va_list ap;
	char buf[512], *text = NULL;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0) {
		o->failed = 1;
		return;
	}
	if ((size_t)n < sizeof(buf)) {
		wb_put(o, buf, (size_t)n);
		return;
	}
	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0) {
		o->failed = 1;
		return;
	}
	wb_put(o, text, (size_t)n);
	free(text);
}

static void
walk_work(void *arg)
{
	struct walk *w = arg;

	w->work(w);
}

static void	walk_run_queued(struct micad *);

/* Loop: the walk is over; reply, then start the next one waiting. */
static void
walk_done(void *arg)
{
	struct walk *w = arg;
	struct adm_req *r = w->r;
	struct micad *d = r->d;

	walks.running--;
	if (r->rep.out.len == 0) {
		/* hand the buffer over: a list can be hundreds of MB */
		wb_cleanup(&r->rep.out);
		r->rep.out = w->out;
		wb_init(&w->out);
	} else {
		wb_put(&r->rep.out, w->out.data, w->out.len);
		if (!wb_ok(&w->out))
			r->rep.out.failed = 1;
	}
	if (w->rc != STORE_OK)
		fail_store(r, w->what, w->rc);
	else if (w->finish != NULL)
		w->finish(w);
	walk_free(w);
	adm_done(r);
	walk_run_queued(d);
}

/* Loop: starts waiting walks while there is room; replies to them when
 * the pool is stopping. */
static void
walk_run_queued(struct micad *d)
{
	struct walk *w;
	struct adm_req *r;

	while (walks.head != NULL && walks.running < walk_max(d)) {
		w = walks.head;
		if ((walks.head = w->next) == NULL)
			walks.tail = NULL;
		w->next = NULL;
		if (workq_submit(d->workers, walk_work, walk_done, w)) {
			walks.running++;
			continue;
		}
		r = w->r;
		adm_fail(r, "%s: micad is stopping", w->what);
		walk_free(w);
		adm_done(r);
	}
}

/*
 * Runs w on a worker now, or queues it.  On success the request is async
 * (walk_done replies); on failure w is freed, the error is in the reply
 * and the caller returns (adm_dispatch replies).
 */
static void
walk_start(struct walk *w)
{
	struct adm_req *r = w->r;

	if (walks.head == NULL && walks.running < walk_max(r->d)) {
		if (!workq_submit(r->d->workers, walk_work, walk_done, w)) {
			adm_fail(r, "%s: micad is stopping", w->what);
			walk_free(w);
			return;
		}
		walks.running++;
	} else {
		if (walks.tail != NULL)
			walks.tail->next = w;
		else
			walks.head = w;
		walks.tail = w;
	}
	r->async = 1;	/* walk_done replies */
}

/* ---- status ---- */

static void	status_caches(struct adm_req *, int);

struct status_ctx {
	int64_t			 now;
	int			 json;
	struct store_info	 info;
	struct store_journal_info journal;
	uint64_t		 expiring30;
	char			 restore[1024];	/* "" or an accepted restore */
};

static int
status_cert_cb(const struct cert_rec *c, void *arg)
{
	struct status_ctx *s = arg;

	if (c->st.status != CERT_REVOKED && c->st.not_after > s->now &&
	    c->st.not_after <= s->now + 30 * 86400)
		s->expiring30++;
	return 1;
}

static enum store_rc
status_read(struct store_txn *txn, void *arg)
{
	struct status_ctx *s = arg;

	if (!restore_status_line(txn, s->restore, sizeof(s->restore)))
		return STORE_IO;
	return store_cert_iter(txn, status_cert_cb, arg);
}

/* Worker. */
static void
status_work(struct walk *w)
{
	struct status_ctx *sc = w->ctx;

	if ((w->rc = store_info(w->store, &sc->info)) == STORE_OK &&
	    (w->rc = store_journal_info(w->store, &sc->journal)) == STORE_OK)
		w->rc = store_read(w->store, status_read, sc);
}

/* Loop: the counts are in; the signer and the CRL are the loop's. */
static void
status_finish(struct walk *w)
{
	struct adm_req *r = w->r;
	struct status_ctx *sc = w->ctx;
	const struct store_info *info = &sc->info;
	int64_t ocsp_exp = 0, crl_next = 0, ca_nb = 0, ca_na = 0;
	uint64_t crl_num = 0;
	int crl_building = 0;
	char t1[32], t2[32], t3[32];
	char ca_where[CA_KEY_URI_MAX + 32], ocsp_where[CA_KEY_URI_MAX + 32];
	int ca_ok;

	/* Where the keys live: "file PATH" or "token LABEL object LABEL". */
	ca_key_describe(ca_where, sizeof(ca_where), r->d->conf->ca.key);
	if (r->d->conf->ca.ocsp_cert[0] == '\0')
		snprintf(ocsp_where, sizeof(ocsp_where), "the CA key");
	else
		ca_key_describe(ocsp_where, sizeof(ocsp_where),
		    r->d->conf->ca.ocsp_key);

	/* The responder's signer: a renewal while running replaces it
	 * there, not in d->signer (which keeps the CA key). */
	if (r->d->ocsp != NULL) {
		int64_t nb;

		ocsp_responder_signer_times(r->d->ocsp, &nb, &ocsp_exp);
	}
	if (r->d->signer != NULL)
		ca_cert_times(ca_signer_get0_cert(r->d->signer), &ca_nb,
		    &ca_na);
	ca_ok = sc->now >= ca_nb && sc->now < ca_na;
	if (r->d->crl != NULL) {
		const struct crl_snapshot *snap;

		/* never waits: the loop would stall for the seconds a first
		 * build at 10^6 revocations takes (a background start) */
		snap = crl_service_peek_nowait(r->d->crl, CRL_FULL,
		    &crl_building);
		if (snap != NULL) {
			crl_num = snap->number;
			crl_next = snap->next_update;
			crl_snapshot_release(snap);
		}
	} else if (repl_is_standby()) {
		/* a standby builds none: the full CRL the primary signed */
		(void)repl_crl_info(0, &crl_num, &crl_next);
	}
	if (sc->json) {
		wb_u8(&r->rep.out, '{');
		json_kv_i64(&r->rep.out, 1, "uptime_seconds",
		    sc->now - r->d->started);
		json_kv_u64(&r->rep.out, 0, "store_bytes", info->used_bytes);
		json_kv_u64(&r->rep.out, 0, "map_bytes", info->map_size);
		json_kv_u64(&r->rep.out, 0, "certs", info->num_certs);
		json_kv_u64(&r->rep.out, 0, "good", info->num_good);
		json_kv_u64(&r->rep.out, 0, "hold", info->num_hold);
		json_kv_u64(&r->rep.out, 0, "revoked", info->num_revoked);
		json_kv_u64(&r->rep.out, 0, "accounts", info->num_accounts);
		json_kv_u64(&r->rep.out, 0, "requests", info->num_requests);
		json_kv_u64(&r->rep.out, 0, "pending_requests",
		    info->num_pending);
		json_kv_u64(&r->rep.out, 0, "audit_records", info->num_audit);
		json_kv_u64(&r->rep.out, 0, "crl_number", crl_num);
		json_kv_bool(&r->rep.out, 0, "crl_first_build", crl_building);
		json_kv_str(&r->rep.out, 0, "crl_next_update",
		    fmt_time(t1, crl_next));
		json_kv_str(&r->rep.out, 0, "ocsp_signer_expires",
		    fmt_time(t2, ocsp_exp));
		json_kv_str(&r->rep.out, 0, "ca_key", ca_where);
		json_kv_str(&r->rep.out, 0, "ocsp_signer_key", ocsp_where);
		json_kv_u64(&r->rep.out, 0, "expiring_30_days",
		    sc->expiring30);
		json_kv_str(&r->rep.out, 0, "ca_not_before",
		    fmt_time(t1, ca_nb));
		json_kv_str(&r->rep.out, 0, "ca_not_after",
		    fmt_time(t3, ca_na));
		json_kv_str(&r->rep.out, 0, "ca_validity", ca_ok ? "valid" :
		    sc->now < ca_nb ? "not yet valid" : "expired");
		if (sc->restore[0] != '\0')
			json_kv_str(&r->rep.out, 0, "restore", sc->restore);
		json_kv_str(&r->rep.out, 0, "journal", sc->journal.enabled ?
		    sc->journal.dir : "off");
		json_kv_u64(&r->rep.out, 0, "journal_seq", sc->journal.seq);
		json_kv_u64(&r->rep.out, 0, "journal_epoch",
		    sc->journal.epoch);
		json_kv_u64(&r->rep.out, 0, "journal_segments",
		    sc->journal.num_segments);
		json_kv_u64(&r->rep.out, 0, "journal_bytes",
		    sc->journal.bytes);
		status_caches(r, 1);
		repl_status(&r->rep.out, 1);
		wb_str(&r->rep.out, "}\n");
		return;
	}
	adm_out(r, "micad: running, uptime %llds\n",
	    (long long)(sc->now - r->d->started));
	adm_out(r, "store: %" PRIu64 " bytes used of %" PRIu64 " mapped\n",
	    info->used_bytes, info->map_size);
	adm_out(r, "certificates: %" PRIu64 " (good %" PRIu64 ", hold %"
	    PRIu64 ", revoked %" PRIu64 ")\n", info->num_certs,
	    info->num_good, info->num_hold, info->num_revoked);
	adm_out(r, "accounts: %" PRIu64 "\n", info->num_accounts);
	adm_out(r, "requests: %" PRIu64 " (pending %" PRIu64 ")\n",
	    info->num_requests, info->num_pending);
	adm_out(r, "audit records: %" PRIu64 "\n", info->num_audit);
	if (crl_building)
		adm_out(r, "crl number: none yet (the first build since the "
		    "start is running)\n");
	else
		adm_out(r, "crl number: %" PRIu64 ", next update %s\n",
		    crl_num, fmt_time(t1, crl_next));
	adm_out(r, "ocsp signer expires: %s\n", fmt_time(t2, ocsp_exp));
	adm_out(r, "ca key: %s\n", ca_where);
	adm_out(r, "ocsp signer key: %s\n", ocsp_where);
	adm_out(r, "expiring within 30 days: %" PRIu64 "\n", sc->expiring30);
	if (ca_ok)
		adm_out(r, "ca certificate: valid until %s\n",
		    fmt_time(t3, ca_na));
	else
		adm_out(r, "ca certificate: NOT VALID NOW (%s; valid %s to "
		    "%s): is the clock right?  Nothing can be issued or "
		    "renewed\n", sc->now < ca_nb ? "not yet valid" : "expired",
		    fmt_time(t1, ca_nb), fmt_time(t3, ca_na));
	if (sc->restore[0] != '\0')
		adm_out(r, "restore: %s\n", sc->restore);
	if (sc->journal.enabled)
		adm_out(r, "journal: %s at seq %" PRIu64 " (epoch %" PRIu64
		    "), %" PRIu64 " segments, %" PRIu64 " bytes\n",
		    sc->journal.dir, sc->journal.seq, sc->journal.epoch,
		    sc->journal.num_segments, sc->journal.bytes);
	else
		adm_out(r, "journal: off (store at seq %" PRIu64 "): changes "
		    "after the last backup are lost with the host\n",
		    sc->journal.seq);
	status_caches(r, 0);
	repl_status(&r->rep.out, 0);
}

/* [http] ban_urls: one line (or JSON object) per HTTP cache. */
static void
status_caches(struct adm_req *r, int json)
{
	struct ban_cache_stat st;
	char t1[32], t2[32];
	int i;

	if (json)
		wb_str(&r->rep.out, ",\"caches\":[");
	else if (r->d->ban == NULL)
		adm_out(r, "http caches: none ([http] ban_urls)\n");
	for (i = 0; ban_stat(r->d->ban, i, &st); i++) {
		if (!json) {
			adm_out(r, "http cache %s: last ban ok %s, %" PRIu64
			    " bans, %" PRIu64 " failures%s%s%s\n", st.url,
			    fmt_time(t1, st.last_ok), st.bans, st.failures,
			    st.failures > 0 ? " (last " : "",
			    st.failures > 0 ? fmt_time(t2, st.last_failure) :
			    "", st.failures > 0 ? ")" : "");
			if (st.failures > 0)
				adm_out(r, "http cache %s: last error: %s\n",
				    st.url, st.last_error);
			continue;
		}
		if (i > 0)
			wb_u8(&r->rep.out, ',');
		wb_u8(&r->rep.out, '{');
		json_kv_str(&r->rep.out, 1, "url", st.url);
		json_kv_u64(&r->rep.out, 0, "bans", st.bans);
		json_kv_u64(&r->rep.out, 0, "failures", st.failures);
		json_kv_str(&r->rep.out, 0, "last_ok", fmt_time(t1, st.last_ok));
		json_kv_str(&r->rep.out, 0, "last_failure",
		    fmt_time(t2, st.last_failure));
		json_kv_str(&r->rep.out, 0, "last_error", st.last_error);
		wb_u8(&r->rep.out, '}');
	}
	if (json)
		wb_u8(&r->rep.out, ']');
}

static void
cmd_status(struct adm_req *r)
{
	struct args a;
	struct status_ctx *sc;

	if (!args_parse(r, 1, NULL, " --json ", &a))
		return;
	if ((sc = calloc(1, sizeof(*sc))) == NULL)
		fatalx("out of memory");
	sc->json = arg(&a, "--json") != NULL;
	sc->now = time(NULL);
	walk_start(walk_new(r, "status", status_work, status_finish, sc));
}

/* ---- accounts ---- */

static int
valid_name(const char *n)
{
	size_t i, l = strlen(n);

	if (l == 0 || l > STORE_NAME_MAX)
		return 0;
	for (i = 0; i < l; i++) {
		char c = n[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		    c == '_' || c == '@'))
			return 0;
	}
	return 1;
}

struct acct_add {
	struct adm_req		*r;
	struct account_rec	 acct;		/* secrets: wiped at the end */
	char			*pw;		/* sodium_malloc */
	size_t			 pw_len;
	uint8_t			 totp[AUTH_TOTP_SECRET_LEN];	/* clear,
						 * shown once; w is sodium_malloc'd */
	int			 ok;
	uint64_t		 removed;	/* the name's account was
						 * removed then: refused */
};

static void
acct_add_free(struct acct_add *w)
{
	if (w->pw != NULL)
		sodium_free(w->pw);	/* wipes */
	account_rec_wipe(&w->acct);
	sodium_free(w);
}

static void
acct_add_work(void *arg)
{
	struct acct_add *w = arg;
	struct micad_settings s;
	char err[CA_ERR_MAX];

	/* the limits as of now (SIGHUP may have changed them) */
	w->ok = micad_settings_copy(w->r->d, &s, err, sizeof(err)) &&
	    auth_pwhash(w->acct.pwhash, w->pw, w->pw_len,
	    s.policy.argon2_opslimit, (size_t)s.policy.argon2_memlimit);
}

static enum store_rc
acct_add_txn(struct store_txn *txn, void *arg)
{
	struct acct_add *w = arg;
	enum store_rc rc;

	/* a removed account's certificates still carry its name */
	rc = store_account_removed_get(txn, w->acct.name, &w->removed);
	if (rc == STORE_OK)
		return STORE_EXISTS;
	if (rc != STORE_NOTFOUND)
		return rc;
	if ((rc = store_account_put(txn, &w->acct, 1)) != STORE_OK)
		return rc;
	return store_audit_append(txn, w->r->actor, "account.add",
	    w->acct.name, w->acct.subject, NULL);
}

/* Loop, after the commit on the writer. */
static void
acct_add_written(void *arg, enum store_rc rc)
{
	struct acct_add *w = arg;
	struct adm_req *r = w->r;
	char b32[64], uri[512];

	if (rc == STORE_EXISTS && w->removed != 0) {
		char t[32];

		adm_fail(r, "account add: the name \"%s\" belonged to an "
		    "account removed on %s; its certificates still carry the "
		    "name, so a new account cannot have it: choose another "
		    "name", w->acct.name, fmt_time(t, (int64_t)w->removed));
		goto out;
	}
	if (rc == STORE_EXISTS) {
		adm_fail(r, "account add: account \"%s\" already exists",
		    w->acct.name);
		goto out;
	}
	if (rc != STORE_OK) {
		fail_store(r, "account add", rc);
		goto out;
	}
	log_info("account=%s added by %s", w->acct.name, r->actor);
	auth_base32_encode(b32, sizeof(b32), w->totp, sizeof(w->totp), 0);
	auth_otpauth_uri(uri, sizeof(uri), w->acct.name, w->totp,
	    sizeof(w->totp));
	adm_out(r, "account: %s\nsubject: %s\n", w->acct.name,
	    w->acct.subject);
	if (w->acct.sans[0] != '\0')
		adm_out(r, "sans: %s\n", w->acct.sans);
	adm_out(r, "totp secret (base32, shown once): %s\n", b32);
	adm_out(r, "totp uri: %s\n", uri);
	sodium_memzero(b32, sizeof(b32));
	sodium_memzero(uri, sizeof(uri));
 out:
	acct_add_free(w);
	adm_done(r);
}

/* Loop, after argon2id on a worker: the commit goes to the writer. */
static void
acct_add_done(void *arg)
{
	struct acct_add *w = arg;
	struct adm_req *r = w->r;

	if (!w->ok) {
		adm_fail(r, "account add: password hashing failed (argon2id "
		    "limits too high for this machine?)");
		goto fail;
	}
	if (micad_write(r->d, acct_add_txn, w, NULL, acct_add_written))
		return;
	adm_fail(r, "account add: micad is stopping");
 fail:
	acct_add_free(w);
	adm_done(r);
}

static void
cmd_account_add(struct adm_req *r)
{
	struct args a;
	const struct adm_attach *pw;
	const char *subj;
	struct acct_add *w;
	X509_NAME *nm;
	char err[CA_ERR_MAX];

	char *sans[CA_SANS_MAX], list[STORE_SANS_MAX + 1] = "";
	size_t num_sans = 0, i, len;

	if (!args_parse(r, 2, " --subject --password-file --san ", NULL, &a))
		return;
	if (a.num_pos != 1 || (subj = arg(&a, "--subject")) == NULL) {
		adm_usage(r, "usage: account add NAME --subject DN "
		    "[--san DNS:NAME|IP:ADDR|email:ADDR]... [--password-file F]");
		return;
	}
	if (!collect_sans(r, "account add", &a, sans, &num_sans))
		return;
	for (i = 0; i < num_sans; i++) {
		len = strlen(list);
		if ((size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
		    i ? "," : "", sans[i]) >= sizeof(list) - len) {
			adm_fail(r, "account add: the --san list is longer "
			    "than %d characters", STORE_SANS_MAX);
			free_texts(sans, num_sans);
			return;
		}
	}
	free_texts(sans, num_sans);
	if (!valid_name(a.pos[0])) {
		adm_fail(r, "account add: bad name \"%s\" (1-64 of "
		    "A-Z a-z 0-9 . - _ @)", a.pos[0]);
		return;
	}
	if ((nm = ca_subject_parse(subj, err, sizeof(err))) == NULL) {
		adm_fail(r, "account add: --subject: %s", err);
		return;
	}
	X509_NAME_free(nm);
	if (strlen(subj) > STORE_SUBJECT_MAX) {
		adm_fail(r, "account add: --subject too long");
		return;
	}
	if ((pw = adm_msg_get(&r->in, "password")) == NULL || pw->len == 0) {
		adm_fail(r, "account add: no password given");
		return;
	}
	if (pw->len < 8 || pw->len > 1024) {
		adm_fail(r, "account add: the password must have 8 to 1024 "
		    "characters");
		return;
	}
	if ((w = sodium_malloc(sizeof(*w))) == NULL)
		fatalx("out of memory");
	memset(w, 0, sizeof(*w));
	w->r = r;
	if ((w->pw = sodium_malloc(pw->len + 1)) == NULL)
		fatalx("out of memory");
	memcpy(w->pw, pw->data, pw->len);
	w->pw[pw->len] = '\0';
	w->pw_len = pw->len;
	snprintf(w->acct.name, sizeof(w->acct.name), "%s", a.pos[0]);
	snprintf(w->acct.subject, sizeof(w->acct.subject), "%s", subj);
	snprintf(w->acct.sans, sizeof(w->acct.sans), "%s", list);
	w->acct.created = w->acct.pw_changed = time(NULL);
	if (!auth_totp_new_sealed(w->totp, r->d->totp_key, &w->acct)) {
		adm_fail(r, "account add: cannot seal the TOTP secret (no "
		    "TOTP key?)");
		acct_add_free(w);
		return;
	}
	if (!workq_submit(r->d->workers, acct_add_work, acct_add_done, w)) {
		adm_fail(r, "account add: micad is stopping");
		acct_add_free(w);
		return;
	}
	r->async = 1;	/* acct_add_done replies */
}

struct acct_list {
	struct adm_req	*r;
	int		 json;
	int		 n;
	int64_t		 now;
};

static int
acct_list_cb(const struct account_rec *ac, void *arg)
{
	struct acct_list *l = arg;
	struct wb *o = &l->r->rep.out;
	char t[32];
	int locked = ac->locked_until > l->now;
	int disabled = (ac->flags & STORE_ACCT_DISABLED) != 0;
	int enrol = ac->enrol_expires > l->now;

	if (l->json) {
		wb_str(o, l->n ? "," : "");
		wb_u8(o, '{');
		json_kv_str(o, 1, "name", ac->name);
		json_kv_str(o, 0, "subject", ac->subject);
		json_kv_u64(o, 0, "failed_logins", ac->failed);
		json_kv_bool(o, 0, "locked", locked);
		json_kv_str(o, 0, "locked_until",
		    fmt_time(t, locked ? ac->locked_until : 0));
		json_kv_str(o, 0, "created", fmt_time(t, ac->created));
		json_kv_str(o, 0, "sans", ac->sans);
		json_kv_bool(o, 0, "disabled", disabled);
		json_kv_str(o, 0, "credentials_changed",
		    fmt_time(t, ac->pw_changed));
		json_kv_str(o, 0, "enrolment_code_until",
		    fmt_time(t, enrol ? ac->enrol_expires : 0));
		wb_u8(o, '}');
	} else
		adm_out(l->r, "%-20s %-8s failed=%u  %s%s%s%s\n", ac->name,
		    disabled ? "disabled" : locked ? "locked" : "active",
		    ac->failed, ac->subject, ac->sans[0] != '\0' ? "  sans=" :
		    "", ac->sans, enrol ? "  (enrolment code pending)" : "");
	l->n++;
	return 1;
}

static enum store_rc
acct_list_txn(struct store_txn *txn, void *arg)
{
	return store_account_iter(txn, acct_list_cb, arg);
}

static void
cmd_account_list(struct adm_req *r)
{
	struct args a;
	struct acct_list l;
	enum store_rc rc;

	if (!args_parse(r, 2, NULL, " --json ", &a))
		return;
	memset(&l, 0, sizeof(l));
	l.r = r;
	l.json = arg(&a, "--json") != NULL;
	l.now = time(NULL);
	if (l.json)
		wb_u8(&r->rep.out, '[');
	if ((rc = store_read(r->d->store, acct_list_txn, &l)) != STORE_OK) {
		fail_store(r, "account list", rc);
		return;
	}
	if (l.json)
		wb_str(&r->rep.out, "]\n");
}

struct unlock_ctx {
	struct adm_req	*r;
	char		 name[STORE_NAME_MAX + 1];
};

static enum store_rc
unlock_txn(struct store_txn *txn, void *arg)
{
	struct unlock_ctx *u = arg;
	struct account_rec ac;
	enum store_rc rc;

	if ((rc = store_account_get(txn, u->name, &ac)) != STORE_OK)
		return rc;
	ac.failed = 0;
	ac.locked_until = 0;
	rc = store_account_put(txn, &ac, 0);
	account_rec_wipe(&ac);
	if (rc != STORE_OK)
		return rc;
	return store_audit_append(txn, u->r->actor, "account.unlock", u->name,
	    NULL, NULL);
}

static void
unlock_written(void *arg, enum store_rc rc)
{
	struct unlock_ctx *u = arg;
	struct adm_req *r = u->r;

	if (rc == STORE_NOTFOUND)
		adm_fail(r, "account unlock: no account \"%s\"", u->name);
	else if (rc != STORE_OK)
		fail_store(r, "account unlock", rc);
	else
		adm_out(r, "account %s unlocked\n", u->name);
	free(u);
	adm_done(r);
}

static void
cmd_account_unlock(struct adm_req *r)
{
	struct args a;
	struct unlock_ctx *u;

	if (!args_parse(r, 2, NULL, NULL, &a))
		return;
	if (a.num_pos != 1) {
		adm_usage(r, "usage: account unlock NAME");
		return;
	}
	if (strlen(a.pos[0]) > STORE_NAME_MAX) {
		adm_fail(r, "account unlock: no account \"%s\"", a.pos[0]);
		return;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL)
		fatalx("out of memory");
	u->r = r;
	snprintf(u->name, sizeof(u->name), "%s", a.pos[0]);
	if (!micad_write(r->d, unlock_txn, u, NULL, unlock_written)) {
		free(u);
		adm_fail(r, "account unlock: micad is stopping");
		return;
	}
	r->async = 1;	/* unlock_written replies */
}

/* ---- account reset, disable, enable, remove ---- */

enum acct_op { ACCT_RESET, ACCT_DISABLE, ACCT_ENABLE, ACCT_REMOVE };

static const struct {
	const char	*sub;		/* "account SUB NAME" */
	const char	*audit;		/* audit action and notify event */
} acct_ops[] = {
	[ACCT_RESET] = { "reset", "account.reset" },
	[ACCT_DISABLE] = { "disable", "account.disabled" },
	[ACCT_ENABLE] = { "enable", "account.enabled" },
	[ACCT_REMOVE] = { "remove", "account.removed" },
};

struct acct_chg {
	struct adm_req	*r;
	enum acct_op	 op;
	char		 name[STORE_NAME_MAX + 1];
	char		 code[AUTH_ENROL_CODE_TEXT];	/* RESET: shown once */
	uint8_t		 hash[32];
	int64_t		 expires;
	int		 noop;		/* already in the asked state */
};

static enum store_rc
acct_chg_txn(struct store_txn *txn, void *arg)
{
	struct acct_chg *w = arg;
	struct account_rec a;
	enum store_rc rc;
	char details[256], t[32];

	w->noop = 0;
	details[0] = '\0';
	if ((rc = store_account_get(txn, w->name, &a)) != STORE_OK)
		goto out;
	switch (w->op) {
	case ACCT_RESET:
		memcpy(a.enrol_hash, w->hash, sizeof(a.enrol_hash));
		a.enrol_expires = w->expires;
		snprintf(details, sizeof(details), "enrolment code until %s",
		    fmt_time(t, w->expires));
		break;
	case ACCT_DISABLE:
	case ACCT_ENABLE:
		w->noop = (w->op == ACCT_DISABLE) ==
		    ((a.flags & STORE_ACCT_DISABLED) != 0);
		if (w->op == ACCT_DISABLE)
			a.flags |= STORE_ACCT_DISABLED;
		else
			a.flags &= (uint8_t)~STORE_ACCT_DISABLED;
		break;
	case ACCT_REMOVE:
		snprintf(details, sizeof(details), "subject %.100s; "
		    "certificates and audit trail kept", a.subject);
		break;
	}
	if (w->noop) {
		rc = STORE_OK;
		goto out;
	}
	if (w->op == ACCT_REMOVE) {
		rc = store_account_del(txn, w->name);
		if (rc == STORE_OK)
			rc = store_account_removed_set(txn, w->name,
			    (uint64_t)time(NULL));
	} else
		rc = store_account_put(txn, &a, 0);
	if (rc != STORE_OK)
		goto out;
	rc = store_audit_append(txn, w->r->actor, acct_ops[w->op].audit,
	    w->name, details, NULL);
out:
	account_rec_wipe(&a);
	return rc;
}

static void
acct_chg_written(void *arg, enum store_rc rc)
{
	struct acct_chg *w = arg;
	struct adm_req *r = w->r;
	struct notify_info ni;
	char t[32];

	if (rc == STORE_NOTFOUND) {
		adm_fail(r, "account %s: no account \"%s\"",
		    acct_ops[w->op].sub, w->name);
		goto out;
	}
	if (rc != STORE_OK) {
		fail_store(r, w->op == ACCT_RESET ? "account reset" :
		    "account change", rc);
		goto out;
	}
	if (w->noop) {
		adm_out(r, "account %s was %s already\n", w->name,
		    w->op == ACCT_DISABLE ? "disabled" : "enabled");
		goto out;
	}
	log_info("account=%s %s by %s", w->name, acct_ops[w->op].audit,
	    r->actor);
	memset(&ni, 0, sizeof(ni));
	ni.event = acct_ops[w->op].audit;
	ni.account = w->name;
	ni.actor = r->actor;
	notify_event(r->d->notify, &ni);
	switch (w->op) {
	case ACCT_RESET:
		adm_out(r, "enrolment code: %s\n", w->code);
		adm_out(r, "expires: %s (single use)\n",
		    fmt_time(t, w->expires));
		adm_out(r, "the subscriber runs: mica enroll --account %s "
		    "--code %s\n", w->name, w->code);
		adm_out(r, "(a new password and a new TOTP secret; the old "
		    "ones work until then)\n");
		break;
	case ACCT_DISABLE:
		adm_out(r, "account %s disabled (logins refused until "
		    "`account enable`)\n", w->name);
		break;
	case ACCT_ENABLE:
		adm_out(r, "account %s enabled\n", w->name);
		break;
	case ACCT_REMOVE:
		adm_out(r, "account %s removed (its certificates and the "
		    "audit trail are kept)\n", w->name);
		break;
	}
out:
	sodium_free(w);		/* wipes the code */
	adm_done(r);
}

static void
acct_chg_start(struct adm_req *r, enum acct_op op)
{
	struct args a;
	struct acct_chg *w;
	struct micad_settings s;
	char err[CA_ERR_MAX];

	if (!args_parse(r, 2, NULL, NULL, &a))
		return;
	if (a.num_pos != 1) {
		adm_usage(r, "usage: account %s NAME", acct_ops[op].sub);
		return;
	}
	if (!valid_name(a.pos[0])) {
		adm_fail(r, "account %s: no account \"%s\"", acct_ops[op].sub,
		    a.pos[0]);
		return;
	}
	if ((w = sodium_malloc(sizeof(*w))) == NULL)
		fatalx("out of memory");
	memset(w, 0, sizeof(*w));
	w->r = r;
	w->op = op;
	snprintf(w->name, sizeof(w->name), "%s", a.pos[0]);
	if (op == ACCT_RESET) {
		if (!micad_settings_copy(r->d, &s, err, sizeof(err)) ||
		    !auth_enrol_code_new(w->code, w->hash)) {
			adm_fail(r, "account reset: %s", "internal error");
			sodium_free(w);
			return;
		}
		w->expires = time(NULL) + s.policy.enrol_code_lifetime;
	}
	if (!micad_write(r->d, acct_chg_txn, w, NULL, acct_chg_written)) {
		sodium_free(w);
		adm_fail(r, "account %s: micad is stopping", acct_ops[op].sub);
		return;
	}
	r->async = 1;	/* acct_chg_written replies */
}

static void
cmd_account_reset(struct adm_req *r)
{
	acct_chg_start(r, ACCT_RESET);
}

static void
cmd_account_disable(struct adm_req *r)
{
	acct_chg_start(r, ACCT_DISABLE);
}

static void
cmd_account_enable(struct adm_req *r)
{
	acct_chg_start(r, ACCT_ENABLE);
}

static void
cmd_account_remove(struct adm_req *r)
{
	acct_chg_start(r, ACCT_REMOVE);
}

/* ---- issue, revoke, hold, unhold ---- */

/* CSR attachment in PEM or DER -> malloc'd DER. */
static int
csr_to_der(const struct adm_attach *at, uint8_t **out, size_t *out_len)
{
	BIO *bio = NULL;
	unsigned char *der = NULL;
	char *name = NULL;
	long n;
	int rc = 0;

	/* Only the PEM armour is taken off here: the DER inside is decoded
	 * and checked once, by ca_csr_check (decoding a public key is what
	 * costs most in an issuance). */
	if (at->len >= 10 && memcmp(at->data, "-----BEGIN", 10) == 0) {
		if (at->len > INT_MAX ||
		    (bio = BIO_new_mem_buf(at->data, (int)at->len)) == NULL ||
		    !PEM_bytes_read_bio(&der, &n, &name, PEM_STRING_X509_REQ,
		    bio, NULL, NULL) || n <= 0)
			goto out;
		*out = malloc((size_t)n);
		if (*out == NULL)
			goto out;
		memcpy(*out, der, (size_t)n);
		*out_len = (size_t)n;
	} else {
		if ((*out = malloc(at->len ? at->len : 1)) == NULL)
			goto out;
		memcpy(*out, at->data, at->len);
		*out_len = at->len;
	}
	rc = 1;
 out:
	ERR_clear_error();
	OPENSSL_free(der);
	OPENSSL_free(name);
	BIO_free(bio);
	return rc;
}

struct issue_ctx {
	struct adm_req	*r;
	uint8_t		*csr;		/* malloc'd */
	size_t		 csr_len;
	char		 account[STORE_NAME_MAX + 1];
	int		 days;
	char		*sans[CA_SANS_MAX];	/* --san, checked */
	size_t		 num_sans;
	char		 profile[CONF_PROFILE_NAME_MAX + 1];	/* "" = [ca] */
	uint8_t		 serial[STORE_SERIAL_LEN];
	uint8_t		*der;
	size_t		 der_len;
	char		 err[CA_ERR_MAX];
	/* signed on d->presign before the write (ca/micad.h) */
	struct micad_presigned ps;
	enum store_rc	 ps_rc;
	int		 write_refused;	/* micad_write said no: stopping */
};

static enum store_rc
issue_txn(struct store_txn *txn, void *arg)
{
	struct issue_ctx *ic = arg;
	struct micad_issue_opts o;

	free(ic->der);
	ic->der = NULL;
	memset(&o, 0, sizeof(o));	/* no enrolment: the subject is checked */
	o.profile = ic->profile[0] != '\0' ? ic->profile : NULL;
	o.sans = (const char *const *)ic->sans;
	o.num_sans = ic->num_sans;
	return micad_issue_txn_opts(ic->r->d, txn, ic->csr, ic->csr_len,
	    ic->account, ic->days, ic->r->actor, &o, ic->serial, &ic->der,
	    &ic->der_len, ic->err, sizeof(ic->err));
}

/* Presign thread: the checks and the signature, in a read transaction. */
static enum store_rc
issue_presign_txn(struct store_txn *txn, void *arg)
{
	struct issue_ctx *ic = arg;
	struct micad_issue_opts o;

	memset(&o, 0, sizeof(o));	/* no enrolment: the subject is checked */
	o.profile = ic->profile[0] != '\0' ? ic->profile : NULL;
	o.sans = (const char *const *)ic->sans;
	o.num_sans = ic->num_sans;
	return micad_issue_presign(ic->r->d, txn, ic->csr, ic->csr_len,
	    ic->account, ic->days, &o, &ic->ps, ic->err, sizeof(ic->err));
}

/* Writer: store what was signed (re-checked there). */
static enum store_rc
issue_store_txn(struct store_txn *txn, void *arg)
{
	struct issue_ctx *ic = arg;

	return micad_issue_presigned_txn(ic->r->d, txn, &ic->ps,
	    ic->r->actor, ic->err, sizeof(ic->err));
}

static void	issue_written(void *, enum store_rc);

/* Presign thread: signed, then straight to the writer, whose callback
 * replies on the loop (one wake-up of the loop per issuance, not two);
 * 1 (issue_presigned on the loop) when it failed or the writer is gone. */
static int
issue_presign_work(void *arg)
{
	struct issue_ctx *ic = arg;

	ic->ps_rc = store_read(ic->r->d->store, issue_presign_txn, ic);
	if (ic->ps_rc != STORE_OK)
		return 1;
	if (micad_write(ic->r->d, issue_store_txn, ic, NULL, issue_written))
		return 0;
	ic->write_refused = 1;
	return 1;
}

/* Loop: the signing failed, or the writer refused the write. */
static void
issue_presigned(void *arg)
{
	struct issue_ctx *ic = arg;

	if (ic->ps_rc != STORE_OK) {
		issue_written(ic, ic->ps_rc);
		return;
	}
	if (ic->write_refused) {
		snprintf(ic->err, sizeof(ic->err), "micad is stopping");
		issue_written(ic, STORE_INVALID);
	}
}

/* Loop, after the commit: the certificate goes back as PEM. */
static void
issue_written(void *arg, enum store_rc rc)
{
	struct issue_ctx *ic = arg;
	struct adm_req *r = ic->r;
	BIO *mem = NULL;
	char *pem;
	long pem_len;
	char hex[SERIAL_HEX_LEN];

	if (rc != STORE_OK) {
		if (rc == STORE_NOTFOUND)
			adm_fail(r, "issue: no account \"%s\"", ic->account);
		else if (ic->err[0] != '\0')
			adm_fail(r, "issue: %s", ic->err);
		else
			fail_store(r, "issue", rc);
		goto out;
	}
	if (ic->ps.der != NULL) {	/* signed before the write */
		memcpy(ic->serial, ic->ps.serial, sizeof(ic->serial));
		free(ic->der);
		ic->der = ic->ps.der;
		ic->der_len = ic->ps.der_len;
		ic->ps.der = NULL;
	}
	serial_hex(hex, ic->serial);
	log_info("serial=%s issued account=%s by %s", hex, ic->account,
	    r->actor);
	/* the DER the signer made and the store holds, armoured: no need
	 * to decode it */
	if (ic->der_len > LONG_MAX || (mem = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio(mem, PEM_STRING_X509, "", ic->der,
	    (long)ic->der_len) <= 0) {
		adm_fail(r, "issue: certificate %s stored but not encodable",
		    hex);
		goto out;
	}
	pem_len = BIO_get_mem_data(mem, &pem);
	adm_msg_attach(&r->rep, "cert", pem, (size_t)pem_len);
	adm_out(r, "serial: %s\n", hex);
 out:
	BIO_free(mem);
	free(ic->der);
	free(ic->csr);
	micad_presigned_cleanup(&ic->ps);
	free_texts(ic->sans, ic->num_sans);
	free(ic);
	adm_done(r);
}

static void
cmd_issue(struct adm_req *r)
{
	struct args a;
	struct issue_ctx *ic;
	const struct adm_attach *at;
	const char *days, *account;
	uint64_t d = 0;

	const char *profile;

	if (!args_parse(r, 1, " --account --csr --days --out --san --profile ",
	    NULL, &a))
		return;
	if (a.num_pos != 0 || (account = arg(&a, "--account")) == NULL ||
	    (at = adm_msg_get(&r->in, "csr")) == NULL) {
		adm_usage(r, "usage: issue --account NAME --csr FILE "
		    "[--days N] [--profile NAME] [--san TYPE:VALUE]... "
		    "--out FILE");
		return;
	}
	if ((profile = arg(&a, "--profile")) != NULL &&
	    strlen(profile) > CONF_PROFILE_NAME_MAX) {
		adm_fail(r, "issue: --profile %s: no such profile", profile);
		return;
	}
	if ((days = arg(&a, "--days")) != NULL &&
	    (!parse_u64_arg(days, &d) || d < 1 || d > 36500)) {
		adm_fail(r, "issue: --days must be 1 to 36500");
		return;
	}
	if (strlen(account) > STORE_NAME_MAX) {
		adm_fail(r, "issue: no account \"%s\"", account);
		return;
	}
	if ((ic = calloc(1, sizeof(*ic))) == NULL)
		fatalx("out of memory");
	snprintf(ic->account, sizeof(ic->account), "%s", account);
	ic->days = (int)d;
	ic->r = r;
	if (profile != NULL)
		snprintf(ic->profile, sizeof(ic->profile), "%s", profile);
	if (!collect_sans(r, "issue", &a, ic->sans, &ic->num_sans)) {
		free(ic);
		return;
	}
	if (!csr_to_der(at, &ic->csr, &ic->csr_len)) {
		adm_fail(r, "issue: CSR: RFC 2986: not a PEM certificate "
		    "request");
		free_texts(ic->sans, ic->num_sans);
		free(ic);
		return;
	}
	/* signed in parallel with others first, when there is the pool
	 * for it; else signed inside the write */
	if (r->d->presign != NULL) {
		if (workq_submit_then(r->d->presign, issue_presign_work,
		    issue_presigned, ic)) {
			r->async = 1;	/* issue_written replies */
			return;
		}
	} else if (micad_write(r->d, issue_txn, ic, NULL, issue_written)) {
		r->async = 1;
		return;
	}
	adm_fail(r, "issue: micad is stopping");
	free(ic->csr);
	free_texts(ic->sans, ic->num_sans);
	free(ic);
}

struct status_change {
	struct adm_req	*r;
	uint8_t		 serial[STORE_SERIAL_LEN];
	uint8_t		 status;
	uint8_t		 reason;
	const char	*action;
	const char	*verb;		/* for messages: "revoke", ... */
	int		 rr;		/* the reason as given */
	int64_t		 invalidity;	/* --invalidity-date, 0 = none */
	int		 own;		/* mica's own certificate: refused */
	struct cert_state before;
	struct micad_changed changed;
};

static enum store_rc
status_txn(struct store_txn *txn, void *arg)
{
	struct status_change *sc = arg;
	struct cert_rec rec;
	char hex[SERIAL_HEX_LEN], det[128];
	const char *action = sc->action;
	enum store_rc rc;

	sc->own = 0;
	if ((rc = store_cert_get(txn, sc->serial, &rec)) != STORE_OK)
		return rc;
	sc->before = rec.st;
	/* The CA, OCSP and TLS certificates have their own renewal. */
	sc->own = strcmp(rec.account, CA_OWN_ACCOUNT) == 0;
	cert_rec_cleanup(&rec);
	if (sc->own && sc->status != CERT_GOOD)
		return STORE_ABORT;
	if ((rc = store_cert_set_status(txn, sc->serial, sc->status,
	    sc->reason, time(NULL), sc->invalidity, NULL)) != STORE_OK)
		return rc;
	if (!micad_changed_add(&sc->changed, sc->serial))
		return STORE_INVALID;
	serial_hex(hex, sc->serial);
	snprintf(det, sizeof(det), "reason=%s",
	    adm_reason_name(sc->status == CERT_HOLD ?
	    REASON_CERTIFICATE_HOLD : sc->reason));
	if (sc->before.status == CERT_REVOKED) {
		/* a reason raised to keyCompromise (the store allows no
		 * other change of a revocation) */
		action = "cert.reason_raised";
		snprintf(det, sizeof(det), "reason=%s was=%s "
		    "invalidity=%" PRId64, adm_reason_name(sc->reason),
		    adm_reason_name(sc->before.reason), sc->invalidity);
	} else if (sc->invalidity != 0)
		snprintf(det, sizeof(det), "reason=%s invalidity=%" PRId64,
		    adm_reason_name(sc->reason), sc->invalidity);
	return store_audit_append(txn, sc->r->actor, action, hex,
	    sc->status == CERT_GOOD ? NULL : det, NULL);
}

/* The refusal of a status change the store does not allow. */
static void
status_refused(struct adm_req *r, const struct status_change *sc,
    const char *hex)
{
	if (sc->status == CERT_REVOKED && sc->before.status == CERT_REVOKED &&
	    sc->before.reason == REASON_KEY_COMPROMISE)
		adm_fail(r, "%s: certificate %s is already revoked for "
		    "keyCompromise", sc->verb, hex);
	else if (sc->status == CERT_REVOKED &&
	    sc->before.status == CERT_REVOKED)
		adm_fail(r, "%s: certificate %s is already revoked (reason "
		    "%s); a revocation reason can only be raised to "
		    "keyCompromise", sc->verb, hex,
		    adm_reason_name(sc->before.reason));
	else
		adm_fail(r, "%s: certificate %s is %s", sc->verb, hex,
		    sc->status == CERT_GOOD && sc->before.status == CERT_GOOD ?
		    "not on hold" : status_name(sc->before.status));
}

/*
 * Loop, after the commit; OCSP and the CRLs were brought up to date on
 * the writer before this runs.
 */
static void
status_written(void *arg, enum store_rc rc)
{
	struct status_change *sc = arg;
	struct adm_req *r = sc->r;
	char hex[SERIAL_HEX_LEN];

	serial_hex(hex, sc->serial);
	if (rc == STORE_NOTFOUND)
		adm_fail(r, "%s: no certificate with serial %s", sc->verb, hex);
	else if (rc == STORE_ABORT && sc->own)
		adm_fail(r, "%s: certificate %s is one of mica's own "
		    "certificates (CA, OCSP signer or TLS server): they are "
		    "not revoked or held with the subscriber commands, they "
		    "have their own renewal", sc->verb, hex);
	else if (rc == STORE_INVALID)
		status_refused(r, sc, hex);
	else if (rc != STORE_OK)
		fail_store(r, sc->verb, rc);
	else {
		log_info("serial=%s %s by %s", hex, sc->action, r->actor);
		if (sc->status == CERT_REVOKED &&
		    sc->before.status == CERT_REVOKED)
			adm_out(r, "%s revoked (%s): reason raised from %s, "
			    "revocation time kept\n", hex,
			    adm_reason_name(sc->rr),
			    adm_reason_name(sc->before.reason));
		else if (sc->status == CERT_REVOKED)
			adm_out(r, "%s revoked (%s)\n", hex,
			    adm_reason_name(sc->rr));
		else if (sc->status == CERT_HOLD)
			adm_out(r, "%s on hold\n", hex);
		else
			adm_out(r, "%s released from hold\n", hex);
	}
	free(sc);
	adm_done(r);
}

/* --invalidity-date: YYYYMMDDHHMMSSZ, not after now.  1 or 0. */
static int
parse_invalidity(const char *text, int64_t *out)
{
	ASN1_GENERALIZEDTIME *t;
	struct tm tm;
	int ok = 0;

	if ((t = ASN1_GENERALIZEDTIME_new()) == NULL)
		fatalx("ASN1_GENERALIZEDTIME_new");
	memset(&tm, 0, sizeof(tm));
	if (strlen(text) == 15 && text[14] == 'Z' &&
	    ASN1_GENERALIZEDTIME_set_string(t, text) == 1 &&
	    ASN1_TIME_to_tm(t, &tm) == 1) {
		*out = (int64_t)timegm(&tm);
		ok = *out > 0 && *out <= (int64_t)time(NULL);
	}
	ERR_clear_error();
	ASN1_GENERALIZEDTIME_free(t);
	return ok;
}

static void
change_status(struct adm_req *r, const char *usage, uint8_t status,
    const char *action)
{
	struct args a;
	struct status_change *sc;
	uint8_t serial[STORE_SERIAL_LEN];
	const char *reason, *inv;
	int64_t invalidity = 0;
	int rr = REASON_UNSPECIFIED;

	if (!args_parse(r, 1, status == CERT_REVOKED ?
	    " --reason --invalidity-date " : NULL, NULL, &a))
		return;
	if (a.num_pos != 1) {
		adm_usage(r, "usage: %s", usage);
		return;
	}
	if (!serial_parse(serial, a.pos[0])) {
		adm_fail(r, "%s: \"%s\" is not a serial number in hex",
		    action, a.pos[0]);
		return;
	}
	if ((reason = arg(&a, "--reason")) != NULL &&
	    (rr = adm_reason_parse(reason)) < 0) {
		adm_fail(r, "revoke: unknown reason \"%s\" (use unspecified, "
		    "keyCompromise, affiliationChanged, superseded, "
		    "cessationOfOperation or privilegeWithdrawn)", reason);
		return;
	}
	if ((inv = arg(&a, "--invalidity-date")) != NULL &&
	    !parse_invalidity(inv, &invalidity)) {
		adm_fail(r, "revoke: --invalidity-date \"%s\": RFC 5280 "
		    "5.3.2: a GeneralizedTime like 20260101120000Z, not in "
		    "the future", inv);
		return;
	}
	if ((sc = calloc(1, sizeof(*sc))) == NULL)
		fatalx("out of memory");
	memcpy(sc->serial, serial, sizeof(sc->serial));
	sc->r = r;
	sc->status = status;
	sc->reason = (uint8_t)rr;
	sc->rr = rr;
	sc->invalidity = invalidity;
	sc->verb = action;
	sc->action = status == CERT_REVOKED ? "cert.revoke" :
	    status == CERT_HOLD ? "cert.hold" : "cert.unhold";
	if (!micad_write(r->d, status_txn, sc, &sc->changed,
	    status_written)) {
		free(sc);
		adm_fail(r, "%s: micad is stopping", action);
		return;
	}
	r->async = 1;	/* status_written replies */
}

static void
cmd_revoke(struct adm_req *r)
{
	change_status(r, "revoke SERIAL [--reason R] [--invalidity-date "
	    "YYYYMMDDHHMMSSZ]", CERT_REVOKED, "revoke");
}

static void
cmd_hold(struct adm_req *r)
{
	change_status(r, "hold SERIAL", CERT_HOLD, "hold");
}

static void
cmd_unhold(struct adm_req *r)
{
	change_status(r, "unhold SERIAL", CERT_GOOD, "unhold");
}

/* ---- allow-renew ---- */

#define ALLOW_RENEW_DAYS	30	/* default of --days */

struct allow_ctx {
	struct adm_req	*r;
	uint8_t		 serial[STORE_SERIAL_LEN];
	int64_t		 until;
	char		 err[160];
};

static enum store_rc
allow_txn(struct store_txn *txn, void *arg)
{
	struct allow_ctx *ac = arg;
	struct cert_rec c;
	char hex[SERIAL_HEX_LEN], details[64];
	enum store_rc rc;

	memset(&c, 0, sizeof(c));
	ac->err[0] = '\0';
	serial_hex(hex, ac->serial);
	if ((rc = store_cert_get(txn, ac->serial, &c)) != STORE_OK) {
		if (rc == STORE_NOTFOUND)
			snprintf(ac->err, sizeof(ac->err), "no certificate %s",
			    hex);
		goto out;
	}
	if (strcmp(c.account, "(ca)") == 0)
		snprintf(ac->err, sizeof(ac->err), "certificate %s is one of "
		    "micad's own; micad renews it", hex);
	else if (c.st.status != CERT_GOOD)
		snprintf(ac->err, sizeof(ac->err), "certificate %s is %s: only "
		    "a good certificate can renew", hex,
		    c.st.status == CERT_HOLD ? "on hold" : "revoked");
	else if (!serial_is_zero(c.replaced_by))
		snprintf(ac->err, sizeof(ac->err), "certificate %s was "
		    "already replaced", hex);
	if (ac->err[0] != '\0') {
		rc = STORE_ABORT;
		goto out;
	}
	if ((rc = subrenew_allow_txn(txn, ac->serial, ac->until)) != STORE_OK)
		goto out;
	snprintf(details, sizeof(details), "until=%" PRId64, ac->until);
	rc = store_audit_append(txn, ac->r->actor, "cert.renew_allowed", hex,
	    details, NULL);
out:
	cert_rec_cleanup(&c);
	return rc;
}

static void
allow_written(void *arg, enum store_rc rc)
{
	struct allow_ctx *ac = arg;
	struct adm_req *r = ac->r;
	char hex[SERIAL_HEX_LEN], t[32];
	struct tm tm;
	time_t tt = (time_t)ac->until;

	serial_hex(hex, ac->serial);
	if (ac->err[0] != '\0')
		adm_fail(r, "allow-renew: %s", ac->err);
	else if (rc != STORE_OK)
		fail_store(r, "allow-renew", rc);
	else {
		if (gmtime_r(&tt, &tm) == NULL ||
		    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			snprintf(t, sizeof(t), "%" PRId64, ac->until);
		adm_out(r, "certificate %s may renew (mica renew) until %s, "
		    "once\n", hex, t);
	}
	free(ac);
	adm_done(r);
}

/* allow-renew SERIAL [--days N]: renewal outside the window, or at all
 * with [policy] renew = manual. */
static void
cmd_allow_renew(struct adm_req *r)
{
	struct args a;
	struct allow_ctx *ac;
	const char *ds;
	char *end;
	long days = ALLOW_RENEW_DAYS;

	if (!args_parse(r, 1, " --days ", NULL, &a))
		return;
	if (a.num_pos != 1) {
		adm_usage(r, "usage: allow-renew SERIAL [--days N]");
		return;
	}
	if ((ds = arg(&a, "--days")) != NULL) {
		days = strtol(ds, &end, 10);
		if (*ds == '\0' || *end != '\0' || days < 1 || days > 3650) {
			adm_fail(r, "allow-renew: --days must be 1..3650");
			return;
		}
	}
	if ((ac = calloc(1, sizeof(*ac))) == NULL)
		fatalx("out of memory");
	ac->r = r;
	if (!serial_parse(ac->serial, a.pos[0])) {
		adm_fail(r, "allow-renew: \"%s\" is not a serial number in "
		    "hex", a.pos[0]);
		free(ac);
		return;
	}
	ac->until = (int64_t)time(NULL) + (int64_t)days * 86400;
	if (!micad_write(r->d, allow_txn, ac, NULL, allow_written)) {
		free(ac);
		adm_fail(r, "allow-renew: micad is stopping");
		return;
	}
	r->async = 1;	/* allow_written replies */
}

/* ---- show, list ---- */

static void
cert_json(struct wb *o, const struct cert_rec *c)
{
	char hex[SERIAL_HEX_LEN], t[32];

	serial_hex(hex, c->serial);
	wb_u8(o, '{');
	json_kv_str(o, 1, "serial", hex);
	json_kv_str(o, 0, "status", status_name(c->st.status));
	if (c->st.status != CERT_GOOD) {
		json_kv_str(o, 0, "reason", adm_reason_name(c->st.reason));
		json_kv_str(o, 0, "revoked_at", fmt_time(t, c->st.revoked_at));
		if (c->st.invalidity)
			json_kv_str(o, 0, "invalidity_date",
			    fmt_time(t, c->st.invalidity));
	}
	json_kv_str(o, 0, "account", c->account);
	json_kv_str(o, 0, "not_before", fmt_time(t, c->st.not_before));
	json_kv_str(o, 0, "not_after", fmt_time(t, c->st.not_after));
	json_kv_str(o, 0, "issued_at", fmt_time(t, c->issued_at));
	if (!serial_is_zero(c->replaces)) {
		serial_hex(hex, c->replaces);
		json_kv_str(o, 0, "replaces", hex);
	}
	if (!serial_is_zero(c->replaced_by)) {
		serial_hex(hex, c->replaced_by);
		json_kv_str(o, 0, "replaced_by", hex);
	}
	wb_u8(o, '}');
}

static int
cert_subject(const struct cert_rec *c, char *out, size_t len)
{
	const unsigned char *p = c->der;
	X509 *x;
	int ok;

	out[0] = '\0';
	if ((x = d2i_X509(NULL, &p, (long)c->der_len)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	ok = ca_name_print(out, len, X509_get_subject_name(x));
	X509_free(x);
	return ok;
}

struct show_ctx {
	uint8_t		serial[STORE_SERIAL_LEN];
	struct cert_rec	c;
};

static enum store_rc
show_txn(struct store_txn *txn, void *arg)
{
	struct show_ctx *s = arg;

	return store_cert_get(txn, s->serial, &s->c);
}

static void
cmd_show(struct adm_req *r)
{
	struct args a;
	struct show_ctx s;
	enum store_rc rc;
	char hex[SERIAL_HEX_LEN], t[32], subj[1024];

	memset(&s, 0, sizeof(s));
	if (!args_parse(r, 1, NULL, " --json ", &a))
		return;
	if (a.num_pos != 1) {
		adm_usage(r, "usage: show SERIAL [--json]");
		return;
	}
	if (!serial_parse(s.serial, a.pos[0])) {
		adm_fail(r, "show: \"%s\" is not a serial number in hex",
		    a.pos[0]);
		return;
	}
	serial_hex(hex, s.serial);
	rc = store_read(r->d->store, show_txn, &s);
	if (rc == STORE_NOTFOUND) {
		adm_fail(r, "show: no certificate with serial %s", hex);
		return;
	}
	if (rc != STORE_OK) {
		fail_store(r, "show", rc);
		return;
	}
	cert_subject(&s.c, subj, sizeof(subj));
	if (arg(&a, "--json") != NULL) {
		cert_json(&r->rep.out, &s.c);
		wb_u8(&r->rep.out, '\n');
		goto out;
	}
	adm_out(r, "serial: %s\n", hex);
	adm_out(r, "status: %s\n", status_name(s.c.st.status));
	if (s.c.st.status != CERT_GOOD) {
		adm_out(r, "reason: %s\n", adm_reason_name(s.c.st.reason));
		adm_out(r, "revoked: %s\n", fmt_time(t, s.c.st.revoked_at));
		if (s.c.st.invalidity)
			adm_out(r, "invalidity date: %s\n",
			    fmt_time(t, s.c.st.invalidity));
	}
	adm_out(r, "subject: %s\n", subj);
	adm_out(r, "account: %s\n", s.c.account);
	adm_out(r, "not before: %s\n", fmt_time(t, s.c.st.not_before));
	adm_out(r, "not after: %s\n", fmt_time(t, s.c.st.not_after));
	if (!serial_is_zero(s.c.replaces)) {
		serial_hex(hex, s.c.replaces);
		adm_out(r, "replaces: %s\n", hex);
	}
	if (!serial_is_zero(s.c.replaced_by)) {
		serial_hex(hex, s.c.replaced_by);
		adm_out(r, "replaced by: %s\n", hex);
	}
 out:
	cert_rec_cleanup(&s.c);
}

/* One line (or JSON object) of list --expiring, kept to sort by date. */
struct list_item {
	int64_t		 not_after;
	uint8_t		 serial[SERIAL_LEN];
	uint8_t		*text;
	size_t		 len;
};

struct list_ctx {
	struct wb	*o;		/* the walk's buffer */
	int		 status;	/* -1 any */
	int64_t		 expiring;	/* 0: no filter; else not_after <= */
	int64_t		 now;
	const char	*account;	/* in the request's argv */
	int		 json;
	uint64_t	 n;
	struct list_item *items;	/* --expiring: sorted at the end */
	size_t		 num_items, cap_items;
	int		 oom;
};

#define LIST_HEADER "%-32s %-7s %-20s %-20s %-20s %s\n"

/* One certificate as a text line or a JSON object, into o. */
static void
list_render(struct wb *o, const struct cert_rec *c, int json)
{
	char hex[SERIAL_HEX_LEN], t[32], rt[32];

	if (json) {
		cert_json(o, c);
		return;
	}
	serial_hex(hex, c->serial);
	/* hold and revoked: when and why, as openssl ca -status and
	 * easy-rsa's index show the revocation beside the expiry */
	walk_printf(o, LIST_HEADER, hex, status_name(c->st.status),
	    fmt_time(t, c->st.not_after), c->st.status == CERT_GOOD ? "-" :
	    fmt_time(rt, c->st.revoked_at), c->st.status == CERT_GOOD ? "-" :
	    adm_reason_name(c->st.reason), c->account);
}

static int
list_keep(struct list_ctx *l, const struct cert_rec *c)
{
	struct list_item *it;
	struct wb b;

	if (l->num_items == l->cap_items) {
		size_t cap = l->cap_items ? 2 * l->cap_items : 64;
		struct list_item *n = reallocarray(l->items, cap, sizeof(*n));

		if (n == NULL)
			return 0;
		l->items = n;
		l->cap_items = cap;
	}
	wb_init(&b);
	list_render(&b, c, l->json);
	if (!wb_ok(&b)) {
		wb_cleanup(&b);
		return 0;
	}
	it = &l->items[l->num_items++];
	it->not_after = c->st.not_after;
	memcpy(it->serial, c->serial, SERIAL_LEN);
	it->text = wb_steal(&b, &it->len);
	return 1;
}

static int
list_item_cmp(const void *a, const void *b)
{
	const struct list_item *x = a, *y = b;

	if (x->not_after != y->not_after)
		return x->not_after < y->not_after ? -1 : 1;
	return memcmp(x->serial, y->serial, SERIAL_LEN);
}

static int
list_cb(const struct cert_rec *c, void *arg)
{
	struct list_ctx *l = arg;

	if (l->status >= 0 && c->st.status != l->status)
		return 1;
	if (l->account != NULL && strcmp(c->account, l->account) != 0)
		return 1;
	if (l->expiring && (c->st.status == CERT_REVOKED ||
	    c->st.not_after <= l->now || c->st.not_after > l->expiring))
		return 1;
	if (l->expiring) {
		if (!list_keep(l, c)) {
			l->oom = 1;
			return 0;
		}
	} else {
		if (l->json && l->n)
			wb_u8(l->o, ',');
		list_render(l->o, c, l->json);
	}
	l->n++;
	return wb_ok(l->o);
}

static enum store_rc
list_txn(struct store_txn *txn, void *arg)
{
	return store_cert_iter(txn, list_cb, arg);
}

/* Worker. */
static void
list_work(struct walk *w)
{
	struct list_ctx *l = w->ctx;
	size_t i;

	l->o = &w->out;
	if (l->json)
		wb_u8(l->o, '[');
	else
		walk_printf(l->o, LIST_HEADER, "SERIAL", "STATUS",
		    "NOT_AFTER", "REVOKED", "REASON", "ACCOUNT");
	w->rc = store_read(w->store, list_txn, l);
	if (l->oom)
		fatalx("list: out of memory");
	/* --expiring: soonest first (qsort must not see NULL, even for 0) */
	if (l->num_items > 0)
		qsort(l->items, l->num_items, sizeof(*l->items),
		    list_item_cmp);
	for (i = 0; i < l->num_items; i++) {
		if (w->rc == STORE_OK) {
			if (l->json && i > 0)
				wb_u8(l->o, ',');
			wb_put(l->o, l->items[i].text, l->items[i].len);
		}
		free(l->items[i].text);
	}
	free(l->items);
	l->items = NULL;
	if (w->rc == STORE_OK && l->json)
		wb_str(l->o, "]\n");
}

static void
cmd_list(struct adm_req *r)
{
	struct args a;
	struct list_ctx *l = NULL;
	const char *st, *ex;
	uint64_t days;

	if (!args_parse(r, 1, " --status --expiring --account ", " --json ",
	    &a))
		goto out;
	if (a.num_pos != 0) {
		adm_usage(r, "usage: list [--status good|hold|revoked] "
		    "[--expiring DAYS] [--account NAME] [--json]");
		goto out;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatalx("out of memory");
	l->status = -1;
	l->now = time(NULL);
	l->account = arg(&a, "--account");
	l->json = arg(&a, "--json") != NULL;
	if ((st = arg(&a, "--status")) != NULL) {
		if (strcmp(st, "good") == 0)
			l->status = CERT_GOOD;
		else if (strcmp(st, "hold") == 0)
			l->status = CERT_HOLD;
		else if (strcmp(st, "revoked") == 0)
			l->status = CERT_REVOKED;
		else {
			adm_fail(r, "list: --status must be good, hold or "
			    "revoked");
			goto out;
		}
	}
	if ((ex = arg(&a, "--expiring")) != NULL) {
		if (!parse_u64_arg(ex, &days) || days > 36500) {
			adm_fail(r, "list: --expiring must be a number of "
			    "days");
			goto out;
		}
		l->expiring = l->now + (int64_t)days * 86400;
	}
	walk_start(walk_new(r, "list", list_work, NULL, l));
	l = NULL;	/* the walk's */
 out:
	free(l);
}

/* ---- audit ---- */

struct audit_ctx {
	struct adm_req	*r;
	int		 json;
	uint64_t	 n;
};

static int
audit_cb(const struct audit_rec *ar, void *arg)
{
	struct audit_ctx *x = arg;
	struct wb *o = &x->r->rep.out;
	char t[32], h[2 * STORE_HASH_LEN + 1];

	hex_encode(h, ar->hash, STORE_HASH_LEN);
	if (x->json) {
		if (x->n)
			wb_u8(o, ',');
		wb_u8(o, '{');
		json_kv_u64(o, 1, "seq", ar->seq);
		json_kv_str(o, 0, "time", fmt_time(t, ar->when));
		json_kv_str(o, 0, "actor", ar->actor);
		json_kv_str(o, 0, "action", ar->action);
		json_kv_str(o, 0, "subject", ar->subject);
		json_kv_str(o, 0, "details", ar->details);
		json_kv_str(o, 0, "hash", h);
		wb_u8(o, '}');
	} else
		adm_out(x->r, "%" PRIu64 " %s %s %s %s%s%s\n", ar->seq,
		    fmt_time(t, ar->when), ar->actor, ar->action, ar->subject,
		    ar->details[0] ? " " : "", ar->details);
	x->n++;
	return wb_ok(o);
}

static enum store_rc
audit_txn(struct store_txn *txn, void *arg)
{
	return store_audit_iter(txn, 1, audit_cb, arg);
}

struct verify_ctx {
	uint64_t	count, bad;
	char		why[256];
};

static enum store_rc
verify_txn(struct store_txn *txn, void *arg)
{
	struct verify_ctx *v = arg;

	return store_audit_verify(txn, &v->count, &v->bad, v->why,
	    sizeof(v->why));
}

static void
cmd_audit(struct adm_req *r)
{
	struct args a;
	struct audit_ctx x;
	struct verify_ctx v;
	enum store_rc rc;

	if (!args_parse(r, 1, NULL, " --verify --json ", &a))
		return;
	if (arg(&a, "--verify") != NULL) {
		memset(&v, 0, sizeof(v));
		rc = store_read(r->d->store, verify_txn, &v);
		if (rc == STORE_OK)
			adm_out(r, "audit chain OK: %" PRIu64 " records\n",
			    v.count);
		else if (rc == STORE_CORRUPT)
			adm_fail(r, "audit chain BROKEN: %s", v.why);
		else
			fail_store(r, "audit --verify", rc);
		return;
	}
	memset(&x, 0, sizeof(x));
	x.r = r;
	x.json = arg(&a, "--json") != NULL;
	if (x.json)
		wb_u8(&r->rep.out, '[');
	if ((rc = store_read(r->d->store, audit_txn, &x)) != STORE_OK) {
		fail_store(r, "audit", rc);
		return;
	}
	if (x.json)
		wb_str(&r->rep.out, "]\n");
}

/* ---- backup ---- */

struct backup_job {
	struct adm_req	*r;
	enum store_rc	 rc;
};

static void
backup_work(void *arg)
{
	struct backup_job *b = arg;

	b->rc = store_backup_fd(b->r->d->store, b->r->fd);
}

static void
backup_done(void *arg)
{
	struct backup_job *b = arg;
	struct adm_req *r = b->r;

	if (b->rc != STORE_OK)
		fail_store(r, "backup", b->rc);
	else {
		adm_out(r, "backup written (consistent, compacted LMDB "
		    "data file)\n");
		adm_out(r, "not in the backup: the TOTP key %s (the accounts' "
		    "TOTP secrets are sealed with it): back it up separately, "
		    "apart from this file\n", r->d->conf->store.totp_key_file);
		log_info("backup taken by %s", r->actor);
	}
	free(b);
	adm_done(r);
}

static void
cmd_backup(struct adm_req *r)
{
	struct backup_job *b;

	if (r->fd < 0) {
		adm_usage(r, "usage: backup FILE (mica-admin passes the open "
		    "file)");
		return;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL)
		fatalx("out of memory");
	b->r = r;
	if (!workq_submit(r->d->workers, backup_work, backup_done, b)) {
		free(b);
		adm_fail(r, "backup: micad is stopping");
		return;
	}
	r->async = 1;
}

/* ---- replica record (mica-admin replica add while micad runs) ---- */

struct reprec_job {
	struct adm_req		*r;
	struct adm_replica_rec	 rr;
	char			 name[REPL_NAME_MAX + 1];
	enum store_rc		 rc;
};

static void
reprec_free(struct reprec_job *j)
{
	adm_reprec_cleanup(&j->rr);
	free(j);
}

static void
reprec_backup_work(void *arg)
{
	struct reprec_job *j = arg;

	j->rc = store_backup_fd(j->r->d->store, j->r->fd);
}

static void
reprec_backup_done(void *arg)
{
	struct reprec_job *j = arg;
	struct adm_req *r = j->r;

	if (j->rc != STORE_OK)
		fail_store(r, "replica record: the store copy", j->rc);
	else {
		adm_out(r, "replica %s: 3 certificates recorded; store copy "
		    "written (a read snapshot after that commit)\n", j->name);
		log_info("replica %s: certificates recorded and store copied "
		    "by %s", j->name, r->actor);
	}
	reprec_free(j);
	adm_done(r);
}

/* Writer thread: the three certificates and their audit records. */
static enum store_rc
reprec_txn(struct store_txn *t, void *arg)
{
	struct reprec_job *j = arg;

	return adm_replica_txn(t, &j->rr);
}

/* Loop: the certificates are committed (or not); then the copy. */
static void
reprec_written(void *arg, enum store_rc rc)
{
	struct reprec_job *j = arg;
	struct adm_req *r = j->r;

	if (rc != STORE_OK) {
		fail_store(r, "replica record", rc);
		reprec_free(j);
		adm_done(r);
		return;
	}
	if (!workq_submit(r->d->workers, reprec_backup_work,
	    reprec_backup_done, j)) {
		adm_fail(r, "replica record: micad is stopping");
		reprec_free(j);
		adm_done(r);
	}
}

/*
 * replica record NAME, attachments cert0 (OCSP signer), cert1 (TLS
 * server), cert2 (replication client, CN=replica:NAME), all issued by
 * this CA, and the open file of the new store copy: records the three
 * (journalled, audited) and then writes a backup into the file.
 */
static void
cmd_replica_record(struct adm_req *r)
{
	struct reprec_job *j;
	X509 *ca = r->d->signer != NULL ?
	    ca_signer_get0_cert(r->d->signer) : NULL;
	char err[512];

	if (r->in.argc != 3 || r->fd < 0) {
		adm_usage(r, "usage: replica record NAME (mica-admin replica "
		    "add passes the certificates and the open store copy)");
		return;
	}
	if (ca == NULL) {
		adm_fail(r, "replica record: no CA certificate here");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatalx("out of memory");
	j->r = r;
	if (!adm_reprec_parse(&j->rr, j->name, sizeof(j->name), &r->in, ca,
	    time(NULL), err, sizeof(err))) {
		adm_fail(r, "%s", err);
		free(j);
		return;
	}
	j->rr.actor = r->actor;
	if (!micad_write(r->d, reprec_txn, j, NULL, reprec_written)) {
		reprec_free(j);
		adm_fail(r, "replica record: micad is stopping");
		return;
	}
	r->async = 1;
}

/* ---- digest ---- */

struct digest_job {
	struct adm_req	*r;
	enum store_rc	 rc;
	uint8_t		 digest[STORE_HASH_LEN];
	uint64_t	 seq;
};

static void
digest_work(void *arg)
{
	struct digest_job *g = arg;

	g->rc = store_digest(g->r->d->store, g->digest, &g->seq);
}

static void
digest_done(void *arg)
{
	struct digest_job *g = arg;
	struct adm_req *r = g->r;
	char hex[2 * STORE_HASH_LEN + 1];

	if (g->rc != STORE_OK)
		fail_store(r, "digest", g->rc);
	else {
		hex_encode(hex, g->digest, sizeof(g->digest));
		adm_out(r, "digest %s seq %" PRIu64 "\n", hex, g->seq);
	}
	free(g);
	adm_done(r);
}

static void
cmd_digest(struct adm_req *r)
{
	struct digest_job *g;
	struct args a;

	if (!args_parse(r, 1, NULL, "", &a))
		return;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		fatalx("out of memory");
	g->r = r;
	if (!workq_submit(r->d->workers, digest_work, digest_done, g)) {
		free(g);
		adm_fail(r, "digest: micad is stopping");
		return;
	}
	r->async = 1;
}

/* ---- reissue requests ---- */

struct req_list {
	struct wb	*o;		/* the walk's buffer */
	int		 pending_only;
	int		 json;
	uint64_t	 n;
};

static int
req_list_cb(const struct request_rec *q, void *arg)
{
	struct req_list *l = arg;
	struct wb *o = l->o;
	char lost[SERIAL_HEX_LEN], nw[SERIAL_HEX_LEN], t[32];
	int enrol;

	if (l->pending_only && q->state != REQ_PENDING)
		return 1;
	serial_hex(lost, q->lost_serial);
	serial_hex(nw, q->new_serial);
	enrol = reissue_is_enrolment(q->lost_serial);
	if (l->json) {
		if (l->n)
			wb_u8(o, ',');
		wb_u8(o, '{');
		json_kv_u64(o, 1, "id", q->id);
		json_kv_str(o, 0, "state", req_state_name(q->state));
		json_kv_str(o, 0, "account", q->account);
		json_kv_str(o, 0, "kind", enrol ? "enrolment" : "reissue");
		json_kv_str(o, 0, "lost_serial", enrol ? "" : lost);
		json_kv_str(o, 0, "reason", enrol ? "" :
		    req_reason_name(q->reason));
		json_kv_str(o, 0, "note", q->note);
		json_kv_str(o, 0, "created", fmt_time(t, q->created));
		json_kv_bool(o, 0, "held", q->held);
		if (q->state != REQ_PENDING) {
			json_kv_str(o, 0, "decided", fmt_time(t, q->decided));
			json_kv_str(o, 0, "decided_by", q->decided_by);
		}
		if (q->state == REQ_ISSUED)
			json_kv_str(o, 0, "new_serial", nw);
		if (q->state == REQ_REJECTED)
			json_kv_str(o, 0, "why", q->why);
		wb_u8(o, '}');
	} else {
		if (enrol)
			walk_printf(o, "%" PRIu64 " %-8s account=%s enrolment "
			    "created=%s", q->id, req_state_name(q->state),
			    q->account, fmt_time(t, q->created));
		else
			walk_printf(o, "%" PRIu64 " %-8s account=%s lost=%s "
			    "reason=%s created=%s", q->id,
			    req_state_name(q->state), q->account, lost,
			    req_reason_name(q->reason), fmt_time(t,
			    q->created));
		if (q->state == REQ_ISSUED)
			walk_printf(o, " new=%s", nw);
		if (q->note[0])
			walk_printf(o, " note=\"%s\"", q->note);
		walk_printf(o, "\n");
	}
	l->n++;
	return 1;
}

static enum store_rc
req_list_txn(struct store_txn *txn, void *arg)
{
	return store_request_iter(txn, req_list_cb, arg);
}

/* Worker. */
static void
req_list_work(struct walk *w)
{
	struct req_list *l = w->ctx;

	l->o = &w->out;
	if (l->json)
		wb_u8(l->o, '[');
	if ((w->rc = store_read(w->store, req_list_txn, l)) != STORE_OK)
		return;
	if (l->json)
		wb_str(l->o, "]\n");
	else if (l->n == 0)
		walk_printf(l->o, "no %srequests\n",
		    l->pending_only ? "pending " : "");
}

static void
cmd_requests(struct adm_req *r)
{
	struct args a;
	struct req_list *l;

	if (!args_parse(r, 1, NULL, " --pending --json ", &a))
		return;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatalx("out of memory");
	l->pending_only = arg(&a, "--pending") != NULL;
	l->json = arg(&a, "--json") != NULL;
	walk_start(walk_new(r, "requests", req_list_work, NULL, l));
}

struct decide_job {
	struct adm_req	*r;
	uint64_t	 id;
	int		 approve;
};

/* Loop: the decision is committed (or failed), OCSP/CRL are updated. */
static void
decided(void *arg, int ok, const char *err)
{
	struct decide_job *dj = arg;
	struct adm_req *r = dj->r;

	if (!ok)
		adm_fail(r, "%s %" PRIu64 ": %s", dj->approve ? "approve" :
		    "reject", dj->id, err != NULL && err[0] ? err : "failed");
	else
		adm_out(r, "request %" PRIu64 " %s\n", dj->id,
		    dj->approve ? "approved: replacement issued, lost "
		    "certificate revoked" : "rejected");
	free(dj);
	adm_done(r);
}

static void
decide(struct adm_req *r, int approve)
{
	struct args a;
	struct decide_job *dj;
	uint64_t id;
	const char *why;
	int ok;

	if (!args_parse(r, 1, approve ? NULL : " --why ", NULL, &a))
		return;
	if (a.num_pos != 1 || !parse_u64_arg(a.pos[0], &id)) {
		adm_usage(r, approve ? "usage: approve ID" :
		    "usage: reject ID [--why TEXT]");
		return;
	}
	if (r->d->reissue == NULL) {
		adm_fail(r, "reissue is not enabled in this micad");
		return;
	}
	if ((dj = calloc(1, sizeof(*dj))) == NULL)
		fatalx("out of memory");
	dj->r = r;
	dj->id = id;
	dj->approve = approve;
	if (approve)
		ok = reissue_approve(r->d, id, r->actor, decided, dj);
	else {
		why = arg(&a, "--why");
		ok = reissue_reject(r->d, id, r->actor,
		    why != NULL ? why : "rejected by the administrator",
		    decided, dj);
	}
	if (!ok) {
		free(dj);
		adm_fail(r, "%s %" PRIu64 ": micad is stopping",
		    approve ? "approve" : "reject", id);
		return;
	}
	r->async = 1;	/* decided replies */
}

static void
cmd_approve(struct adm_req *r)
{
	decide(r, 1);
}

static void
cmd_reject(struct adm_req *r)
{
	decide(r, 0);
}

static void
cmd_crl(struct adm_req *r)
{
	const struct crl_snapshot *snap;

	if (r->d->crl == NULL) {
		adm_fail(r, "crl: the CRL service is not running");
		return;
	}
	if (!crl_service_rebuild(r->d->crl)) {
		adm_fail(r, "crl: rebuild failed (see micad's log)");
		return;
	}
	if ((snap = crl_service_peek(r->d->crl, CRL_FULL)) != NULL) {
		adm_out(r, "full CRL number %" PRIu64 " built\n",
		    snap->number);
		crl_snapshot_release(snap);
	}
}

/* ---- tls renew ---- */

/*
 * The SAN texts of the values of every option opt in a: "DNS:v" or
 * "IP:v" from --name (an address is an IP SAN, as at init), "IP:v"
 * from --ip, "v" itself from --san.  Each is checked; 1, or 0 after
 * adm_fail/adm_usage.  The texts are malloc'd into out (free_texts).
 */
static int
collect_sans(struct adm_req *r, const char *what, const struct args *a,
    char **out, size_t *out_num)
{
	GENERAL_NAME *gn = NULL;
	unsigned char ip[16];
	char text[CA_SAN_TEXT_MAX + 8], err[CA_ERR_MAX];
	int i, is_ip;

	*out_num = 0;
	for (i = 0; i < a->num; i++) {
		const char *v = a->val[i];

		is_ip = inet_pton(AF_INET, v, ip) == 1 ||
		    inet_pton(AF_INET6, v, ip) == 1;
		if (strcmp(a->name[i], "--name") == 0)
			snprintf(text, sizeof(text), "%s:%s", is_ip ? "IP" :
			    "DNS", v);
		else if (strcmp(a->name[i], "--ip") == 0) {
			if (!is_ip) {
				adm_fail(r, "%s: --ip %s: not an IPv4 or IPv6 "
				    "address", what, v);
				return 0;
			}
			snprintf(text, sizeof(text), "IP:%s", v);
		} else if (strcmp(a->name[i], "--san") == 0)
			snprintf(text, sizeof(text), "%s", v);
		else
			continue;
		if (!ca_san_parse(&gn, text, err, sizeof(err))) {
			adm_fail(r, "%s: %s", what, err);
			return 0;
		}
		GENERAL_NAME_free(gn);
		gn = NULL;
		if (*out_num == CA_SANS_MAX) {
			adm_fail(r, "%s: more than %d names", what, CA_SANS_MAX);
			return 0;
		}
		if ((out[(*out_num)++] = strdup(text)) == NULL)
			fatalx("out of memory");
	}
	return 1;
}

static void
free_texts(char **t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(t[i]);
}

struct tls_renew_ctx {
	struct adm_req	*r;
	char		 names[CA_SAN_LIST_MAX + 1];
};

static void
tls_renewed(void *arg, int ok, const char *text)
{
	struct tls_renew_ctx *t = arg;
	struct adm_req *r = t->r;

	if (ok) {
		log_info("TLS server certificate renewed by %s: serial=%s "
		    "names=%s", r->actor, text, t->names);
		adm_out(r, "serial: %s\nnames: %s\n", text, t->names);
		adm_out(r, "micad gives new connections the new certificate; "
		    "open connections keep theirs\n");
	} else
		adm_fail(r, "tls renew: %s", text);
	free(t);
	adm_done(r);
}

static void
cmd_tls_renew(struct adm_req *r)
{
	struct args a;
	struct tls_renew_ctx *t;
	char *sans[CA_SANS_MAX];
	size_t n = 0, i, len;

	if (!args_parse(r, 2, " --name --ip ", NULL, &a))
		return;
	if (a.num_pos != 0 || a.num == 0) {
		adm_usage(r, "usage: tls renew --name NAME... [--ip ADDR...]");
		return;
	}
	if (!collect_sans(r, "tls renew", &a, sans, &n))
		goto out;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		fatalx("out of memory");
	t->r = r;
	for (i = 0; i < n; i++) {
		len = strlen(t->names);
		snprintf(t->names + len, sizeof(t->names) - len, "%s%s",
		    i ? ", " : "", sans[i]);
	}
	if (!renew_tls_names(r->d, (const char *const *)sans, n, tls_renewed,
	    t)) {
		adm_fail(r, "tls renew: a renewal is running; try again");
		free(t);
		goto out;
	}
	r->async = 1;	/* tls_renewed replies */
 out:
	free_texts(sans, n);
}

/* ---- replication ---- */

static void
cmd_promote(struct adm_req *r)
{
	char msg[1024];

	if (r->in.argc != 1) {
		adm_usage(r, "usage: promote");
		return;
	}
	if (!repl_promote(msg, sizeof(msg)))
		adm_fail(r, "promote: %s", msg);
	else
		adm_out(r, "%s", msg);
}

/* ---- dispatch ---- */

struct command {
	const char	*name;
	const char	*sub;		/* second word, or NULL */
	void		(*fn)(struct adm_req *);
};

static const struct command commands[] = {
	{ "status", NULL, cmd_status },
	{ "account", "add", cmd_account_add },
	{ "account", "list", cmd_account_list },
	{ "account", "unlock", cmd_account_unlock },
	{ "account", "reset", cmd_account_reset },
	{ "account", "disable", cmd_account_disable },
	{ "account", "enable", cmd_account_enable },
	{ "account", "remove", cmd_account_remove },
	{ "issue", NULL, cmd_issue },
	{ "revoke", NULL, cmd_revoke },
	{ "hold", NULL, cmd_hold },
	{ "unhold", NULL, cmd_unhold },
	{ "allow-renew", NULL, cmd_allow_renew },
	{ "show", NULL, cmd_show },
	{ "list", NULL, cmd_list },
	{ "audit", NULL, cmd_audit },
	{ "backup", NULL, cmd_backup },
	{ "digest", NULL, cmd_digest },
	{ "requests", NULL, cmd_requests },
	{ "approve", NULL, cmd_approve },
	{ "reject", NULL, cmd_reject },
	{ "crl", NULL, cmd_crl },
	{ "check", NULL, adm_cmd_check },
	{ "tls", "renew", cmd_tls_renew },
	{ "promote", NULL, cmd_promote },
	{ "replica", "record", cmd_replica_record },
};

void
adm_dispatch(struct adm_req *r)
{
	size_t i;
	const char *cmd = r->in.argc > 0 ? r->in.argv[0] : "";
	const char *sub = r->in.argc > 1 ? r->in.argv[1] : "";
	char refuse[512];

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, cmd) != 0)
			continue;
		if (commands[i].sub != NULL &&
		    strcmp(commands[i].sub, sub) != 0)
			continue;
		log_debug("admin %s: %s%s%s", r->actor, cmd,
		    commands[i].sub ? " " : "", commands[i].sub ? sub : "");
		if (repl_refuse_admin(cmd, sub, refuse, sizeof(refuse)))
			adm_fail(r, "%s", refuse);
		else
			commands[i].fn(r);
		if (!r->async)
			adm_done(r);
		return;
	}
	adm_usage(r, "unknown command \"%s%s%s\" (see mica-admin --help)",
	    cmd, strcmp(cmd, "account") == 0 || strcmp(cmd, "tls") == 0 ?
	    " " : "", strcmp(cmd, "account") == 0 ||
	    strcmp(cmd, "tls") == 0 ? sub : "");
	adm_done(r);
}
