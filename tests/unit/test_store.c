/*
 * test_store.c - the store module against a real LMDB environment in a
 * fresh temporary directory per test.  Tampering and corruption go through
 * LMDB directly (allowed in tests only) while the store is closed.
 */
#define _XOPEN_SOURCE 700
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/bytes.h"
#include "common/keyhash.h"
#include "common/log.h"
#include "common/totpseal.h"
#include "store/store.h"
#include "store/store_extra.h"

struct fx {
	char		 dir[64];
	struct store	*s;
};

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/mica-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->s);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
open_new(struct fx *f)
{
	struct store_opts o = { .create = 1 };

	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
}

/* The TOTP key of every writable reopen (an older schema is sealed). */
static struct totpseal_key *
test_totp_key(void)
{
	static const uint8_t k[TOTPSEAL_KEY_LEN] = { 0x42 };
	static struct totpseal_key *key;

	if (key == NULL)
		assert_non_null(key = totpseal_key_from(k));
	return key;
}

static void
reopen(struct fx *f)
{
	struct store_opts o = { .totp_key = test_totp_key() };

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
}

static void
mkserial(uint8_t s[STORE_SERIAL_LEN], unsigned int n)
{
	memset(s, 0, STORE_SERIAL_LEN);
	s[0] = 0x40;
	be32_put(s + 12, n);
}

/* ---- raw LMDB access for tampering (store must be closed) ---- */

struct raw {
	MDB_env	*env;
	MDB_txn	*txn;
	MDB_dbi	 dbi;
};

static void
raw_open(struct raw *r, const char *dir, const char *db)
{
	assert_int_equal(mdb_env_create(&r->env), 0);
	assert_int_equal(mdb_env_set_maxdbs(r->env, 8), 0);
	assert_int_equal(mdb_env_set_mapsize(r->env, 64 << 20), 0);
	assert_int_equal(mdb_env_open(r->env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
	assert_int_equal(mdb_dbi_open(r->txn, db, 0, &r->dbi), 0);
}

static void
raw_close(struct raw *r)
{
	assert_int_equal(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
}

static void
raw_put(struct raw *r, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };

	assert_int_equal(mdb_put(r->txn, r->dbi, &k, &v, 0), 0);
}

/* Returns a malloc'd copy of the value. */
static uint8_t *
raw_get(struct raw *r, const void *key, size_t klen, size_t *vlen)
{
	MDB_val k = { klen, (void *)key }, v;
	uint8_t *p;

	assert_int_equal(mdb_get(r->txn, r->dbi, &k, &v), 0);
	p = malloc(v.mv_size);
	assert_non_null(p);
	memcpy(p, v.mv_data, v.mv_size);
	*vlen = v.mv_size;
	return p;
}

static void
raw_del(struct raw *r, const void *key, size_t klen)
{
	MDB_val k = { klen, (void *)key };

	assert_int_equal(mdb_del(r->txn, r->dbi, &k, NULL), 0);
}

/* ---- transaction callbacks ---- */

struct add_arg {
	uint8_t		 serial[STORE_SERIAL_LEN];
	const uint8_t	*der;
	size_t		 der_len;
	int64_t		 issued;
	const char	*account;
};

static enum store_rc
tx_add(struct store_txn *t, void *arg)
{
	struct add_arg *a = arg;
	struct cert_rec c;

	memset(&c, 0, sizeof(c));
	memcpy(c.serial, a->serial, STORE_SERIAL_LEN);
	c.st.status = CERT_GOOD;
	c.st.not_before = a->issued;
	c.st.not_after = a->issued + 86400;
	c.issued_at = a->issued;
	snprintf(c.account, sizeof(c.account), "%s",
	    a->account ? a->account : "alice");
	c.der = (uint8_t *)a->der;
	c.der_len = a->der_len;
	return store_cert_add(t, &c);
}

static enum store_rc
add_cert(struct fx *f, unsigned int n, const uint8_t *der, size_t der_len)
{
	struct add_arg a = { .der = der, .der_len = der_len, .issued = 1000 };

	mkserial(a.serial, n);
	return store_write(f->s, tx_add, &a);
}

struct status_arg {
	uint8_t		serial[STORE_SERIAL_LEN];
	uint8_t		status, reason;
	int64_t		when, invalidity;
	uint64_t	seq;
};

static enum store_rc
tx_status(struct store_txn *t, void *arg)
{
	struct status_arg *a = arg;

	return store_cert_set_status(t, a->serial, a->status, a->reason,
	    a->when, a->invalidity, &a->seq);
}

static enum store_rc
set_status(struct fx *f, unsigned int n, uint8_t status, uint8_t reason,
    int64_t when, uint64_t *seq)
{
	struct status_arg a = { .status = status, .reason = reason,
	    .when = when, .invalidity = when > 0 ? when - 10 : 0 };
	enum store_rc rc;

	mkserial(a.serial, n);
	rc = store_write(f->s, tx_status, &a);
	if (seq != NULL)
		*seq = a.seq;
	return rc;
}

struct get_arg {
	uint8_t			serial[STORE_SERIAL_LEN];
	struct cert_rec		rec;
	struct cert_state	st;
	enum store_rc		state_rc;
};

static enum store_rc
tx_get(struct store_txn *t, void *arg)
{
	struct get_arg *a = arg;

	a->state_rc = store_cert_state(t, a->serial, &a->st);
	return store_cert_get(t, a->serial, &a->rec);
}

static enum store_rc
get_cert(struct fx *f, unsigned int n, struct get_arg *a)
{
	memset(a, 0, sizeof(*a));
	mkserial(a->serial, n);
	return store_read(f->s, tx_get, a);
}

static const uint8_t der1[] = { 0x30, 0x03, 0x02, 0x01, 0x07 };

/* ---- tests ---- */

static enum store_rc
tx_schema(struct store_txn *t, void *arg)
{
	return store_meta_get_u64(t, "schema_version", arg);
}

static void
test_create_open(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { 0 };
	struct store *s2 = NULL;
	struct stat sb;
	char sub[128];
	uint64_t v = 0;

	/* no store yet and no create: refused */
	assert_int_equal(store_open(&s2, f->dir, &o), STORE_NOTFOUND);
	assert_null(s2);
	/* create makes a missing directory with mode 0700 */
	snprintf(sub, sizeof(sub), "%s/store", f->dir);
	o.create = 1;
	assert_int_equal(store_open(&s2, sub, &o), STORE_OK);
	assert_int_equal(stat(sub, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	store_close(s2);
	s2 = NULL;
	o.create = 0;
	assert_int_equal(store_open(&s2, sub, &o), STORE_OK);
	assert_int_equal(store_read(s2, tx_schema, &v), STORE_OK);
	assert_int_equal(v, STORE_SCHEMA_VERSION);
	store_close(s2);
	store_close(NULL);

	/* data survives a reopen */
	open_new(f);
	assert_int_equal(add_cert(f, 1, der1, sizeof(der1)), STORE_OK);
	reopen(f);
	struct get_arg g;
	assert_int_equal(get_cert(f, 1, &g), STORE_OK);
	assert_int_equal(g.rec.der_len, sizeof(der1));
	cert_rec_cleanup(&g.rec);
	assert_string_equal(store_strerror(STORE_LOCKED),
	    "store locked by another process");
}

/* A job that stored a certificate and an audit record, then failed. */
static enum store_rc
tx_add_then_fail(struct store_txn *t, void *arg)
{
	enum store_rc rc;

	if ((rc = tx_add(t, arg)) != STORE_OK)
		return rc;
	if ((rc = store_audit_append(t, "test", "cert.issue", "x", "failed",
	    NULL)) != STORE_OK)
		return rc;
	return STORE_INVALID;
}

static enum store_rc
tx_audit_count(struct store_txn *t, void *arg)
{
	char why[256];

	return store_audit_verify(t, arg, NULL, why, sizeof(why));
}

/*
 * Group commit: in one batch, the job that fails after writing is rolled
 * back alone (its certificate and audit record are nowhere, in the store
 * or the journal); the jobs before and after it commit, each as one
 * journal record; reopening (which checks the journal against the store)
 * finds the same.
 */
static void
test_batch_one_fails(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .create = 1 };
	struct store_journal_info ji, ji2;
	struct add_arg a[3];
	struct store_job jobs[3];
	struct get_arg g;
	char jdir[128];
	uint64_t audits = 0, seq0;
	int i;

	snprintf(jdir, sizeof(jdir), "%s/journal", f->dir);
	o.journal_dir = jdir;
	o.totp_key = test_totp_key();
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
	assert_int_equal(store_journal_info(f->s, &ji), STORE_OK);
	assert_true(ji.enabled);
	seq0 = ji.seq;
	memset(a, 0, sizeof(a));
	for (i = 0; i < 3; i++) {
		mkserial(a[i].serial, 21 + (unsigned)i);
		a[i].der = der1;
		a[i].der_len = sizeof(der1);
		a[i].issued = 1000;
		jobs[i].fn = i == 1 ? tx_add_then_fail : tx_add;
		jobs[i].arg = &a[i];
		jobs[i].rc = STORE_IO;
	}
	assert_int_equal(store_write_batch(f->s, jobs, 3), STORE_OK);
	assert_int_equal(jobs[0].rc, STORE_OK);
	assert_int_equal(jobs[1].rc, STORE_INVALID);
	assert_int_equal(jobs[2].rc, STORE_OK);
	for (i = 0; i < 2; i++) {
		assert_int_equal(get_cert(f, 21, &g), STORE_OK);
		cert_rec_cleanup(&g.rec);
		assert_int_equal(get_cert(f, 22, &g), STORE_NOTFOUND);
		assert_int_equal(get_cert(f, 23, &g), STORE_OK);
		cert_rec_cleanup(&g.rec);
		assert_int_equal(store_read(f->s, tx_audit_count, &audits),
		    STORE_OK);
		assert_int_equal(audits, 0);
		/* one record per job that committed */
		assert_int_equal(store_journal_info(f->s, &ji2), STORE_OK);
		assert_int_equal(ji2.seq, seq0 + 2);
		if (i == 0) {
			store_close(f->s);
			f->s = NULL;
			o.create = 0;
			assert_int_equal(store_open(&f->s, f->dir, &o),
			    STORE_OK);
		}
	}
}

static void
test_cert_basic(void **state)
{
	struct fx *f = *state;
	struct get_arg g;
	uint8_t der[300];
	size_t i;

	for (i = 0; i < sizeof(der); i++)
		der[i] = (uint8_t)(i * 7);
	open_new(f);
	assert_int_equal(add_cert(f, 5, der, sizeof(der)), STORE_OK);
	assert_int_equal(add_cert(f, 5, der1, sizeof(der1)), STORE_EXISTS);
	assert_int_equal(add_cert(f, 0, der1, 0), STORE_INVALID);

	assert_int_equal(get_cert(f, 5, &g), STORE_OK);
	assert_int_equal(g.state_rc, STORE_OK);
	assert_int_equal(g.rec.der_len, sizeof(der));
	assert_memory_equal(g.rec.der, der, sizeof(der));
	assert_string_equal(g.rec.account, "alice");
	assert_int_equal(g.rec.issued_at, 1000);
	assert_int_equal(g.rec.st.status, CERT_GOOD);
	assert_int_equal(g.rec.st.not_before, 1000);
	assert_int_equal(g.rec.st.not_after, 1000 + 86400);
	assert_int_equal(g.rec.st.change_seq, 0);
	assert_true(serial_is_zero(g.rec.replaces));
	assert_true(serial_is_zero(g.rec.replaced_by));
	assert_memory_equal(&g.st, &g.rec.st, sizeof(g.st));
	assert_int_equal(g.rec.serial[15], 5);
	cert_rec_cleanup(&g.rec);
	assert_null(g.rec.der);

	assert_int_equal(get_cert(f, 6, &g), STORE_NOTFOUND);
	assert_int_equal(g.state_rc, STORE_NOTFOUND);
}

struct ev_list {
	struct rev_event	ev[16];
	size_t			n;
	size_t			stop_after;
};

static int
collect_ev(const struct rev_event *e, void *arg)
{
	struct ev_list *l = arg;

	if (l->n < 16)
		l->ev[l->n++] = *e;
	return l->stop_after == 0 || l->n < l->stop_after;
}

struct rev_iter_arg {
	uint64_t	from;
	struct ev_list	l;
	uint64_t	last;
};

static enum store_rc
tx_revs(struct store_txn *t, void *arg)
{
	struct rev_iter_arg *a = arg;
	enum store_rc rc;

	if ((rc = store_rev_last(t, &a->last)) != STORE_OK)
		return rc;
	return store_rev_iter(t, a->from, collect_ev, &a->l);
}

static void
test_transitions(void **state)
{
	struct fx *f = *state;
	/* allowed[from][to] */
	static const int allowed[3][3] = {
		{ 0, 1, 1 },	/* GOOD -> HOLD, REVOKED */
		{ 1, 0, 1 },	/* HOLD -> GOOD, REVOKED */
		{ 0, 0, 0 },	/* REVOKED is final */
	};
	struct get_arg g;
	struct rev_iter_arg ri;
	uint64_t seq, expect_seq = 0;
	unsigned int n = 100, from, to;
	enum store_rc rc;

	open_new(f);
	for (from = 0; from < 3; from++) {
		for (to = 0; to < 3; to++) {
			n++;
			assert_int_equal(add_cert(f, n, der1, sizeof(der1)),
			    STORE_OK);
			if (from != CERT_GOOD) {
				assert_int_equal(set_status(f, n, from,
				    REASON_KEY_COMPROMISE, 2000, &seq),
				    STORE_OK);
				assert_int_equal(seq, ++expect_seq);
			}
			rc = set_status(f, n, to, REASON_SUPERSEDED, 3000,
			    &seq);
			assert_int_equal(rc, allowed[from][to] ? STORE_OK :
			    STORE_INVALID);
			assert_int_equal(get_cert(f, n, &g), STORE_OK);
			cert_rec_cleanup(&g.rec);
			if (!allowed[from][to]) {
				assert_int_equal(g.st.status, from);
				continue;
			}
			assert_int_equal(seq, ++expect_seq);
			assert_int_equal(g.st.status, to);
			assert_int_equal(g.st.change_seq, seq);
			if (to == CERT_GOOD) {
				assert_int_equal(g.st.revoked_at, 0);
				assert_int_equal(g.st.reason, 0);
				assert_int_equal(g.st.invalidity, 0);
			} else {
				assert_int_equal(g.st.revoked_at, 3000);
				assert_int_equal(g.st.invalidity, 2990);
				assert_int_equal(g.st.reason, to == CERT_HOLD ?
				    REASON_CERTIFICATE_HOLD :
				    REASON_SUPERSEDED);
			}
		}
	}
	/* revoking with reason certificateHold or removeFromCRL: refused */
	assert_int_equal(add_cert(f, 200, der1, sizeof(der1)), STORE_OK);
	assert_int_equal(set_status(f, 200, CERT_REVOKED,
	    REASON_CERTIFICATE_HOLD, 1, NULL), STORE_INVALID);
	assert_int_equal(set_status(f, 200, CERT_REVOKED,
	    REASON_REMOVE_FROM_CRL, 1, NULL), STORE_INVALID);
	assert_int_equal(set_status(f, 200, 3, 0, 1, NULL), STORE_INVALID);
	assert_int_equal(set_status(f, 999, CERT_HOLD, 0, 1, NULL),
	    STORE_NOTFOUND);

	/* events: GOOD row 2 changes, HOLD row 3 setups + 2 changes,
	 * REVOKED row 3 setups */
	assert_int_equal(expect_seq, 10);
	memset(&ri, 0, sizeof(ri));
	ri.from = 0;
	assert_int_equal(store_read(f->s, tx_revs, &ri), STORE_OK);
	assert_int_equal(ri.last, 10);
	assert_int_equal(ri.l.n, 10);
	for (size_t i = 0; i < ri.l.n; i++)
		assert_int_equal(ri.l.ev[i].seq, i + 1);
	/* seq 1: cert 102 GOOD->HOLD (reason forced to hold) */
	assert_int_equal(ri.l.ev[0].serial[15], 102);
	assert_int_equal(ri.l.ev[0].status, CERT_HOLD);
	assert_int_equal(ri.l.ev[0].reason, REASON_CERTIFICATE_HOLD);
	assert_int_equal(ri.l.ev[0].when, 3000);
	assert_int_equal(ri.l.ev[0].invalidity, 2990);
	/* seq 2: cert 103 GOOD->REVOKED superseded */
	assert_int_equal(ri.l.ev[1].serial[15], 103);
	assert_int_equal(ri.l.ev[1].status, CERT_REVOKED);
	assert_int_equal(ri.l.ev[1].reason, REASON_SUPERSEDED);
	/* seq 3: cert 104 put on hold; seq 4: released */
	assert_int_equal(ri.l.ev[2].serial[15], 104);
	assert_int_equal(ri.l.ev[2].status, CERT_HOLD);
	assert_int_equal(ri.l.ev[2].when, 2000);
	assert_int_equal(ri.l.ev[3].serial[15], 104);
	assert_int_equal(ri.l.ev[3].status, CERT_GOOD);
	assert_int_equal(ri.l.ev[3].reason, REASON_REMOVE_FROM_CRL);
	assert_int_equal(ri.l.ev[3].invalidity, 0);
	/* from_seq and stopping */
	memset(&ri, 0, sizeof(ri));
	ri.from = 4;
	ri.l.stop_after = 2;
	assert_int_equal(store_read(f->s, tx_revs, &ri), STORE_OK);
	assert_int_equal(ri.l.n, 2);
	assert_int_equal(ri.l.ev[0].seq, 4);
	assert_int_equal(ri.l.ev[1].seq, 5);
}

struct link_arg {
	uint8_t	a[STORE_SERIAL_LEN], b[STORE_SERIAL_LEN];
};

static enum store_rc
tx_link(struct store_txn *t, void *arg)
{
	struct link_arg *l = arg;

	return store_cert_link(t, l->a, l->b);
}

static enum store_rc
tx_floor(struct store_txn *t, void *arg)
{
	return store_meta_set_u64(t, "rev_seq_floor", *(uint64_t *)arg);
}

/* After an accepted restore the lost sequence numbers are not reused. */
static void
test_rev_floor(void **state)
{
	struct fx *f = *state;
	struct rev_iter_arg ri;
	uint64_t seq, fl = 100;

	open_new(f);
	assert_int_equal(add_cert(f, 1, der1, sizeof(der1)), STORE_OK);
	assert_int_equal(add_cert(f, 2, der1, sizeof(der1)), STORE_OK);
	assert_int_equal(set_status(f, 1, CERT_HOLD, 0, 2000, &seq), STORE_OK);
	assert_int_equal(seq, 1);
	assert_int_equal(store_write(f->s, tx_floor, &fl), STORE_OK);
	memset(&ri, 0, sizeof(ri));
	assert_int_equal(store_read(f->s, tx_revs, &ri), STORE_OK);
	assert_int_equal(ri.last, 100);		/* the floor */
	assert_int_equal(set_status(f, 2, CERT_REVOKED, REASON_SUPERSEDED,
	    3000, &seq), STORE_OK);
	assert_int_equal(seq, 101);
	memset(&ri, 0, sizeof(ri));
	ri.from = 2;
	assert_int_equal(store_read(f->s, tx_revs, &ri), STORE_OK);
	assert_int_equal(ri.last, 101);
	assert_int_equal(ri.l.n, 1);		/* the gap is not an event */
	assert_int_equal(ri.l.ev[0].seq, 101);
}

static void
test_link(void **state)
{
	struct fx *f = *state;
	struct link_arg l;
	struct get_arg g;

	open_new(f);
	assert_int_equal(add_cert(f, 1, der1, sizeof(der1)), STORE_OK);
	assert_int_equal(add_cert(f, 2, der1, sizeof(der1)), STORE_OK);
	assert_int_equal(add_cert(f, 3, der1, sizeof(der1)), STORE_OK);
	mkserial(l.a, 1);
	mkserial(l.b, 2);
	assert_int_equal(store_write(f->s, tx_link, &l), STORE_OK);
	assert_int_equal(get_cert(f, 1, &g), STORE_OK);
	assert_memory_equal(g.rec.replaced_by, l.b, STORE_SERIAL_LEN);
	assert_true(serial_is_zero(g.rec.replaces));
	assert_int_equal(g.rec.der_len, sizeof(der1));
	cert_rec_cleanup(&g.rec);
	assert_int_equal(get_cert(f, 2, &g), STORE_OK);
	assert_memory_equal(g.rec.replaces, l.a, STORE_SERIAL_LEN);
	assert_true(serial_is_zero(g.rec.replaced_by));
	cert_rec_cleanup(&g.rec);
	/* the same link again is fine; another replacement is not */
	assert_int_equal(store_write(f->s, tx_link, &l), STORE_OK);
	mkserial(l.b, 3);
	assert_int_equal(store_write(f->s, tx_link, &l), STORE_INVALID);
	mkserial(l.b, 1);
	assert_int_equal(store_write(f->s, tx_link, &l), STORE_INVALID);
	mkserial(l.b, 9);
	assert_int_equal(store_write(f->s, tx_link, &l), STORE_NOTFOUND);
	/* a refused link left cert 3 untouched */
	assert_int_equal(get_cert(f, 3, &g), STORE_OK);
	assert_true(serial_is_zero(g.rec.replaces));
	cert_rec_cleanup(&g.rec);
}

struct iter_arg {
	unsigned int	seen[16];
	size_t		n;
	size_t		stop_after;
};

static int
collect_cert(const struct cert_rec *c, void *arg)
{
	struct iter_arg *a = arg;

	assert_int_equal(c->der_len, sizeof(der1));
	assert_memory_equal(c->der, der1, sizeof(der1));
	a->seen[a->n++] = be32_get(c->serial + 12);
	return a->stop_after == 0 || a->n < a->stop_after;
}

static enum store_rc
tx_iter(struct store_txn *t, void *arg)
{
	return store_cert_iter(t, collect_cert, arg);
}

static void
test_iter(void **state)
{
	struct fx *f = *state;
	static const unsigned int order[] = { 7, 3, 300, 1, 65536 };
	struct iter_arg a;
	size_t i;

	open_new(f);
	memset(&a, 0, sizeof(a));
	assert_int_equal(store_read(f->s, tx_iter, &a), STORE_OK);
	assert_int_equal(a.n, 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(add_cert(f, order[i], der1, sizeof(der1)),
		    STORE_OK);
	assert_int_equal(store_read(f->s, tx_iter, &a), STORE_OK);
	assert_int_equal(a.n, 5);
	assert_int_equal(a.seen[0], 1);
	assert_int_equal(a.seen[1], 3);
	assert_int_equal(a.seen[2], 7);
	assert_int_equal(a.seen[3], 300);
	assert_int_equal(a.seen[4], 65536);
	memset(&a, 0, sizeof(a));
	a.stop_after = 2;
	assert_int_equal(store_read(f->s, tx_iter, &a), STORE_OK);
	assert_int_equal(a.n, 2);
}

struct acct_arg {
	struct account_rec	a;
	int			create_only;
	char			names[8][STORE_NAME_MAX + 1];
	size_t			n;
};

static enum store_rc
tx_acct_put(struct store_txn *t, void *arg)
{
	struct acct_arg *x = arg;

	return store_account_put(t, &x->a, x->create_only);
}

static enum store_rc
tx_acct_get(struct store_txn *t, void *arg)
{
	struct acct_arg *x = arg;
	char name[STORE_NAME_MAX + 1];

	memcpy(name, x->a.name, sizeof(name));
	return store_account_get(t, name, &x->a);
}

static int
collect_acct(const struct account_rec *a, void *arg)
{
	struct acct_arg *x = arg;

	assert_int_equal(a->totp_sealed_len, 20);
	memcpy(x->names[x->n++], a->name, sizeof(a->name));
	return 1;
}

static enum store_rc
tx_acct_iter(struct store_txn *t, void *arg)
{
	return store_account_iter(t, collect_acct, arg);
}

static void
fill_acct(struct account_rec *a, const char *name, uint32_t failed)
{
	size_t i;

	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->pwhash, sizeof(a->pwhash),
	    "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA");
	for (i = 0; i < 20; i++)
		a->totp_sealed[i] = (uint8_t)(0xa0 + i);
	a->totp_sealed_len = 20;
	a->failed = failed;
	a->locked_until = -5;
	a->last_totp_step = 55555555;
	a->created = 1700000000;
	snprintf(a->subject, sizeof(a->subject), "CN=%s,O=Example", name);
}

static void
test_accounts(void **state)
{
	struct fx *f = *state;
	struct acct_arg x;
	struct account_rec want;

	open_new(f);
	memset(&x, 0, sizeof(x));
	fill_acct(&x.a, "bob", 2);
	want = x.a;
	x.create_only = 1;
	assert_int_equal(store_write(f->s, tx_acct_put, &x), STORE_OK);
	assert_int_equal(store_write(f->s, tx_acct_put, &x), STORE_EXISTS);
	memset(&x.a, 0, sizeof(x.a));
	snprintf(x.a.name, sizeof(x.a.name), "bob");
	assert_int_equal(store_read(f->s, tx_acct_get, &x), STORE_OK);
	assert_string_equal(x.a.name, "bob");
	assert_string_equal(x.a.pwhash, want.pwhash);
	assert_int_equal(x.a.totp_sealed_len, 20);
	assert_memory_equal(x.a.totp_sealed, want.totp_sealed, 20);
	assert_int_equal(x.a.totp_clear, 0);
	assert_int_equal(x.a.failed, 2);
	assert_int_equal(x.a.locked_until, -5);
	assert_int_equal(x.a.last_totp_step, 55555555);
	assert_int_equal(x.a.created, 1700000000);
	assert_string_equal(x.a.subject, "CN=bob,O=Example");
	/* replace (create_only = 0) */
	x.a.failed = 3;
	x.create_only = 0;
	assert_int_equal(store_write(f->s, tx_acct_put, &x), STORE_OK);
	memset(&x.a, 0, sizeof(x.a));
	snprintf(x.a.name, sizeof(x.a.name), "bob");
	assert_int_equal(store_read(f->s, tx_acct_get, &x), STORE_OK);
	assert_int_equal(x.a.failed, 3);
	account_rec_wipe(&x.a);
	assert_int_equal(x.a.totp_sealed_len, 0);
	assert_int_equal(x.a.totp_sealed[0], 0);
	assert_int_equal(x.a.pwhash[0], '\0');
	/* missing; invalid name */
	snprintf(x.a.name, sizeof(x.a.name), "nobody");
	assert_int_equal(store_read(f->s, tx_acct_get, &x), STORE_NOTFOUND);
	x.a.name[0] = '\0';
	assert_int_equal(store_read(f->s, tx_acct_get, &x), STORE_INVALID);
	fill_acct(&x.a, "", 0);
	assert_int_equal(store_write(f->s, tx_acct_put, &x), STORE_INVALID);
	/* iteration in name order */
	fill_acct(&x.a, "alice", 0);
	assert_int_equal(store_write(f->s, tx_acct_put, &x), STORE_OK);
	fill_acct(&x.a, "carol", 0);
	assert_int_equal(store_write(f->s, tx_acct_put, &x), STORE_OK);
	x.n = 0;
	assert_int_equal(store_read(f->s, tx_acct_iter, &x), STORE_OK);
	assert_int_equal(x.n, 3);
	assert_string_equal(x.names[0], "alice");
	assert_string_equal(x.names[1], "bob");
	assert_string_equal(x.names[2], "carol");
}

struct req_arg {
	uint64_t		ids[3];
	struct request_rec	q;
	uint64_t		seen[4];
	size_t			n;
};

static enum store_rc
tx_req_ids(struct store_txn *t, void *arg)
{
	struct req_arg *r = arg;
	enum store_rc rc;
	int i;

	for (i = 0; i < 3; i++)
		if ((rc = store_request_next_id(t, &r->ids[i])) != STORE_OK)
			return rc;
	return STORE_OK;
}

static enum store_rc
tx_req_put(struct store_txn *t, void *arg)
{
	return store_request_put(t, &((struct req_arg *)arg)->q);
}

static enum store_rc
tx_req_get(struct store_txn *t, void *arg)
{
	struct req_arg *r = arg;

	return store_request_get(t, r->q.id, &r->q);
}

static int
collect_req(const struct request_rec *q, void *arg)
{
	struct req_arg *r = arg;

	r->seen[r->n++] = q->id;
	return 1;
}

static enum store_rc
tx_req_iter(struct store_txn *t, void *arg)
{
	return store_request_iter(t, collect_req, arg);
}

static void
test_requests(void **state)
{
	struct fx *f = *state;
	struct req_arg r;
	uint8_t csr[1500];
	size_t i;

	for (i = 0; i < sizeof(csr); i++)
		csr[i] = (uint8_t)(i ^ 0x5a);
	open_new(f);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_write(f->s, tx_req_ids, &r), STORE_OK);
	assert_int_equal(r.ids[0], 1);
	assert_int_equal(r.ids[1], 2);
	assert_int_equal(r.ids[2], 3);
	assert_int_equal(store_write(f->s, tx_req_ids, &r), STORE_OK);
	assert_int_equal(r.ids[0], 4);

	r.q.id = 2;
	r.q.state = REQ_PENDING;
	r.q.reason = REQREASON_COMPROMISED;
	r.q.held = 1;
	snprintf(r.q.account, sizeof(r.q.account), "bob");
	mkserial(r.q.lost_serial, 77);
	memset(r.q.token_hash, 0xcc, sizeof(r.q.token_hash));
	r.q.created = 1700000001;
	snprintf(r.q.note, sizeof(r.q.note), "laptop stolen at the station");
	r.q.csr = csr;
	r.q.csr_len = sizeof(csr);
	assert_int_equal(store_write(f->s, tx_req_put, &r), STORE_OK);
	r.q.id = 1;
	r.q.state = REQ_ISSUED;
	r.q.csr = NULL;
	r.q.csr_len = 0;
	mkserial(r.q.new_serial, 78);
	assert_int_equal(store_write(f->s, tx_req_put, &r), STORE_OK);
	r.q.id = 0;
	assert_int_equal(store_write(f->s, tx_req_put, &r), STORE_INVALID);
	r.q.id = 1;
	r.q.state = 9;
	assert_int_equal(store_write(f->s, tx_req_put, &r), STORE_INVALID);

	memset(&r.q, 0, sizeof(r.q));
	r.q.id = 2;
	assert_int_equal(store_read(f->s, tx_req_get, &r), STORE_OK);
	assert_int_equal(r.q.id, 2);
	assert_int_equal(r.q.state, REQ_PENDING);
	assert_int_equal(r.q.reason, REQREASON_COMPROMISED);
	assert_int_equal(r.q.held, 1);
	assert_string_equal(r.q.account, "bob");
	assert_int_equal(r.q.lost_serial[15], 77);
	assert_true(serial_is_zero(r.q.new_serial));
	assert_int_equal(r.q.token_hash[31], 0xcc);
	assert_int_equal(r.q.created, 1700000001);
	assert_string_equal(r.q.note, "laptop stolen at the station");
	assert_string_equal(r.q.why, "");
	assert_int_equal(r.q.csr_len, sizeof(csr));
	assert_memory_equal(r.q.csr, csr, sizeof(csr));
	request_rec_cleanup(&r.q);
	assert_null(r.q.csr);
	r.q.id = 1;
	assert_int_equal(store_read(f->s, tx_req_get, &r), STORE_OK);
	assert_int_equal(r.q.state, REQ_ISSUED);
	assert_int_equal(r.q.new_serial[15], 78);
	assert_int_equal(r.q.csr_len, 0);
	request_rec_cleanup(&r.q);
	r.q.id = 3;
	assert_int_equal(store_read(f->s, tx_req_get, &r), STORE_NOTFOUND);
	r.n = 0;
	assert_int_equal(store_read(f->s, tx_req_iter, &r), STORE_OK);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.seen[0], 1);
	assert_int_equal(r.seen[1], 2);
}

struct audit_arg {
	uint64_t	count, bad, seq;
	char		why[256];
	struct audit_rec recs[8];
	size_t		n;
};

static enum store_rc
tx_audit_add(struct store_txn *t, void *arg)
{
	struct audit_arg *a = arg;
	char details[64];
	enum store_rc rc;
	int i;

	for (i = 1; i <= 5; i++) {
		snprintf(details, sizeof(details), "serial=%d reason=lost", i);
		rc = store_audit_append(t, "admin", "revoke", "CN=bob",
		    details, &a->seq);
		if (rc != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

static enum store_rc
tx_audit_verify(struct store_txn *t, void *arg)
{
	struct audit_arg *a = arg;

	return store_audit_verify(t, &a->count, &a->bad, a->why,
	    sizeof(a->why));
}

static int
collect_audit(const struct audit_rec *r, void *arg)
{
	struct audit_arg *a = arg;

	a->recs[a->n++] = *r;
	return 1;
}

static enum store_rc
tx_audit_iter(struct store_txn *t, void *arg)
{
	return store_audit_iter(t, 2, collect_audit, arg);
}

static enum store_rc
verify(struct fx *f, struct audit_arg *a)
{
	memset(a, 0, sizeof(*a));
	return store_read(f->s, tx_audit_verify, a);
}

static void
audit_setup(struct fx *f)
{
	struct audit_arg a;

	open_new(f);
	assert_int_equal(verify(f, &a), STORE_OK);
	assert_int_equal(a.count, 0);
	assert_int_equal(store_write(f->s, tx_audit_add, &a), STORE_OK);
	assert_int_equal(a.seq, 5);
	assert_int_equal(verify(f, &a), STORE_OK);
	assert_int_equal(a.count, 5);
	assert_int_equal(a.bad, 0);
	assert_string_equal(a.why, "");
	store_close(f->s);
	f->s = NULL;
}

static void
test_audit_ok(void **state)
{
	struct fx *f = *state;
	struct audit_arg a;
	uint8_t zero[STORE_HASH_LEN] = { 0 };

	audit_setup(f);
	reopen(f);
	memset(&a, 0, sizeof(a));
	assert_int_equal(store_read(f->s, tx_audit_iter, &a), STORE_OK);
	assert_int_equal(a.n, 4);
	assert_int_equal(a.recs[0].seq, 2);
	assert_string_equal(a.recs[0].actor, "admin");
	assert_string_equal(a.recs[0].action, "revoke");
	assert_string_equal(a.recs[0].subject, "CN=bob");
	assert_string_equal(a.recs[0].details, "serial=2 reason=lost");
	assert_true(a.recs[0].when > 1600000000);
	assert_memory_equal(a.recs[1].prev, a.recs[0].hash, STORE_HASH_LEN);
	assert_memory_not_equal(a.recs[0].hash, zero, STORE_HASH_LEN);
	/* the hash is reproducible from the fields */
	uint8_t h[STORE_HASH_LEN];
	assert_true(store_audit_hash(h, &a.recs[2]));
	assert_memory_equal(h, a.recs[2].hash, STORE_HASH_LEN);
}

static void
tamper_details(struct fx *f, uint64_t seq)
{
	struct raw r;
	struct audit_rec a;
	struct wb b;
	uint8_t key[8], *v;
	size_t vlen;

	be64_put(key, seq);
	raw_open(&r, f->dir, "audit");
	v = raw_get(&r, key, 8, &vlen);
	assert_true(store_rec_audit_decode(&a, seq, v, vlen));
	free(v);
	snprintf(a.details, sizeof(a.details), "serial=99 reason=lost");
	wb_init(&b);
	assert_true(store_rec_audit_encode(&b, &a));
	raw_put(&r, key, 8, b.data, b.len);
	wb_cleanup(&b);
	raw_close(&r);
}

static void
test_audit_tamper(void **state)
{
	struct fx *f = *state;
	struct audit_arg a;

	audit_setup(f);
	tamper_details(f, 3);
	reopen(f);
	assert_int_equal(verify(f, &a), STORE_CORRUPT);
	assert_int_equal(a.bad, 3);
	assert_int_equal(a.count, 2);
	assert_string_equal(a.why,
	    "audit record 3: hash does not match its content");
}

static void
test_audit_delete(void **state)
{
	struct fx *f = *state;
	struct audit_arg a;
	struct raw r;
	uint8_t key[8];

	audit_setup(f);
	be64_put(key, 3);
	raw_open(&r, f->dir, "audit");
	raw_del(&r, key, 8);
	raw_close(&r);
	reopen(f);
	assert_int_equal(verify(f, &a), STORE_CORRUPT);
	assert_int_equal(a.bad, 3);
	assert_int_equal(a.count, 2);
	assert_string_equal(a.why,
	    "audit record 3 is missing (the next record is 4)");

	/* removing the last record is caught by the head */
	store_close(f->s);
	f->s = NULL;
	raw_open(&r, f->dir, "audit");
	for (uint64_t s = 4; s <= 5; s++) {
		be64_put(key, s);
		raw_del(&r, key, 8);
	}
	raw_close(&r);
	reopen(f);
	assert_int_equal(verify(f, &a), STORE_CORRUPT);
	assert_int_equal(a.count, 2);
	assert_int_equal(a.bad, 3);
	assert_non_null(strstr(a.why, "head names record 5"));
}

static void
test_audit_swap(void **state)
{
	struct fx *f = *state;
	struct audit_arg a;
	struct raw r;
	uint8_t k2[8], k3[8], *v2, *v3;
	size_t l2, l3;

	audit_setup(f);
	be64_put(k2, 2);
	be64_put(k3, 3);
	raw_open(&r, f->dir, "audit");
	v2 = raw_get(&r, k2, 8, &l2);
	v3 = raw_get(&r, k3, 8, &l3);
	raw_put(&r, k2, 8, v3, l3);
	raw_put(&r, k3, 8, v2, l2);
	free(v2);
	free(v3);
	raw_close(&r);
	reopen(f);
	assert_int_equal(verify(f, &a), STORE_CORRUPT);
	assert_int_equal(a.bad, 2);
	assert_int_equal(a.count, 1);
	assert_string_equal(a.why, "audit record 2: previous hash does not "
	    "match record 1 (records removed or reordered)");
}

struct meta_arg {
	uint64_t	a, b;
};

static enum store_rc
tx_meta_set(struct store_txn *t, void *arg)
{
	enum store_rc rc;

	(void)arg;
	if ((rc = store_meta_set_u64(t, "crl_number", 41)) != STORE_OK)
		return rc;
	if ((rc = store_meta_set_u64(t, "crl_number", 42)) != STORE_OK)
		return rc;
	if (store_meta_set_u64(t, "audit_head", 1) != STORE_INVALID ||
	    store_meta_set_u64(t, "", 1) != STORE_INVALID)
		return STORE_ABORT;
	return store_meta_set_u64(t, "big", UINT64_MAX);
}

static enum store_rc
tx_meta_get(struct store_txn *t, void *arg)
{
	struct meta_arg *m = arg;
	enum store_rc rc;

	if ((rc = store_meta_get_u64(t, "crl_number", &m->a)) != STORE_OK)
		return rc;
	return store_meta_get_u64(t, "missing", &m->b);
}

static enum store_rc
tx_meta_big(struct store_txn *t, void *arg)
{
	return store_meta_get_u64(t, "big", arg);
}

static enum store_rc
tx_abort(struct store_txn *t, void *arg)
{
	enum store_rc rc;

	(void)arg;
	if ((rc = store_meta_set_u64(t, "crl_number", 1000)) != STORE_OK)
		return rc;
	return STORE_ABORT;
}

static void
test_meta(void **state)
{
	struct fx *f = *state;
	struct meta_arg m = { 7, 7 };
	uint64_t big = 0;

	open_new(f);
	assert_int_equal(store_write(f->s, tx_meta_set, NULL), STORE_OK);
	assert_int_equal(store_read(f->s, tx_meta_get, &m), STORE_OK);
	assert_int_equal(m.a, 42);
	assert_int_equal(m.b, 0);
	assert_int_equal(store_read(f->s, tx_meta_big, &big), STORE_OK);
	assert_true(big == UINT64_MAX);
	/* an aborted write leaves nothing behind */
	assert_int_equal(store_write(f->s, tx_abort, NULL), STORE_ABORT);
	assert_int_equal(store_read(f->s, tx_meta_get, &m), STORE_OK);
	assert_int_equal(m.a, 42);
	/* a write inside a read transaction is refused */
	assert_int_equal(store_read(f->s, tx_meta_set, NULL), STORE_INVALID);
}

static void
test_exclusive(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .create = 1, .exclusive = 1 };
	struct store *s2 = NULL;

	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
	assert_int_equal(store_open(&s2, f->dir, &o), STORE_LOCKED);
	assert_null(s2);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(&s2, f->dir, &o), STORE_OK);
	store_close(s2);
}

static void
test_map_growth(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .create = 1, .map_size = 1 << 20 };
	struct store_info info;
	struct get_arg g;
	uint8_t der[2048];
	unsigned int i;

	memset(der, 0xab, sizeof(der));
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
	for (i = 1; i <= 1500; i++) {
		be32_put(der, i);
		assert_int_equal(add_cert(f, i, der, sizeof(der)), STORE_OK);
	}
	assert_int_equal(store_info(f->s, &info), STORE_OK);
	assert_int_equal(info.num_certs, 1500);
	assert_int_equal(info.num_good, 1500);
	assert_true(info.map_size > (3u << 20));
	assert_true(info.used_bytes > (3u << 20));
	assert_true(info.used_bytes <= info.map_size);
	assert_int_equal(get_cert(f, 1234, &g), STORE_OK);
	assert_int_equal(be32_get(g.rec.der), 1234);
	cert_rec_cleanup(&g.rec);
	/* a reopen with the small initial size adopts the file's size */
	store_close(f->s);
	f->s = NULL;
	o.create = 0;
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
	assert_int_equal(get_cert(f, 1500, &g), STORE_OK);
	cert_rec_cleanup(&g.rec);
	assert_int_equal(add_cert(f, 1501, der, sizeof(der)), STORE_OK);
}

static void
test_no_grow(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .create = 1, .map_size = 1 << 20,
	    .no_grow = 1 };
	struct store_info info;
	struct get_arg g;
	uint8_t der[2048];
	unsigned int i, ok = 0;
	enum store_rc rc = STORE_OK;

	memset(der, 0xcd, sizeof(der));
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
	for (i = 1; i <= 1000 && rc == STORE_OK; i++) {
		be32_put(der, i);
		rc = add_cert(f, i, der, sizeof(der));
		if (rc == STORE_OK)
			ok++;
	}
	assert_int_equal(rc, STORE_FULL);
	assert_true(ok > 100);
	assert_int_equal(store_info(f->s, &info), STORE_OK);
	assert_int_equal(info.num_certs, ok);
	assert_int_equal(info.map_size, 1 << 20);
	for (i = 1; i <= ok; i++) {
		assert_int_equal(get_cert(f, i, &g), STORE_OK);
		assert_int_equal(be32_get(g.rec.der), i);
		cert_rec_cleanup(&g.rec);
	}
	assert_int_equal(get_cert(f, ok + 1, &g), STORE_NOTFOUND);
	/* map_max caps growth the same way */
	store_close(f->s);
	f->s = NULL;
	o.no_grow = 0;
	o.create = 0;
	o.map_max = 1 << 20;
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
	assert_int_equal(add_cert(f, 5000, der, sizeof(der)), STORE_FULL);
	o.map_max = 2 << 20;
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
	assert_int_equal(add_cert(f, 5000, der, sizeof(der)), STORE_OK);
}

static void
test_visibility(void **state)
{
	struct fx *f = *state;
	struct store_reader *r;
	struct store_txn *t;
	struct cert_state st;
	uint8_t serial[STORE_SERIAL_LEN];

	open_new(f);
	mkserial(serial, 42);
	assert_int_equal(add_cert(f, 42, der1, sizeof(der1)), STORE_OK);
	r = store_reader_new(f->s);
	assert_non_null(r);
	assert_non_null(t = store_reader_begin(r));
	assert_int_equal(store_cert_state(t, serial, &st), STORE_OK);
	assert_int_equal(st.status, CERT_GOOD);
	assert_null(store_reader_begin(r));	/* already begun */
	store_reader_end(r);
	assert_int_equal(set_status(f, 42, CERT_REVOKED,
	    REASON_KEY_COMPROMISE, 5000, NULL), STORE_OK);
	/* the reused reader sees the commit made after its last use */
	assert_non_null(t = store_reader_begin(r));
	assert_int_equal(store_cert_state(t, serial, &st), STORE_OK);
	assert_int_equal(st.status, CERT_REVOKED);
	assert_int_equal(st.reason, REASON_KEY_COMPROMISE);
	assert_int_equal(st.revoked_at, 5000);
	store_reader_end(r);
	store_reader_free(r);
	store_reader_free(NULL);
}

static void
test_backup(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { 0 };
	struct store *s2 = NULL;
	struct get_arg g;
	struct audit_arg a;
	char path[256], dir2[128];
	int fd;

	open_new(f);
	assert_int_equal(add_cert(f, 9, der1, sizeof(der1)), STORE_OK);
	assert_int_equal(set_status(f, 9, CERT_HOLD, 0, 77, NULL), STORE_OK);
	assert_int_equal(store_write(f->s, tx_audit_add, &a), STORE_OK);
	snprintf(dir2, sizeof(dir2), "%s/restored", f->dir);
	assert_int_equal(mkdir(dir2, 0700), 0);
	snprintf(path, sizeof(path), "%s/data.mdb", dir2);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(store_backup_fd(f->s, fd), STORE_OK);
	close(fd);
	/* a change after the backup is not in it */
	assert_int_equal(add_cert(f, 10, der1, sizeof(der1)), STORE_OK);

	assert_int_equal(store_open(&s2, dir2, &o), STORE_OK);
	memset(&g, 0, sizeof(g));
	mkserial(g.serial, 9);
	assert_int_equal(store_read(s2, tx_get, &g), STORE_OK);
	assert_int_equal(g.rec.st.status, CERT_HOLD);
	assert_int_equal(g.rec.st.revoked_at, 77);
	assert_memory_equal(g.rec.der, der1, sizeof(der1));
	cert_rec_cleanup(&g.rec);
	memset(&g, 0, sizeof(g));
	mkserial(g.serial, 10);
	assert_int_equal(store_read(s2, tx_get, &g), STORE_NOTFOUND);
	memset(&a, 0, sizeof(a));
	assert_int_equal(store_read(s2, tx_audit_verify, &a), STORE_OK);
	assert_int_equal(a.count, 5);
	store_close(s2);
}

static enum store_rc
tx_state_only(struct store_txn *t, void *arg)
{
	struct get_arg *a = arg;

	return store_cert_state(t, a->serial, &a->st);
}

static void
test_corrupt(void **state)
{
	struct fx *f = *state;
	static const uint8_t junk[] = { 1, 0, 0, 0 };
	struct raw r;
	struct get_arg g;
	struct iter_arg it;
	struct store_info info;
	uint8_t serial[STORE_SERIAL_LEN], *v;
	size_t vlen;

	open_new(f);
	assert_int_equal(add_cert(f, 1, der1, sizeof(der1)), STORE_OK);
	assert_int_equal(add_cert(f, 2, der1, sizeof(der1)), STORE_OK);
	store_close(f->s);
	f->s = NULL;
	raw_open(&r, f->dir, "certs");
	mkserial(serial, 2);
	raw_put(&r, serial, sizeof(serial), junk, sizeof(junk));
	/* a record whose DER length runs past the end */
	mkserial(serial, 1);
	v = raw_get(&r, serial, sizeof(serial), &vlen);
	v[vlen - sizeof(der1) - 1] = 0x7f;
	raw_put(&r, serial, sizeof(serial), v, vlen);
	free(v);
	raw_close(&r);
	reopen(f);
	assert_int_equal(get_cert(f, 2, &g), STORE_CORRUPT);
	assert_int_equal(g.state_rc, STORE_CORRUPT);
	assert_null(g.rec.der);
	/* the fixed part of cert 1 is intact, the DER is not */
	memset(&g, 0, sizeof(g));
	mkserial(g.serial, 1);
	assert_int_equal(store_read(f->s, tx_state_only, &g), STORE_OK);
	assert_int_equal(get_cert(f, 1, &g), STORE_CORRUPT);
	memset(&it, 0, sizeof(it));
	assert_int_equal(store_read(f->s, tx_iter, &it), STORE_CORRUPT);
	assert_int_equal(store_info(f->s, &info), STORE_CORRUPT);
	/* a bad status change refuses the corrupt record */
	assert_int_equal(set_status(f, 2, CERT_HOLD, 0, 1, NULL),
	    STORE_CORRUPT);
}

static void
test_schema_newer(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .create = 1 };
	struct raw r;
	uint8_t v[8];

	open_new(f);
	store_close(f->s);
	f->s = NULL;
	raw_open(&r, f->dir, "meta");
	be64_put(v, STORE_SCHEMA_VERSION + 1);
	raw_put(&r, "schema_version", strlen("schema_version"), v, 8);
	raw_close(&r);
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_VERSION);
	assert_null(f->s);
	/* a missing version is refused too, even with create */
	raw_open(&r, f->dir, "meta");
	raw_del(&r, "schema_version", strlen("schema_version"));
	raw_put(&r, "crl_number", strlen("crl_number"), v, 8);
	raw_close(&r);
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_VERSION);
	assert_null(f->s);
}

static void
test_info(void **state)
{
	struct fx *f = *state;
	struct store_info info;
	struct acct_arg x;
	struct req_arg r;

	open_new(f);
	assert_int_equal(add_cert(f, 1, der1, sizeof(der1)), STORE_OK);
	assert_int_equal(add_cert(f, 2, der1, sizeof(der1)), STORE_OK);
	assert_int_equal(add_cert(f, 3, der1, sizeof(der1)), STORE_OK);
	assert_int_equal(set_status(f, 2, CERT_HOLD, 0, 5, NULL), STORE_OK);
	assert_int_equal(set_status(f, 3, CERT_REVOKED, 1, 5, NULL), STORE_OK);
	memset(&x, 0, sizeof(x));
	fill_acct(&x.a, "bob", 0);
	assert_int_equal(store_write(f->s, tx_acct_put, &x), STORE_OK);
	memset(&r, 0, sizeof(r));
	r.q.id = 1;
	assert_int_equal(store_write(f->s, tx_req_put, &r), STORE_OK);
	r.q.id = 2;
	r.q.state = REQ_REJECTED;
	assert_int_equal(store_write(f->s, tx_req_put, &r), STORE_OK);
	assert_int_equal(store_info(f->s, &info), STORE_OK);
	assert_int_equal(info.num_certs, 3);
	assert_int_equal(info.num_good, 1);
	assert_int_equal(info.num_hold, 1);
	assert_int_equal(info.num_revoked, 1);
	assert_int_equal(info.num_accounts, 1);
	assert_int_equal(info.num_requests, 2);
	assert_int_equal(info.num_pending, 1);
	assert_int_equal(info.num_audit, 0);
	assert_int_equal(info.num_rev_events, 2);
	assert_int_equal(info.map_size, 64 << 20);
	assert_true(info.used_bytes >= 4096);
}

static void
test_read_only(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .read_only = 1 };
	struct get_arg g;

	open_new(f);
	assert_int_equal(add_cert(f, 4, der1, sizeof(der1)), STORE_OK);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
	assert_int_equal(get_cert(f, 4, &g), STORE_OK);
	cert_rec_cleanup(&g.rec);
	assert_int_equal(add_cert(f, 5, der1, sizeof(der1)), STORE_INVALID);
}

/* ---- the open_requests index ---- */

struct ix_arg {
	struct request_rec	 q;
	uint8_t			 serial[STORE_SERIAL_LEN];
	uint64_t		 id;
	uint64_t		 num_open;
	char			 why[256];
};

static enum store_rc
tx_ix_put(struct store_txn *t, void *arg)
{
	return store_request_put(t, &((struct ix_arg *)arg)->q);
}

static enum store_rc
tx_ix_find(struct store_txn *t, void *arg)
{
	struct ix_arg *x = arg;

	return store_request_open_find(t, x->serial, &x->id);
}

static enum store_rc
tx_ix_check(struct store_txn *t, void *arg)
{
	struct ix_arg *x = arg;

	return store_request_index_check(t, &x->num_open, x->why,
	    sizeof(x->why));
}

/* Writes request id in state for account's lost serial n. */
static enum store_rc
ix_put(struct fx *f, uint64_t id, uint8_t state, const char *account,
    unsigned int n)
{
	struct ix_arg x;

	memset(&x, 0, sizeof(x));
	x.q.id = id;
	x.q.state = state;
	snprintf(x.q.account, sizeof(x.q.account), "%s", account);
	mkserial(x.q.lost_serial, n);
	x.q.created = 1700000000 + (int64_t)id;
	return store_write(f->s, tx_ix_put, &x);
}

/* The open request for serial n (0: none); fails on other errors. */
static uint64_t
ix_find(struct fx *f, unsigned int n)
{
	struct ix_arg x;
	enum store_rc rc;

	memset(&x, 0, sizeof(x));
	mkserial(x.serial, n);
	rc = store_read(f->s, tx_ix_find, &x);
	if (rc == STORE_NOTFOUND) {
		assert_int_equal(x.id, 0);
		return 0;
	}
	assert_int_equal(rc, STORE_OK);
	return x.id;
}

static enum store_rc
ix_check(struct fx *f, struct ix_arg *x)
{
	memset(x, 0, sizeof(*x));
	return store_read(f->s, tx_ix_check, x);
}

static void
ix_check_ok(struct fx *f, uint64_t num_open)
{
	struct ix_arg x;

	assert_int_equal(ix_check(f, &x), STORE_OK);
	assert_int_equal(x.num_open, num_open);
	assert_string_equal(x.why, "");
}

static void
test_request_index(void **state)
{
	struct fx *f = *state;
	struct req_arg r;

	open_new(f);
	ix_check_ok(f, 0);
	assert_int_equal(ix_find(f, 10), 0);
	/* alice has two certificates, bob one: one open request each */
	assert_int_equal(ix_put(f, 1, REQ_PENDING, "alice", 10), STORE_OK);
	assert_int_equal(ix_put(f, 2, REQ_PENDING, "bob", 20), STORE_OK);
	assert_int_equal(ix_put(f, 3, REQ_PENDING, "alice", 11), STORE_OK);
	assert_int_equal(ix_find(f, 10), 1);
	assert_int_equal(ix_find(f, 20), 2);
	assert_int_equal(ix_find(f, 11), 3);
	assert_int_equal(ix_find(f, 12), 0);
	ix_check_ok(f, 3);
	/* a second open request for a serial is refused and not stored */
	assert_int_equal(ix_put(f, 4, REQ_PENDING, "alice", 10), STORE_EXISTS);
	memset(&r, 0, sizeof(r));
	r.q.id = 4;
	assert_int_equal(store_read(f->s, tx_req_get, &r), STORE_NOTFOUND);
	assert_int_equal(ix_find(f, 10), 1);
	/* rewriting an open request keeps its entry */
	assert_int_equal(ix_put(f, 1, REQ_PENDING, "alice", 10), STORE_OK);
	/* approved (not yet signed) is still open; issued is not */
	assert_int_equal(ix_put(f, 1, REQ_APPROVED, "alice", 10), STORE_OK);
	assert_int_equal(ix_find(f, 10), 1);
	ix_check_ok(f, 3);
	assert_int_equal(ix_put(f, 1, REQ_ISSUED, "alice", 10), STORE_OK);
	assert_int_equal(ix_find(f, 10), 0);
	assert_int_equal(ix_find(f, 11), 3);
	ix_check_ok(f, 2);
	/* rejected closes bob's */
	assert_int_equal(ix_put(f, 2, REQ_REJECTED, "bob", 20), STORE_OK);
	assert_int_equal(ix_find(f, 20), 0);
	ix_check_ok(f, 1);
	/* rewriting a closed request leaves the index alone */
	assert_int_equal(ix_put(f, 2, REQ_REJECTED, "bob", 20), STORE_OK);
	/* a closed serial takes a new request; a closed one cannot reopen
	 * over it */
	assert_int_equal(ix_put(f, 4, REQ_PENDING, "alice", 10), STORE_OK);
	assert_int_equal(ix_find(f, 10), 4);
	assert_int_equal(ix_put(f, 1, REQ_PENDING, "alice", 10), STORE_EXISTS);
	assert_int_equal(ix_find(f, 10), 4);
	ix_check_ok(f, 2);
	/* an invalid record changes nothing */
	assert_int_equal(ix_put(f, 4, 9, "alice", 10), STORE_INVALID);
	assert_int_equal(ix_find(f, 10), 4);
	/* the index survives a reopen */
	reopen(f);
	assert_int_equal(ix_find(f, 10), 4);
	assert_int_equal(ix_find(f, 11), 3);
	ix_check_ok(f, 2);
}

/* Turns the store into what the schema 1 program left: no index. */
static void
make_schema1(struct fx *f, int keep_stale_index)
{
	struct raw r;
	uint8_t v[8], serial[STORE_SERIAL_LEN];

	store_close(f->s);
	f->s = NULL;
	raw_open(&r, f->dir, "open_requests");
	if (keep_stale_index) {
		/* what a downgrade would leave: an entry that is wrong */
		mkserial(serial, 99);
		be64_put(v, 7);
		raw_put(&r, serial, sizeof(serial), v, sizeof(v));
	} else
		assert_int_equal(mdb_drop(r.txn, r.dbi, 1), 0);
	raw_close(&r);
	raw_open(&r, f->dir, "meta");
	be64_put(v, 1);
	raw_put(&r, "schema_version", strlen("schema_version"), v, 8);
	raw_close(&r);
}

/* A version 1 account record (clear secret), as schema 1..3 wrote it. */
static void
put_v1_account(struct raw *r, const char *name, const uint8_t *secret,
    size_t len)
{
	struct wb b;

	wb_init(&b);
	wb_u8(&b, 1);
	wb_u32(&b, 2);			/* failed */
	wb_u64(&b, 0);			/* locked_until */
	wb_u64(&b, 777);		/* last_totp_step */
	wb_u64(&b, 1700000000);		/* created */
	wb_u16(&b, 3);
	wb_put(&b, "$x$", 3);		/* pwhash */
	wb_u16(&b, (uint16_t)len);
	wb_put(&b, secret, len);
	wb_u16(&b, 7);
	wb_put(&b, "CN=test", 7);
	assert_true(wb_ok(&b));
	raw_put(r, name, strlen(name), b.data, b.len);
	wb_cleanup(&b);
}

/*
 * A schema 3 store with clear TOTP secrets: read-only it reads as it is
 * (totp_clear), for writing it needs the key, and with the key every
 * account is sealed in the opening transaction (schema 4).
 */
static void
test_totp_upgrade(void **state)
{
	struct fx *f = *state;
	struct store_opts ro = { .read_only = 1 }, nokey = { 0 };
	struct acct_arg x;
	struct raw r;
	uint8_t secret[20], v[8], out[STORE_TOTP_MAX], *raw;
	size_t i, rlen, olen;
	uint64_t ver = 0;

	for (i = 0; i < sizeof(secret); i++)
		secret[i] = (uint8_t)(0x30 + i);
	open_new(f);
	store_close(f->s);
	f->s = NULL;
	raw_open(&r, f->dir, "accounts");
	put_v1_account(&r, "alice", secret, sizeof(secret));
	put_v1_account(&r, "bob", secret, sizeof(secret));
	raw_close(&r);
	raw_open(&r, f->dir, "meta");
	be64_put(v, 3);
	raw_put(&r, "schema_version", strlen("schema_version"), v, 8);
	raw_close(&r);

	/* read-only: as it is */
	assert_int_equal(store_open(&f->s, f->dir, &ro), STORE_OK);
	memset(&x, 0, sizeof(x));
	snprintf(x.a.name, sizeof(x.a.name), "alice");
	assert_int_equal(store_read(f->s, tx_acct_get, &x), STORE_OK);
	assert_int_equal(x.a.totp_clear, 1);
	assert_int_equal(x.a.totp_sealed_len, 20);
	assert_int_equal(x.a.pw_changed, 1700000000);
	store_close(f->s);
	f->s = NULL;
	/* for writing, without the key: refused, nothing changed */
	assert_int_equal(store_open(&f->s, f->dir, &nokey), STORE_VERSION);
	raw_open(&r, f->dir, "meta");
	raw = raw_get(&r, "schema_version", strlen("schema_version"), &rlen);
	assert_int_equal(be64_get(raw), 3);
	free(raw);
	raw_close(&r);
	/* with the key: sealed */
	reopen(f);
	assert_int_equal(store_read(f->s, tx_schema, &ver), STORE_OK);
	assert_int_equal(ver, STORE_SCHEMA_VERSION);
	snprintf(x.a.name, sizeof(x.a.name), "bob");
	assert_int_equal(store_read(f->s, tx_acct_get, &x), STORE_OK);
	assert_int_equal(x.a.totp_clear, 0);
	assert_int_equal(x.a.totp_sealed_len, 20 + TOTPSEAL_OVERHEAD);
	assert_int_equal(x.a.failed, 2);
	assert_int_equal(x.a.last_totp_step, 777);
	assert_string_equal(x.a.subject, "CN=test");
	assert_true(totpseal_open(test_totp_key(), "bob", out, sizeof(out),
	    &olen, x.a.totp_sealed, x.a.totp_sealed_len));
	assert_int_equal(olen, 20);
	assert_memory_equal(out, secret, 20);
	account_rec_wipe(&x.a);
	store_close(f->s);
	f->s = NULL;
	/* the raw bytes: version 2, no clear secret anywhere */
	raw_open(&r, f->dir, "accounts");
	raw = raw_get(&r, "alice", 5, &rlen);
	assert_int_equal(raw[0], 2);
	assert_null(memmem(raw, rlen, secret, sizeof(secret)));
	free(raw);
	raw_close(&r);
}

static int
has_db(struct fx *f, const char *db)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, f->dir, MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	rc = mdb_dbi_open(txn, db, 0, &dbi);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc == 0;
}

static void
test_request_index_upgrade(void **state)
{
	struct fx *f = *state;
	struct store_opts ro = { .read_only = 1 };
	struct ix_arg x;
	uint64_t ver;

	open_new(f);
	assert_int_equal(ix_put(f, 1, REQ_ISSUED, "alice", 10), STORE_OK);
	assert_int_equal(ix_put(f, 2, REQ_PENDING, "alice", 10), STORE_OK);
	assert_int_equal(ix_put(f, 3, REQ_APPROVED, "bob", 20), STORE_OK);
	assert_int_equal(ix_put(f, 4, REQ_REJECTED, "bob", 21), STORE_OK);
	make_schema1(f, 0);
	assert_false(has_db(f, "open_requests"));

	/* read-only: no index, the lookup walks the requests */
	assert_int_equal(store_open(&f->s, f->dir, &ro), STORE_OK);
	assert_int_equal(ix_find(f, 10), 2);
	assert_int_equal(ix_find(f, 20), 3);
	assert_int_equal(ix_find(f, 21), 0);
	assert_int_equal(ix_check(f, &x), STORE_NOTFOUND);
	assert_non_null(strstr(x.why, "schema 1"));
	assert_int_equal(store_read(f->s, tx_schema, &ver), STORE_OK);
	assert_int_equal(ver, 1);
	store_close(f->s);
	f->s = NULL;
	assert_false(has_db(f, "open_requests"));

	/* writable: upgraded at open, in one transaction */
	reopen(f);
	assert_int_equal(store_read(f->s, tx_schema, &ver), STORE_OK);
	assert_int_equal(ver, STORE_SCHEMA_VERSION);
	assert_true(has_db(f, "open_requests"));
	ix_check_ok(f, 2);
	assert_int_equal(ix_find(f, 10), 2);
	assert_int_equal(ix_find(f, 20), 3);
	assert_int_equal(ix_find(f, 21), 0);
	assert_int_equal(ix_put(f, 5, REQ_PENDING, "alice", 10), STORE_EXISTS);
	assert_int_equal(ix_put(f, 3, REQ_ISSUED, "bob", 20), STORE_OK);
	ix_check_ok(f, 1);

	/* a schema 1 store with a leftover index gets it rebuilt */
	make_schema1(f, 1);
	reopen(f);
	ix_check_ok(f, 1);
	assert_int_equal(ix_find(f, 99), 0);
	assert_int_equal(ix_find(f, 10), 2);
}

/* Replaces (val != NULL) or deletes the index entry for serial n. */
static void
tamper_index(struct fx *f, unsigned int n, const void *val, size_t len)
{
	struct raw r;
	uint8_t serial[STORE_SERIAL_LEN];

	store_close(f->s);
	f->s = NULL;
	mkserial(serial, n);
	raw_open(&r, f->dir, "open_requests");
	if (val != NULL)
		raw_put(&r, serial, sizeof(serial), val, len);
	else
		raw_del(&r, serial, sizeof(serial));
	raw_close(&r);
	reopen(f);
}

static void
expect_bad(struct fx *f, const char *needle)
{
	struct ix_arg x;

	assert_int_equal(ix_check(f, &x), STORE_CORRUPT);
	if (strstr(x.why, needle) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", x.why, needle);
}

static void
test_request_index_check(void **state)
{
	struct fx *f = *state;
	uint8_t v[8];

	open_new(f);
	assert_int_equal(ix_put(f, 1, REQ_PENDING, "alice", 10), STORE_OK);
	assert_int_equal(ix_put(f, 2, REQ_PENDING, "bob", 20), STORE_OK);
	assert_int_equal(ix_put(f, 3, REQ_REJECTED, "bob", 21), STORE_OK);
	ix_check_ok(f, 2);
	/* an entry naming the wrong request */
	be64_put(v, 2);
	tamper_index(f, 10, v, sizeof(v));
	expect_bad(f, "the index names request 2");
	be64_put(v, 1);
	tamper_index(f, 10, v, sizeof(v));
	ix_check_ok(f, 2);
	/* an open request missing from the index */
	tamper_index(f, 20, NULL, 0);
	expect_bad(f, "request 2 (serial");
	expect_bad(f, "is not in the index");
	be64_put(v, 2);
	tamper_index(f, 20, v, sizeof(v));
	ix_check_ok(f, 2);
	/* an entry for a closed request */
	be64_put(v, 3);
	tamper_index(f, 21, v, sizeof(v));
	expect_bad(f, "request 3, which is closed");
	tamper_index(f, 21, NULL, 0);
	/* an entry naming a request that does not exist */
	be64_put(v, 9);
	tamper_index(f, 30, v, sizeof(v));
	expect_bad(f, "request 9, which does not exist");
	tamper_index(f, 30, NULL, 0);
	/* an entry that is not a u64 id: the check says so, a lookup
	 * refuses it */
	tamper_index(f, 10, v, 3);
	expect_bad(f, "is not a request id");
	{
		struct ix_arg x;

		memset(&x, 0, sizeof(x));
		mkserial(x.serial, 10);
		assert_int_equal(store_read(f->s, tx_ix_find, &x),
		    STORE_CORRUPT);
	}
	be64_put(v, 1);
	tamper_index(f, 10, v, sizeof(v));
	ix_check_ok(f, 2);
}

struct reader_thread {
	struct store	*s;
	unsigned int	 checked;
	int		 failed;
	atomic_int	*stop;
};

/* Reads cert 1 over and over through one reader while the map grows. */
static void *
reader_main(void *arg)
{
	struct reader_thread *rt = arg;
	struct store_reader *r;
	struct store_txn *t;
	struct cert_state st;
	uint8_t serial[STORE_SERIAL_LEN];

	mkserial(serial, 1);
	if ((r = store_reader_new(rt->s)) == NULL) {
		rt->failed = 1;
		return NULL;
	}
	while (!atomic_load(rt->stop)) {
		if ((t = store_reader_begin(r)) == NULL ||
		    store_cert_state(t, serial, &st) != STORE_OK ||
		    st.status != CERT_GOOD || st.not_before != 1000) {
			rt->failed = 1;
			if (t != NULL)
				store_reader_end(r);
			break;
		}
		store_reader_end(r);
		rt->checked++;
	}
	store_reader_free(r);
	return NULL;
}

static void
test_growth_with_readers(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .create = 1, .map_size = 256 * 1024 };
	struct reader_thread rt[2];
	pthread_t th[2];
	struct store_info info;
	atomic_int stop = 0;
	uint8_t der[2048];
	unsigned int i;

	memset(der, 0x11, sizeof(der));
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
	assert_int_equal(add_cert(f, 1, der, sizeof(der)), STORE_OK);
	for (i = 0; i < 2; i++) {
		memset(&rt[i], 0, sizeof(rt[i]));
		rt[i].s = f->s;
		rt[i].stop = &stop;
		assert_int_equal(pthread_create(&th[i], NULL, reader_main,
		    &rt[i]), 0);
	}
	for (i = 2; i <= 800; i++)
		assert_int_equal(add_cert(f, i, der, sizeof(der)), STORE_OK);
	atomic_store(&stop, 1);
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(rt[i].failed, 0);
	}
	assert_int_equal(store_info(f->s, &info), STORE_OK);
	assert_int_equal(info.num_certs, 800);
	assert_true(info.map_size >= (2u << 20));
}

/* Another process grows the map: this one adopts the new size. */
static void
test_resized_by_other(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .create = 1, .map_size = 256 * 1024 };
	struct store_info info;
	struct get_arg g;
	uint8_t der[2048];
	unsigned int i;
	pid_t pid;
	int status;

	memset(der, 0x22, sizeof(der));
	assert_int_equal(store_open(&f->s, f->dir, &o), STORE_OK);
	assert_int_equal(add_cert(f, 1, der, sizeof(der)), STORE_OK);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		struct fx child = *f;
		int ok = 1;

		child.s = NULL;
		if (store_open(&child.s, f->dir, &o) != STORE_OK)
			_exit(2);
		for (i = 2; i <= 600 && ok; i++)
			ok = add_cert(&child, i, der, sizeof(der)) == STORE_OK;
		store_close(child.s);
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* reads and writes here go on after the other process grew it */
	assert_int_equal(get_cert(f, 600, &g), STORE_OK);
	cert_rec_cleanup(&g.rec);
	assert_int_equal(add_cert(f, 601, der, sizeof(der)), STORE_OK);
	assert_int_equal(store_info(f->s, &info), STORE_OK);
	assert_int_equal(info.num_certs, 601);
	assert_true(info.map_size >= (1u << 20));
}

/* ---- bad_keys: the compromised-key index ---- */

/* A self-signed certificate for key, DER (malloc'd). */
static uint8_t *
bk_cert(EVP_PKEY *key, unsigned int n, size_t *out_len)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	uint8_t *der = NULL, *p;
	char cn[32];
	int len;

	assert_non_null(x);
	snprintf(cn, sizeof(cn), "bk%u", n);
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), (long)n));
	assert_true(X509_set_subject_name(x, name));
	assert_true(X509_set_issuer_name(x, name));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_true(X509_set_pubkey(x, key));
	assert_true(X509_sign(x, key, EVP_PKEY_is_a(key, "ED25519") ? NULL :
	    EVP_sha256()) > 0);
	len = i2d_X509(x, NULL);
	assert_true(len > 0);
	der = malloc((size_t)len);
	assert_non_null(der);
	p = der;
	assert_int_equal(i2d_X509(x, &p), len);
	*out_len = (size_t)len;
	X509_NAME_free(name);
	X509_free(x);
	return der;
}

static void
bk_add(struct fx *f, EVP_PKEY *key, unsigned int n)
{
	uint8_t *der;
	size_t len;

	der = bk_cert(key, n, &len);
	assert_int_equal(add_cert(f, n, der, len), STORE_OK);
	free(der);
}

struct bk_arg {
	uint8_t		hash[STORE_KEYHASH_LEN];
	struct bad_key	bk;
	uint64_t	entries;
	char		why[256];
};

static enum store_rc
tx_bk_get(struct store_txn *t, void *arg)
{
	struct bk_arg *a = arg;

	return store_bad_key_get(t, a->hash, &a->bk);
}

static enum store_rc
tx_bk_check(struct store_txn *t, void *arg)
{
	struct bk_arg *a = arg;

	return store_bad_key_check(t, &a->entries, a->why, sizeof(a->why));
}

/* STORE_OK (with *out) if key is refused, STORE_NOTFOUND if not. */
static enum store_rc
bk_get(struct fx *f, EVP_PKEY *key, struct bad_key *out)
{
	struct bk_arg a;
	enum store_rc rc;

	memset(&a, 0, sizeof(a));
	assert_true(keyhash_pkey(a.hash, key));
	rc = store_read(f->s, tx_bk_get, &a);
	*out = a.bk;
	return rc;
}

static void
bk_check_ok(struct fx *f, uint64_t entries)
{
	struct bk_arg a;

	memset(&a, 0, sizeof(a));
	assert_int_equal(store_read(f->s, tx_bk_check, &a), STORE_OK);
	assert_string_equal(a.why, "");
	assert_int_equal(a.entries, entries);
}

static void
bk_check_bad(struct fx *f, const char *needle)
{
	struct bk_arg a;

	memset(&a, 0, sizeof(a));
	assert_int_equal(store_read(f->s, tx_bk_check, &a), STORE_CORRUPT);
	if (strstr(a.why, needle) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", a.why, needle);
}

static void
bk_serial_is(const struct bad_key *bk, unsigned int n, uint8_t why)
{
	uint8_t s[STORE_SERIAL_LEN];

	mkserial(s, n);
	assert_memory_equal(bk->serial, s, STORE_SERIAL_LEN);
	assert_int_equal(bk->why, why);
}

static void
test_bad_keys(void **state)
{
	struct fx *f = *state;
	struct get_arg g;
	struct bad_key bk;
	struct link_arg l;
	struct raw r;
	EVP_PKEY *k1, *k2, *k3;
	uint8_t h1[STORE_KEYHASH_LEN], v[8];
	uint64_t seq, seq2, ver;

	k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	k3 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k1);
	assert_non_null(k2);
	assert_non_null(k3);
	open_new(f);
	bk_add(f, k1, 1);
	bk_add(f, k2, 2);
	bk_add(f, k3, 3);
	bk_add(f, k1, 4);	/* the same key in a second certificate */
	bk_check_ok(f, 0);
	assert_int_equal(bk_get(f, k1, &bk), STORE_NOTFOUND);

	/* superseded: not a compromise, the key stays usable */
	assert_int_equal(set_status(f, 1, CERT_REVOKED, REASON_SUPERSEDED,
	    5000, &seq), STORE_OK);
	assert_int_equal(bk_get(f, k1, &bk), STORE_NOTFOUND);
	/* raised to keyCompromise: first time kept, new event, key refused */
	assert_int_equal(set_status(f, 1, CERT_REVOKED,
	    REASON_KEY_COMPROMISE, 9000, &seq2), STORE_OK);
	assert_int_equal(seq2, seq + 1);
	assert_int_equal(get_cert(f, 1, &g), STORE_OK);
	assert_int_equal(g.st.status, CERT_REVOKED);
	assert_int_equal(g.st.reason, REASON_KEY_COMPROMISE);
	assert_int_equal(g.st.revoked_at, 5000);
	assert_int_equal(g.st.invalidity, 9000 - 10);
	assert_int_equal(g.st.change_seq, seq2);
	cert_rec_cleanup(&g.rec);
	assert_int_equal(bk_get(f, k1, &bk), STORE_OK);
	bk_serial_is(&bk, 1, BADKEY_COMPROMISE);
	/* no other change of a revocation */
	assert_int_equal(set_status(f, 1, CERT_REVOKED,
	    REASON_KEY_COMPROMISE, 9100, NULL), STORE_INVALID);
	assert_int_equal(set_status(f, 1, CERT_REVOKED, REASON_CESSATION,
	    9100, NULL), STORE_INVALID);
	assert_int_equal(set_status(f, 1, CERT_HOLD, 0, 9100, NULL),
	    STORE_INVALID);
	/* the second certificate with k1: the entry keeps the first */
	assert_int_equal(set_status(f, 4, CERT_REVOKED,
	    REASON_KEY_COMPROMISE, 9200, NULL), STORE_OK);
	assert_int_equal(bk_get(f, k1, &bk), STORE_OK);
	bk_serial_is(&bk, 1, BADKEY_COMPROMISE);
	bk_check_ok(f, 1);

	/* a reissue of 2 (replaced by 3) issued: 2's key is lost */
	mkserial(l.a, 2);
	mkserial(l.b, 3);
	assert_int_equal(store_write(f->s, tx_link, &l), STORE_OK);
	assert_int_equal(ix_put(f, 7, REQ_PENDING, "alice", 2), STORE_OK);
	assert_int_equal(bk_get(f, k2, &bk), STORE_NOTFOUND);
	assert_int_equal(ix_put(f, 7, REQ_ISSUED, "alice", 2), STORE_OK);
	assert_int_equal(bk_get(f, k2, &bk), STORE_OK);
	bk_serial_is(&bk, 2, BADKEY_LOST);
	assert_int_equal(bk_get(f, k3, &bk), STORE_NOTFOUND);
	bk_check_ok(f, 2);

	/* tampering: a missing entry, then an entry naming another cert */
	assert_true(keyhash_pkey(h1, k1));
	store_close(f->s);
	f->s = NULL;
	raw_open(&r, f->dir, "bad_keys");
	raw_del(&r, h1, sizeof(h1));
	raw_close(&r);
	reopen(f);
	bk_check_bad(f, "(revoked for keyCompromise) is not in the "
	    "compromised-key index");
	store_close(f->s);
	f->s = NULL;
	{
		uint8_t val[1 + STORE_SERIAL_LEN + 1 + 8];

		memset(val, 0, sizeof(val));
		val[0] = STORE_REC_VERSION;
		mkserial(val + 1, 3);
		val[1 + STORE_SERIAL_LEN] = BADKEY_COMPROMISE;
		raw_open(&r, f->dir, "bad_keys");
		raw_put(&r, h1, sizeof(h1), val, sizeof(val));
		raw_close(&r);
	}
	reopen(f);
	bk_check_bad(f, "whose key is another");
	/* malformed values: short, wrong version, unknown why, trailing */
	{
		static const uint8_t bad[][27] = {
			{ 1, 0x40 },
			{ 9, 0x40 },
			{ 1, 0x40, [17] = 7 },
			{ 1, 0x40, [17] = 1, [26] = 0xff },
		};
		static const size_t bad_len[] = { 2, 26, 26, 27 };
		size_t i;

		for (i = 0; i < 4; i++) {
			store_close(f->s);
			f->s = NULL;
			raw_open(&r, f->dir, "bad_keys");
			raw_put(&r, h1, sizeof(h1), bad[i], bad_len[i]);
			raw_close(&r);
			reopen(f);
			bk_check_bad(f, "does not decode");
			assert_int_equal(bk_get(f, k1, &bk), STORE_CORRUPT);
		}
	}

	/* upgrade from schema 2: the index is rebuilt from the store */
	store_close(f->s);
	f->s = NULL;
	raw_open(&r, f->dir, "bad_keys");
	assert_int_equal(mdb_drop(r.txn, r.dbi, 1), 0);
	raw_close(&r);
	raw_open(&r, f->dir, "meta");
	be64_put(v, 2);
	raw_put(&r, "schema_version", strlen("schema_version"), v, 8);
	raw_close(&r);
	assert_false(has_db(f, "bad_keys"));
	reopen(f);
	assert_int_equal(store_read(f->s, tx_schema, &ver), STORE_OK);
	assert_int_equal(ver, STORE_SCHEMA_VERSION);
	bk_check_ok(f, 2);
	assert_int_equal(bk_get(f, k1, &bk), STORE_OK);
	assert_int_equal(bk.why, BADKEY_COMPROMISE);
	assert_int_equal(bk_get(f, k2, &bk), STORE_OK);
	bk_serial_is(&bk, 2, BADKEY_LOST);
	assert_int_equal(bk_get(f, k3, &bk), STORE_NOTFOUND);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
}

/*
 * Account records: without SANs version 2 (sealed TOTP secret), with
 * SANs version 3 (the list appended); a version 3 record
 * with an empty list, a truncated list or trailing bytes is refused.
 */
static void
test_account_record_sans(void **state)
{
	struct account_rec a, b;
	struct wb w;
	uint8_t *p;
	size_t len;

	(void)state;
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "srv");
	snprintf(a.pwhash, sizeof(a.pwhash), "$argon2id$x");
	a.totp_sealed_len = 60;
	memset(a.totp_sealed, 7, 60);
	a.failed = 2;
	snprintf(a.subject, sizeof(a.subject), "/CN=srv");

	/* version 2: no SAN field */
	wb_init(&w);
	assert_true(store_rec_account_encode(&w, &a));
	assert_int_equal(w.data[0], 2);
	assert_true(store_rec_account_decode(&b, (const uint8_t *)"srv", 3,
	    w.data, w.len));
	assert_string_equal(b.sans, "");
	assert_string_equal(b.subject, "/CN=srv");
	/* a v2 record with bytes after the subject is refused */
	wb_u8(&w, 0);
	assert_false(store_rec_account_decode(&b, (const uint8_t *)"srv", 3,
	    w.data, w.len));
	wb_cleanup(&w);

	/* version 3: the list at the end */
	snprintf(a.sans, sizeof(a.sans), "DNS:srv.example.com,IP:192.0.2.9");
	wb_init(&w);
	assert_true(store_rec_account_encode(&w, &a));
	assert_int_equal(w.data[0], 3);
	assert_true(store_rec_account_decode(&b, (const uint8_t *)"srv", 3,
	    w.data, w.len));
	assert_string_equal(b.sans, "DNS:srv.example.com,IP:192.0.2.9");
	assert_string_equal(b.subject, "/CN=srv");
	assert_int_equal(b.failed, 2);
	/* every truncation is refused */
	for (len = 0; len < w.len; len++)
		assert_false(store_rec_account_decode(&b,
		    (const uint8_t *)"srv", 3, w.data, len));
	p = w.data;
	len = w.len;
	/* an empty list in a version 3 record: not the one encoding */
	p[len - 2 - strlen(a.sans)] = 0;
	p[len - 1 - strlen(a.sans)] = 0;
	assert_false(store_rec_account_decode(&b, (const uint8_t *)"srv", 3,
	    p, len - strlen(a.sans)));
	/* an unknown version */
	p[0] = 4;
	assert_false(store_rec_account_decode(&b, (const uint8_t *)"srv", 3,
	    p, len));
	wb_cleanup(&w);
	account_rec_wipe(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_account_record_sans),
		cmocka_unit_test_setup_teardown(test_create_open, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_batch_one_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cert_basic, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_transitions, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rev_floor, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_iter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accounts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_requests, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audit_ok, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audit_delete, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audit_swap, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_map_growth, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_grow, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_visibility, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backup, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_schema_newer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_request_index, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_request_index_upgrade,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_index_check,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_totp_upgrade, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_keys, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_growth_with_readers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_resized_by_other, setup,
		    teardown),
	};

	log_init("test_store", LOG_LVL_ERR);
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
