/*
 * test_reissue.c - the reissue workflow against a real store and a real
 * CA in a temp directory: validation rules, duplicate requests, approve
 * (replacement signed, lost certificate revoked keyCompromise with the
 * request time as invalidity date, linked, waiter gets ISSUED), token
 * lookup, hold-on-request + reject (hold released, waiter gets REJECTED),
 * and the audit chain.  The workflow's writes run on a real writer
 * thread (micad_write); the tests turn the loop until the callback ran,
 * and check it never runs before the call returned.  test_writer_async
 * shows the loop serving (a store read, another event) while a write
 * transaction is blocked on the writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <semaphore.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "ca/ca.h"
#include "ca/micad.h"
#include "ca/reissue.h"
#include "common/bytes.h"
#include "common/workq.h"
#include "conf/conf.h"
#include "store/store.h"

struct fx {
	char		 dir[64];
	struct mica_conf conf;
	struct micad	 d;
	EVP_PKEY	*k1, *k2, *k3;
	uint8_t		 lost[16];
};

struct got {
	int			calls;
	struct reissue_result	res;
	uint8_t			cert[8192];
	char			why[128];
};

static void
got_cb(void *arg, const struct reissue_result *r)
{
	struct got *g = arg;

	g->calls++;
	g->res = *r;
	if (r->cert_der != NULL && r->cert_len <= sizeof(g->cert))
		memcpy(g->cert, r->cert_der, r->cert_len);
	if (r->why != NULL)
		snprintf(g->why, sizeof(g->why), "%s", r->why);
}

/* ---- the asynchronous calls, waited for on the loop ---- */

struct created {
	int		calls;
	enum reissue_rc	rc;
	uint64_t	id;
	uint8_t		state;
	uint8_t		token[REISSUE_TOKEN_LEN];
	char		err[512];
};

static void
created_cb(void *arg, enum reissue_rc rc, uint64_t id, uint8_t state,
    const uint8_t token[REISSUE_TOKEN_LEN], const char *err)
{
	struct created *g = arg;

	g->calls++;
	g->rc = rc;
	g->id = id;
	g->state = state;
	memcpy(g->token, token, REISSUE_TOKEN_LEN);
	snprintf(g->err, sizeof(g->err), "%s", err);
}

static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until *calls is set: a far timer keeps it blocking (the
 * writer's event_active wakes it); no timing is asserted. */
static void
turn_until(struct micad *d, const int *calls)
{
	struct timeval	 far = { 3600, 0 };
	struct event	*ev;

	assert_non_null(ev = evtimer_new(d->base, idle_cb, NULL));
	assert_int_equal(evtimer_add(ev, &far), 0);
	while (*calls == 0)
		assert_int_equal(event_base_loop(d->base, EVLOOP_ONCE), 0);
	event_free(ev);
}

static enum reissue_rc
create_sync(struct micad *d, const char *account, const uint8_t lost[16],
    const uint8_t *csr, size_t len, uint8_t reason, const char *note,
    uint64_t *id, uint8_t *state, uint8_t token[32], char *err,
    size_t err_len)
{
	struct created g;

	memset(&g, 0, sizeof(g));
	assert_true(reissue_create(d, account, lost, csr, len, reason, note,
	    created_cb, &g));
	assert_int_equal(g.calls, 0);	/* never before the call returned */
	turn_until(d, &g.calls);
	assert_int_equal(g.calls, 1);
	*id = g.id;
	*state = g.state;
	memcpy(token, g.token, REISSUE_TOKEN_LEN);
	snprintf(err, err_len, "%s", g.err);
	return g.rc;
}

struct decided {
	int	calls;
	int	ok;
	char	err[512];
};

static void
decided_cb(void *arg, int ok, const char *err)
{
	struct decided *g = arg;

	g->calls++;
	g->ok = ok;
	snprintf(g->err, sizeof(g->err), "%s", err);
}

static int
decide_sync(struct micad *d, uint64_t id, const char *actor,
    const char *why, char *err, size_t err_len)
{
	struct decided g;

	memset(&g, 0, sizeof(g));
	if (why == NULL)
		assert_true(reissue_approve(d, id, actor, decided_cb, &g));
	else
		assert_true(reissue_reject(d, id, actor, why, decided_cb, &g));
	assert_int_equal(g.calls, 0);
	turn_until(d, &g.calls);
	assert_int_equal(g.calls, 1);
	snprintf(err, err_len, "%s", g.err);
	return g.ok;
}

static int
approve_sync(struct micad *d, uint64_t id, const char *actor, char *err,
    size_t err_len)
{
	return decide_sync(d, id, actor, NULL, err, err_len);
}

static int
reject_sync(struct micad *d, uint64_t id, const char *actor,
    const char *why, char *err, size_t err_len)
{
	return decide_sync(d, id, actor, why, err, err_len);
}

static size_t
mk_csr(uint8_t **out, EVP_PKEY *k, const char *cn)
{
	X509_REQ	*req = X509_REQ_new();
	X509_NAME	*n = X509_NAME_new();
	unsigned char	*p = NULL;
	int		 len;

	assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, n));
	assert_true(X509_REQ_set_pubkey(req, k));
	assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
	len = i2d_X509_REQ(req, &p);
	assert_true(len > 0);
	*out = p;
	X509_NAME_free(n);
	X509_REQ_free(req);
	return (size_t)len;
}

struct issue_ctx {
	struct micad	*d;
	uint8_t		*csr;
	size_t		 csr_len;
	uint8_t		 serial[16];
};

static enum store_rc
setup_txn(struct store_txn *txn, void *arg)
{
	struct issue_ctx	*c = arg;
	struct account_rec	 a;
	uint8_t			*der = NULL;
	size_t			 len;
	char			 err[256];
	enum store_rc		 rc;

	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "alice");
	snprintf(a.pwhash, sizeof(a.pwhash), "x");
	a.totp_sealed_len = 20;
	snprintf(a.subject, sizeof(a.subject), "/CN=alice");
	if ((rc = store_account_put(txn, &a, 0)) != STORE_OK)
		return rc;
	snprintf(a.name, sizeof(a.name), "bob");
	snprintf(a.subject, sizeof(a.subject), "/CN=bob");
	if ((rc = store_account_put(txn, &a, 0)) != STORE_OK)
		return rc;
	rc = micad_issue_txn(c->d, txn, c->csr, c->csr_len, "alice", 30,
	    "test", c->serial, &der, &len, err, sizeof(err));
	free(der);
	return rc;
}

static int
setup(void **state)
{
	struct fx		*f = calloc(1, sizeof(*f));
	struct ca_init_opts	 io;
	struct ca_init_result	 ir;
	struct ca_signer_paths	 sp;
	struct store_opts	 so;
	struct issue_ctx	 ic;
	char			 err[512], path[128];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/mica-reissue.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	memset(&io, 0, sizeof(io));
	io.dir = f->dir;
	assert_true(ca_init_dir(&ir, &io, err, sizeof(err)));
	ca_init_result_cleanup(&ir);
	conf_defaults(&f->conf, f->dir);
	memset(&sp, 0, sizeof(sp));
	sp.ca_cert = f->conf.ca.cert;
	sp.ca_key = f->conf.ca.key;
	sp.ocsp_cert = f->conf.ca.ocsp_cert;
	sp.ocsp_key = f->conf.ca.ocsp_key;
	assert_true(ca_signer_load(&f->d.signer, &sp, err, sizeof(err)));
	memset(&so, 0, sizeof(so));
	so.create = 1;
	snprintf(path, sizeof(path), "%s/store", f->dir);
	assert_int_equal(store_open(&f->d.store, path, &so), STORE_OK);
	f->d.conf = &f->conf;
	assert_int_equal(evthread_use_pthreads(), 0);
	assert_non_null(f->d.base = event_base_new());
	assert_non_null(f->d.writer = workq_new(f->d.base, 1));
	assert_non_null(f->d.reissue = reissue_new(&f->d));
	assert_true(ca_keygen(&f->k1, "ec-p256"));
	assert_true(ca_keygen(&f->k2, "ec-p256"));
	assert_true(ca_keygen(&f->k3, "ec-p256"));
	memset(&ic, 0, sizeof(ic));
	ic.d = &f->d;
	ic.csr_len = mk_csr(&ic.csr, f->k1, "alice");
	assert_int_equal(store_write(f->d.store, setup_txn, &ic), STORE_OK);
	memcpy(f->lost, ic.serial, 16);
	OPENSSL_free(ic.csr);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx	*f = *state;
	char		 cmd[128];

	workq_free(f->d.writer);
	reissue_free(f->d.reissue);
	event_base_free(f->d.base);
	store_close(f->d.store);
	ca_signer_free(f->d.signer);
	EVP_PKEY_free(f->k1);
	EVP_PKEY_free(f->k2);
	EVP_PKEY_free(f->k3);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

struct get_ctx {
	const uint8_t		*serial;
	uint64_t		 id;
	struct cert_state	 st;
	struct request_rec	 q;
	uint8_t			 replaced_by[16];
	uint64_t		 audit_count;
};

static enum store_rc
get_txn(struct store_txn *txn, void *arg)
{
	struct get_ctx	*g = arg;
	struct cert_rec	 r;
	uint64_t	 bad;
	char		 why[128];
	enum store_rc	 rc;

	memset(&r, 0, sizeof(r));
	if ((rc = store_cert_get(txn, g->serial, &r)) != STORE_OK)
		return rc;
	g->st = r.st;
	memcpy(g->replaced_by, r.replaced_by, 16);
	cert_rec_cleanup(&r);
	request_rec_cleanup(&g->q);
	if (g->id != 0 && (rc = store_request_get(txn, g->id, &g->q)) !=
	    STORE_OK)
		return rc;
	return store_audit_verify(txn, &g->audit_count, &bad, why,
	    sizeof(why));
}

static void
test_reissue_approve(void **state)
{
	struct fx	*f = *state;
	struct got	 w, l;
	struct get_ctx	 g;
	uint8_t		*csr, tok[32], tok2[32], st;
	uint64_t	 id, id2;
	size_t		 len;
	char		 err[512];
	const uint8_t	*p;
	X509		*x;

	/* Same key as the lost certificate. */
	len = mk_csr(&csr, f->k1, "alice");
	assert_int_equal(create_sync(&f->d, "alice", f->lost, csr, len,
	    REQREASON_LOST, "", &id, &st, tok, err, sizeof(err)),
	    REISSUE_BAD_REQUEST);
	OPENSSL_free(csr);
	/* Wrong subject. */
	len = mk_csr(&csr, f->k2, "mallory");
	assert_int_equal(create_sync(&f->d, "alice", f->lost, csr, len,
	    REQREASON_LOST, "", &id, &st, tok, err, sizeof(err)),
	    REISSUE_BAD_REQUEST);
	OPENSSL_free(csr);
	/* Another account's serial. */
	len = mk_csr(&csr, f->k2, "alice");
	assert_int_equal(create_sync(&f->d, "bob", f->lost, csr, len,
	    REQREASON_LOST, "", &id, &st, tok, err, sizeof(err)),
	    REISSUE_BAD_REQUEST);
	/* Good. */
	assert_int_equal(create_sync(&f->d, "alice", f->lost, csr, len,
	    REQREASON_COMPROMISED, "laptop stolen", &id, &st, tok, err,
	    sizeof(err)), REISSUE_OK);
	assert_int_equal(st, REQ_PENDING);
	assert_int_equal(id, 1);
	/* The same request again (same account, serial and key: a client
	 * whose ACCEPTED was lost): the open request, with a new token. */
	assert_int_equal(create_sync(&f->d, "alice", f->lost, csr, len,
	    REQREASON_LOST, "", &id2, &st, tok2, err, sizeof(err)),
	    REISSUE_OK);
	assert_int_equal(id2, id);
	assert_int_equal(st, REQ_PENDING);
	memcpy(tok, tok2, sizeof(tok));
	OPENSSL_free(csr);
	/* A second open request for the serial with another key. */
	len = mk_csr(&csr, f->k3, "alice");
	assert_int_equal(create_sync(&f->d, "alice", f->lost, csr, len,
	    REQREASON_LOST, "", &id2, &st, tok2, err, sizeof(err)),
	    REISSUE_DUPLICATE);
	OPENSSL_free(csr);

	/* Someone else may not wait on it; the owner may. */
	memset(&w, 0, sizeof(w));
	assert_int_equal(reissue_wait(&f->d, "bob", id, got_cb, &w),
	    REISSUE_NOT_FOUND);
	assert_int_equal(reissue_wait(&f->d, "alice", id, got_cb, &w),
	    REISSUE_OK);
	assert_int_equal(w.calls, 0);
	/* Token lookup while pending. */
	memset(&l, 0, sizeof(l));
	assert_int_equal(reissue_lookup(&f->d, id, tok, got_cb, &l),
	    REISSUE_OK);
	assert_int_equal(l.calls, 1);
	assert_int_equal(l.res.state, REQ_PENDING);

	assert_true(approve_sync(&f->d, id, "admin", err, sizeof(err)));
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.res.state, REQ_ISSUED);
	assert_int_equal(w.res.id, id);
	assert_non_null(w.res.chain_der);
	p = w.cert;
	x = d2i_X509(NULL, &p, (long)w.res.cert_len);
	assert_non_null(x);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(
	    ca_signer_get0_cert(f->d.signer))), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), f->k2), 1);
	X509_free(x);

	/* In the store: lost revoked keyCompromise, invalidity = created,
	 * linked; request issued by admin. */
	memset(&g, 0, sizeof(g));
	g.serial = f->lost;
	g.id = id;
	assert_int_equal(store_read(f->d.store, get_txn, &g), STORE_OK);
	assert_int_equal(g.st.status, CERT_REVOKED);
	assert_int_equal(g.st.reason, REASON_KEY_COMPROMISE);
	assert_int_equal(g.st.invalidity, g.q.created);
	assert_int_equal(g.q.state, REQ_ISSUED);
	assert_string_equal(g.q.decided_by, "admin");
	assert_memory_equal(g.replaced_by, g.q.new_serial, 16);
	assert_false(serial_is_zero(g.q.new_serial));
	request_rec_cleanup(&g.q);

	/* Decided: approve again fails, WAIT answers at once, FETCH works,
	 * wrong token and unknown id are the same NOT_FOUND. */
	assert_false(approve_sync(&f->d, id, "admin", err, sizeof(err)));
	assert_non_null(strstr(err, "not pending"));
	memset(&w, 0, sizeof(w));
	assert_int_equal(reissue_wait(&f->d, "alice", id, got_cb, &w),
	    REISSUE_OK);
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.res.state, REQ_ISSUED);
	memset(&l, 0, sizeof(l));
	assert_int_equal(reissue_lookup(&f->d, id, tok, got_cb, &l),
	    REISSUE_OK);
	assert_int_equal(l.res.state, REQ_ISSUED);
	assert_true(l.res.cert_len > 0);
	tok[0] ^= 1;
	assert_int_equal(reissue_lookup(&f->d, id, tok, got_cb, &l),
	    REISSUE_NOT_FOUND);
	tok[0] ^= 1;
	assert_int_equal(reissue_lookup(&f->d, 99, tok, got_cb, &l),
	    REISSUE_NOT_FOUND);
	assert_int_equal(l.calls, 1);
	/* The revoked serial cannot be requested again. */
	len = mk_csr(&csr, f->k3, "alice");
	assert_int_equal(create_sync(&f->d, "alice", f->lost, csr, len,
	    REQREASON_LOST, "", &id2, &st, tok2, err, sizeof(err)),
	    REISSUE_BAD_REQUEST);
	OPENSSL_free(csr);
}

static void
test_reissue_hold_reject(void **state)
{
	struct fx	*f = *state;
	struct got	 w;
	struct get_ctx	 g;
	uint8_t		*csr, tok[32], st;
	uint64_t	 id;
	size_t		 len;
	char		 err[512];

	f->conf.policy.hold_on_request = 1;
	len = mk_csr(&csr, f->k2, "alice");
	assert_int_equal(create_sync(&f->d, "alice", f->lost, csr, len,
	    REQREASON_DAMAGED, "", &id, &st, tok, err, sizeof(err)),
	    REISSUE_OK);
	OPENSSL_free(csr);
	memset(&g, 0, sizeof(g));
	g.serial = f->lost;
	g.id = id;
	assert_int_equal(store_read(f->d.store, get_txn, &g), STORE_OK);
	assert_int_equal(g.st.status, CERT_HOLD);
	assert_int_equal(g.q.held, 1);
	request_rec_cleanup(&g.q);

	memset(&w, 0, sizeof(w));
	assert_int_equal(reissue_wait(&f->d, "alice", id, got_cb, &w),
	    REISSUE_OK);
	assert_true(reject_sync(&f->d, id, "admin", "not convinced", err,
	    sizeof(err)));
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.res.state, REQ_REJECTED);
	assert_string_equal(w.why, "not convinced");
	assert_int_equal(store_read(f->d.store, get_txn, &g), STORE_OK);
	assert_int_equal(g.st.status, CERT_GOOD);
	assert_int_equal(g.q.state, REQ_REJECTED);
	assert_string_equal(g.q.why, "not convinced");
	assert_true(g.audit_count > 3);
	request_rec_cleanup(&g.q);
	assert_false(reject_sync(&f->d, id, "admin", "again", err,
	    sizeof(err)));
	/* A waiter dropped with its connection is never called. */
	len = mk_csr(&csr, f->k3, "alice");
	assert_int_equal(create_sync(&f->d, "alice", f->lost, csr, len,
	    REQREASON_LOST, "", &id, &st, tok, err, sizeof(err)), REISSUE_OK);
	OPENSSL_free(csr);
	memset(&w, 0, sizeof(w));
	assert_int_equal(reissue_wait(&f->d, "alice", id, got_cb, &w),
	    REISSUE_OK);
	reissue_wait_cancel(f->d.reissue, &w);
	assert_true(approve_sync(&f->d, id, "admin", err, sizeof(err)));
	assert_int_equal(w.calls, 0);
	assert_int_equal(store_read(f->d.store, get_txn, &g), STORE_OK);
	assert_int_equal(g.st.status, CERT_REVOKED);
	assert_int_equal(g.st.reason, REASON_KEY_COMPROMISE);
	request_rec_cleanup(&g.q);
}

struct revoke_ctx {
	const uint8_t	*serial;
	uint8_t		 reason;
};

/* An admin revokes the lost certificate meanwhile. */
static enum store_rc
revoke_txn(struct store_txn *txn, void *arg)
{
	struct revoke_ctx *r = arg;

	return store_cert_set_status(txn, r->serial, CERT_REVOKED, r->reason,
	    time(NULL), 0, NULL);
}

static void
test_reissue_revoked_meanwhile(void **state)
{
	struct fx		*f = *state;
	struct got		 w;
	struct get_ctx		 g;
	struct revoke_ctx	 rv;
	uint8_t			*csr, tok[32], st;
	uint64_t		 id;
	size_t			 len;
	char			 err[512];

	f->conf.policy.hold_on_request = 1;
	len = mk_csr(&csr, f->k2, "alice");
	assert_int_equal(create_sync(&f->d, "alice", f->lost, csr, len,
	    REQREASON_LOST, "", &id, &st, tok, err, sizeof(err)), REISSUE_OK);
	OPENSSL_free(csr);
	memset(&w, 0, sizeof(w));
	assert_int_equal(reissue_wait(&f->d, "alice", id, got_cb, &w),
	    REISSUE_OK);
	/* The held certificate is revoked by an admin meanwhile. */
	rv.serial = f->lost;
	rv.reason = REASON_AFFILIATION_CHANGED;
	assert_int_equal(store_write(f->d.store, revoke_txn, &rv), STORE_OK);
	assert_false(approve_sync(&f->d, id, "admin", err, sizeof(err)));
	assert_string_equal(err, "lost certificate was revoked (reason "
	    "affiliationChanged) since the request; reject it");
	/* Nothing signed, nothing sent, the request is still pending and
	 * the revocation reason is the admin's. */
	assert_int_equal(w.calls, 0);
	memset(&g, 0, sizeof(g));
	g.serial = f->lost;
	g.id = id;
	assert_int_equal(store_read(f->d.store, get_txn, &g), STORE_OK);
	assert_int_equal(g.q.state, REQ_PENDING);
	assert_true(serial_is_zero(g.q.new_serial));
	assert_true(serial_is_zero(g.replaced_by));
	assert_int_equal(g.st.status, CERT_REVOKED);
	assert_int_equal(g.st.reason, REASON_AFFILIATION_CHANGED);
	request_rec_cleanup(&g.q);
	/* Rejecting it works and tells the waiter. */
	assert_true(reject_sync(&f->d, id, "admin", "revoked meanwhile",
	    err, sizeof(err)));
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.res.state, REQ_REJECTED);
}

struct expire_ctx {
	const uint8_t	*lost;
	uint8_t		 serial[16];
	int64_t		 not_after;
};

/* A copy of alice's certificate record under a new serial whose
 * notAfter is in the past (the expiry check comes before the DER is
 * looked at). */
static enum store_rc
expired_txn(struct store_txn *txn, void *arg)
{
	struct expire_ctx	*e = arg;
	struct cert_rec		 r;
	enum store_rc		 rc;

	memset(&r, 0, sizeof(r));
	if ((rc = store_cert_get(txn, e->lost, &r)) != STORE_OK)
		return rc;
	memcpy(r.serial, e->serial, 16);
	r.st.not_before = e->not_after - 86400;
	r.st.not_after = e->not_after;
	rc = store_cert_add(txn, &r);
	cert_rec_cleanup(&r);
	return rc;
}

static void
test_reissue_expired(void **state)
{
	struct fx		*f = *state;
	struct expire_ctx	 e;
	uint8_t			*csr, tok[32], st;
	uint64_t		 id;
	size_t			 len;
	char			 err[512], want[256], hex[SERIAL_HEX_LEN];

	memset(&e, 0, sizeof(e));
	e.lost = f->lost;
	e.serial[0] = 0x01;
	e.serial[15] = 0x42;
	e.not_after = 1700000000;	/* 2023-11-14 22:13:20 UTC */
	assert_int_equal(store_write(f->d.store, expired_txn, &e), STORE_OK);
	serial_hex(hex, e.serial);
	len = mk_csr(&csr, f->k2, "alice");
	assert_int_equal(create_sync(&f->d, "alice", e.serial, csr, len,
	    REQREASON_LOST, "", &id, &st, tok, err, sizeof(err)),
	    REISSUE_BAD_REQUEST);
	snprintf(want, sizeof(want), "certificate %s expired on 2023-11-14 "
	    "22:13:20 UTC: an expired certificate is not reissued, ask the "
	    "CA for a new one", hex);
	assert_string_equal(err, want);
	/* The valid one still can be. */
	assert_int_equal(create_sync(&f->d, "alice", f->lost, csr, len,
	    REQREASON_LOST, "", &id, &st, tok, err, sizeof(err)), REISSUE_OK);
	OPENSSL_free(csr);
}

/* ---- the writer thread: the loop serves while a write is blocked ---- */

struct slow_write {
	sem_t			 entered, release;
	int			 runs;		/* of the transaction */
	int			 calls;		/* of done */
	enum store_rc		 rc;
	uint8_t			 serial[16];
	struct micad_changed	 changed;
};

/* Writer thread: holds the write transaction until the test says go. */
static enum store_rc
slow_txn(struct store_txn *txn, void *arg)
{
	struct slow_write *w = arg;

	w->runs++;
	assert_int_equal(w->changed.n, 0);	/* emptied before each run */
	sem_post(&w->entered);
	while (sem_wait(&w->release) != 0)
		;
	if (!micad_changed_add(&w->changed, w->serial))
		return STORE_INVALID;
	return store_cert_set_status(txn, w->serial, CERT_HOLD,
	    REASON_CERTIFICATE_HOLD, time(NULL), 0, NULL);
}

static void
slow_done(void *arg, enum store_rc rc)
{
	struct slow_write *w = arg;

	w->calls++;
	w->rc = rc;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(*(int *)arg)++;
}

static void
test_writer_async(void **state)
{
	struct fx		*f = *state;
	struct slow_write	 w;
	struct get_ctx		 g;
	struct event		*ev;
	int			 ticks = 0;

	memset(&w, 0, sizeof(w));
	assert_int_equal(sem_init(&w.entered, 0, 0), 0);
	assert_int_equal(sem_init(&w.release, 0, 0), 0);
	memcpy(w.serial, f->lost, 16);
	assert_true(micad_write(&f->d, slow_txn, &w, &w.changed, slow_done));
	while (sem_wait(&w.entered) != 0)
		;
	/* The writer is inside its transaction: the loop thread still
	 * reads the store and runs other events, and done has not run. */
	memset(&g, 0, sizeof(g));
	g.serial = f->lost;
	assert_int_equal(store_read(f->d.store, get_txn, &g), STORE_OK);
	assert_int_equal(g.st.status, CERT_GOOD);
	assert_non_null(ev = event_new(f->d.base, -1, 0, tick_cb, &ticks));
	event_active(ev, EV_READ, 0);
	(void)event_base_loop(f->d.base, EVLOOP_NONBLOCK);
	assert_int_equal(ticks, 1);
	assert_int_equal(w.calls, 0);
	event_free(ev);
	/* Let it commit: done runs on the loop, after the commit. */
	sem_post(&w.release);
	turn_until(&f->d, &w.calls);
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.rc, STORE_OK);
	assert_int_equal(w.runs, 1);
	assert_int_equal(w.changed.n, 1);
	assert_memory_equal(w.changed.serial[0], f->lost, 16);
	assert_int_equal(store_read(f->d.store, get_txn, &g), STORE_OK);
	assert_int_equal(g.st.status, CERT_HOLD);
	/* Nothing is queued once the writer is gone. */
	workq_free(f->d.writer);
	f->d.writer = NULL;
	assert_false(micad_write(&f->d, slow_txn, &w, NULL, slow_done));
	assert_false(reissue_approve(&f->d, 1, "admin", decided_cb, NULL));
	sem_destroy(&w.entered);
	sem_destroy(&w.release);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reissue_approve, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reissue_hold_reject,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reissue_revoked_meanwhile,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reissue_expired,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_async,
		    setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
