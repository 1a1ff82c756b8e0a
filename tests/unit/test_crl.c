/*
 * test_crl.c - full and delta CRLs: parsed back with OpenSSL, verified
 * with the CA key, entries, reasons, numbers, delta semantics, incremental
 * state against a fresh build, and real peers (openssl crl, certtool).
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "store/store.h"
#include "crl/crl.h"
#include "ocsp/ocsp.h"

#define NEXT_UPDATE	86400
#define INTERVAL	3600
#define DELTA_AGE	600
#define SKEW		300		/* CRL_SKEW in crl_service.c */
#define T0		1700000000	/* 2023-11-14 */
#define HOLDS		50000

struct ca {
	X509		*cert;
	EVP_PKEY	*key;
};

/* The services' wall clock (crl_opts.clock), moved by the tests. */
static int64_t	test_now = T0 + 1000;

static int64_t
test_clock(void)
{
	return test_now;
}

static void
ca_make(struct ca *ca, const char *type)
{
	X509_NAME *name;
	X509_EXTENSION *ext;
	X509V3_CTX v3;

	if (strcmp(type, "EC") == 0)
		ca->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else
		ca->key = EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(ca->key);
	assert_non_null(ca->cert = X509_new());
	assert_int_equal(X509_set_version(ca->cert, X509_VERSION_3), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(ca->cert), 1);
	name = X509_get_subject_name(ca->cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"mica test CA", -1, -1, 0);
	X509_set_issuer_name(ca->cert, name);
	X509_gmtime_adj(X509_getm_notBefore(ca->cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(ca->cert), 86400 * 30);
	X509_set_pubkey(ca->cert, ca->key);
	X509V3_set_ctx(&v3, ca->cert, ca->cert, NULL, NULL, 0);
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &v3,
	    NID_subject_key_identifier, "hash"));
	X509_add_ext(ca->cert, ext, -1);
	X509_EXTENSION_free(ext);
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &v3,
	    NID_basic_constraints, "critical,CA:TRUE"));
	X509_add_ext(ca->cert, ext, -1);
	X509_EXTENSION_free(ext);
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
	    "critical,keyCertSign,cRLSign"));
	X509_add_ext(ca->cert, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(ca->cert, ca->key,
	    strcmp(type, "ED25519") == 0 ? NULL : EVP_sha256()) > 0);
}

static void
ca_free(struct ca *ca)
{
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
}

static void
ser(uint8_t out[STORE_SERIAL_LEN], unsigned int n)
{
	memset(out, 0, STORE_SERIAL_LEN);
	out[0] = 0x4d;			/* top bit clear, like the store's */
	out[13] = (uint8_t)(n >> 16);
	out[14] = (uint8_t)(n >> 8);
	out[15] = (uint8_t)n;
}

/* ---- store helpers ---- */

struct op {
	int		add;
	unsigned int	n;
	uint8_t		status, reason;
	int64_t		when, inv;
};

static enum store_rc
op_txn(struct store_txn *txn, void *arg)
{
	struct op *o = arg;
	struct cert_rec r;
	uint8_t s[STORE_SERIAL_LEN];
	static uint8_t der[] = { 0x30, 0x00 };

	ser(s, o->n);
	if (!o->add)
		return store_cert_set_status(txn, s, o->status, o->reason,
		    o->when, o->inv, NULL);
	memset(&r, 0, sizeof(r));
	memcpy(r.serial, s, sizeof(s));
	r.st.not_before = T0;
	r.st.not_after = T0 + 86400 * 365;
	r.issued_at = T0;
	r.der = der;
	r.der_len = sizeof(der);
	return store_cert_add(txn, &r);
}

static void
add_cert(struct store *st, unsigned int n)
{
	struct op o = { .add = 1, .n = n };

	assert_int_equal(store_write(st, op_txn, &o), STORE_OK);
}

static void
set_status(struct store *st, unsigned int n, uint8_t status, uint8_t reason,
    int64_t when, int64_t inv)
{
	struct op o = { 0, n, status, reason, when, inv };

	assert_int_equal(store_write(st, op_txn, &o), STORE_OK);
}

struct env {
	char		 dir[64];
	char		 pub[80];
	struct store	*st;
	struct ca	 ca;
};

static void
env_open(struct env *e, const char *keytype)
{
	struct store_opts so = { .create = 1 };

	memset(e, 0, sizeof(*e));
	strcpy(e->dir, "/tmp/test_crl.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->pub, sizeof(e->pub), "%s/pub", e->dir);
	assert_int_equal(mkdir(e->pub, 0700), 0);
	assert_int_equal(store_open(&e->st, e->dir, &so), STORE_OK);
	ca_make(&e->ca, keytype);
}

static void
env_close(struct env *e)
{
	char cmd[160];

	store_close(e->st);
	ca_free(&e->ca);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- CRL inspection ---- */

static X509_CRL *
parse(const uint8_t *der, size_t len, const struct ca *ca)
{
	const unsigned char *p = der;
	X509_CRL *crl;

	assert_non_null(crl = d2i_X509_CRL(NULL, &p, (long)len));
	assert_ptr_equal(p, der + len);		/* nothing trailing */
	assert_int_equal(X509_CRL_verify(crl, ca->key), 1);
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(ca->cert)), 0);
	return crl;
}

static X509_CRL *
snap_crl(struct crl_service *svc, enum crl_kind kind, const struct ca *ca,
    uint64_t *out_number)
{
	const struct crl_snapshot *s;
	X509_CRL *crl;

	assert_non_null(s = crl_service_get(svc, kind));
	crl = parse(s->der, s->der_len, ca);
	*out_number = s->number;
	assert_int_equal(s->next_update - s->this_update,
	    kind == CRL_FULL ? NEXT_UPDATE : DELTA_AGE);
	/* caches keep a full CRL until the next build, a delta while valid */
	assert_int_equal(s->fresh_until - s->this_update,
	    kind == CRL_FULL ? INTERVAL : DELTA_AGE);
	crl_snapshot_release(s);
	return crl;
}

static uint64_t
ext_uint(X509_CRL *crl, int nid, int *crit)
{
	ASN1_INTEGER *ai;
	uint64_t v = 0;

	ai = X509_CRL_get_ext_d2i(crl, nid, crit, NULL);
	if (ai == NULL)
		return 0;
	assert_int_equal(ASN1_INTEGER_get_uint64(&v, ai), 1);
	ASN1_INTEGER_free(ai);
	return v;
}

static X509_REVOKED *
find(X509_CRL *crl, unsigned int n)
{
	uint8_t s[STORE_SERIAL_LEN];
	ASN1_INTEGER *ai;
	BIGNUM *bn;
	X509_REVOKED *r = NULL;

	ser(s, n);
	assert_non_null(bn = BN_bin2bn(s, sizeof(s), NULL));
	assert_non_null(ai = BN_to_ASN1_INTEGER(bn, NULL));
	if (X509_CRL_get0_by_serial(crl, &r, ai) == 0)
		r = NULL;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return r;
}

static int
reason_of(X509_REVOKED *r)
{
	ASN1_ENUMERATED *e;
	int v;

	if ((e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL)) ==
	    NULL)
		return -1;
	v = (int)ASN1_ENUMERATED_get(e);
	ASN1_ENUMERATED_free(e);
	return v;
}

static int64_t
asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
	return (int64_t)timegm(&tm);
}

static int64_t
invalidity_of(X509_REVOKED *r)
{
	ASN1_GENERALIZEDTIME *g;
	int64_t v;

	g = X509_REVOKED_get_ext_d2i(r, NID_invalidity_date, NULL, NULL);
	if (g == NULL)
		return 0;
	v = asn1_time(g);
	ASN1_GENERALIZEDTIME_free(g);
	return v;
}

static void
expect_entry(X509_CRL *crl, unsigned int n, int reason, int64_t when,
    int64_t inv)
{
	X509_REVOKED *r;

	assert_non_null(r = find(crl, n));
	assert_int_equal(reason_of(r), reason);
	assert_int_equal(asn1_time(X509_REVOKED_get0_revocationDate(r)),
	    when);
	assert_int_equal(invalidity_of(r), inv);
}

static int
num_entries(X509_CRL *crl)
{
	STACK_OF(X509_REVOKED) *sk = X509_CRL_get_REVOKED(crl);

	return sk == NULL ? 0 : sk_X509_REVOKED_num(sk);
}

static void
check_aki_freshest(X509_CRL *crl, const struct ca *ca, const char *url)
{
	AUTHORITY_KEYID *aki;
	STACK_OF(DIST_POINT) *dps;
	DIST_POINT *dp;
	GENERAL_NAME *gn;
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca->cert);

	assert_non_null(aki = X509_CRL_get_ext_d2i(crl,
	    NID_authority_key_identifier, NULL, NULL));
	assert_non_null(aki->keyid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(aki->keyid, ski), 0);
	AUTHORITY_KEYID_free(aki);
	dps = X509_CRL_get_ext_d2i(crl, NID_freshest_crl, NULL, NULL);
	if (url == NULL) {
		assert_null(dps);
		return;
	}
	assert_non_null(dps);
	assert_int_equal(sk_DIST_POINT_num(dps), 1);
	dp = sk_DIST_POINT_value(dps, 0);
	assert_int_equal(dp->distpoint->type, 0);
	gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
	assert_int_equal(gn->type, GEN_URI);
	assert_string_equal(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
	    url);
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
}

/* expiredCertsOnCRL (2.5.29.60): not critical, the CA's notBefore. */
static void
check_expired_certs(X509_CRL *crl, const struct ca *ca)
{
	ASN1_OBJECT *obj;
	X509_EXTENSION *ext;
	const ASN1_OCTET_STRING *os;
	const unsigned char *p;
	ASN1_GENERALIZEDTIME *g;
	int i;

	assert_non_null(obj = OBJ_txt2obj("2.5.29.60", 1));
	assert_true((i = X509_CRL_get_ext_by_OBJ(crl, obj, -1)) >= 0);
	ASN1_OBJECT_free(obj);
	ext = X509_CRL_get_ext(crl, i);
	assert_int_equal(X509_EXTENSION_get_critical(ext), 0);
	os = X509_EXTENSION_get_data(ext);
	p = ASN1_STRING_get0_data(os);
	assert_non_null(g = d2i_ASN1_GENERALIZEDTIME(NULL, &p,
	    ASN1_STRING_length(os)));
	assert_int_equal(asn1_time(g),
	    asn1_time(X509_get0_notBefore(ca->cert)));
	ASN1_GENERALIZEDTIME_free(g);
}

struct acc {
	uint8_t	*p;
	size_t	 n;
};

static int
acc_piece(const uint8_t *p, size_t len, void *arg)
{
	struct acc *acc = arg;

	memcpy(acc->p + acc->n, p, len);
	acc->n += len;
	return 1;
}

static struct crl_service *
service(struct env *e)
{
	struct crl_opts o = {
		.full_interval = INTERVAL,
		.next_update = NEXT_UPDATE,
		.delta_max_age = DELTA_AGE,
		.base_url = "http://127.0.0.1:7780",
		.publish_dir = e->pub,
		.no_thread = 1,
		.clock = test_clock,
	};

	return crl_service_new(e->st, e->ca.cert, e->ca.key, &o);
}

/* ---- tests ---- */

static void
test_full_and_delta(void **state)
{
	struct env e;
	struct crl_service *svc;
	X509_CRL *full, *delta;
	uint64_t fnum, dnum, fnum2, dnum2;
	int crit = -1;
	unsigned int i;

	(void)state;
	env_open(&e, "EC");
	for (i = 1; i <= 6; i++)
		add_cert(e.st, i);
	set_status(e.st, 1, CERT_REVOKED, REASON_KEY_COMPROMISE, T0 + 10,
	    T0 - 3600);
	set_status(e.st, 2, CERT_REVOKED, REASON_UNSPECIFIED, T0 + 20, 0);
	set_status(e.st, 3, CERT_HOLD, 0, T0 + 30, 0);
	set_status(e.st, 6, CERT_HOLD, 0, T0 + 35, 0);

	assert_non_null(svc = service(&e));
	full = snap_crl(svc, CRL_FULL, &e.ca, &fnum);
	assert_int_equal(ext_uint(full, NID_crl_number, NULL), fnum);
	assert_int_equal(ext_uint(full, NID_delta_crl, NULL), 0);
	check_aki_freshest(full, &e.ca, "http://127.0.0.1:7780/crl/delta.crl");
	check_expired_certs(full, &e.ca);
	assert_int_equal(num_entries(full), 4);
	expect_entry(full, 1, REASON_KEY_COMPROMISE, T0 + 10, T0 - 3600);
	expect_entry(full, 2, -1, T0 + 20, 0);	/* unspecified: absent */
	expect_entry(full, 3, REASON_CERTIFICATE_HOLD, T0 + 30, 0);
	expect_entry(full, 6, REASON_CERTIFICATE_HOLD, T0 + 35, 0);
	assert_null(find(full, 4));
	assert_null(find(full, 5));

	/* the first delta names the full CRL and is empty */
	delta = snap_crl(svc, CRL_DELTA, &e.ca, &dnum);
	assert_true(dnum > fnum);
	assert_int_equal(ext_uint(delta, NID_crl_number, NULL), dnum);
	assert_int_equal(ext_uint(delta, NID_delta_crl, &crit), fnum);
	assert_int_equal(crit, 1);
	assert_int_equal(num_entries(delta), 0);
	check_aki_freshest(delta, &e.ca, NULL);
	check_expired_certs(delta, &e.ca);
	X509_CRL_free(delta);

	/* revoke 4, release 3, hold 5, hold 6 -> revoked: delta has all */
	set_status(e.st, 4, CERT_REVOKED, REASON_SUPERSEDED, T0 + 40, 0);
	set_status(e.st, 3, CERT_GOOD, 0, T0 + 50, 0);
	set_status(e.st, 5, CERT_HOLD, 0, T0 + 60, 0);
	set_status(e.st, 6, CERT_REVOKED, REASON_CESSATION, T0 + 70, 0);
	assert_int_equal(crl_service_changed(svc), 1);
	delta = snap_crl(svc, CRL_DELTA, &e.ca, &dnum2);
	assert_true(dnum2 > dnum);
	assert_int_equal(ext_uint(delta, NID_delta_crl, NULL), fnum);
	assert_int_equal(num_entries(delta), 4);
	expect_entry(delta, 4, REASON_SUPERSEDED, T0 + 40, 0);
	expect_entry(delta, 3, REASON_REMOVE_FROM_CRL, T0 + 50, 0);
	expect_entry(delta, 5, REASON_CERTIFICATE_HOLD, T0 + 60, 0);
	expect_entry(delta, 6, REASON_CESSATION, T0 + 70, 0);
	X509_CRL_free(delta);

	/* the full CRL has not moved (a change makes only a delta) */
	X509_CRL_free(full);
	full = snap_crl(svc, CRL_FULL, &e.ca, &fnum2);
	assert_int_equal(fnum2, fnum);
	X509_CRL_free(full);
	/* a rebuild has the new state; the first full CRL is still valid,
	 * so it stays the deltas' base and the delta keeps every change */
	test_now += INTERVAL;
	assert_int_equal(crl_service_rebuild(svc), 1);
	full = snap_crl(svc, CRL_FULL, &e.ca, &fnum2);
	assert_true(fnum2 > dnum2);
	assert_int_equal(num_entries(full), 5);
	expect_entry(full, 1, REASON_KEY_COMPROMISE, T0 + 10, T0 - 3600);
	expect_entry(full, 2, -1, T0 + 20, 0);
	expect_entry(full, 4, REASON_SUPERSEDED, T0 + 40, 0);
	expect_entry(full, 5, REASON_CERTIFICATE_HOLD, T0 + 60, 0);
	expect_entry(full, 6, REASON_CESSATION, T0 + 70, 0);
	assert_null(find(full, 3));
	X509_CRL_free(full);
	delta = snap_crl(svc, CRL_DELTA, &e.ca, &dnum);
	assert_true(dnum > fnum2);
	assert_int_equal(ext_uint(delta, NID_delta_crl, NULL), fnum);
	assert_int_equal(num_entries(delta), 4);
	X509_CRL_free(delta);

	/* held in the first base, revoked since: the final reason; held
	 * and released since: removeFromCRL, since a full CRL between
	 * (any number >= the base may be the one held) can list the hold */
	set_status(e.st, 5, CERT_REVOKED, REASON_KEY_COMPROMISE, T0 + 80, 0);
	add_cert(e.st, 7);
	set_status(e.st, 7, CERT_HOLD, 0, T0 + 90, 0);
	set_status(e.st, 7, CERT_GOOD, 0, T0 + 95, 0);
	assert_int_equal(crl_service_changed(svc), 1);
	delta = snap_crl(svc, CRL_DELTA, &e.ca, &dnum2);
	assert_int_equal(ext_uint(delta, NID_delta_crl, NULL), fnum);
	assert_int_equal(num_entries(delta), 5);
	expect_entry(delta, 3, REASON_REMOVE_FROM_CRL, T0 + 50, 0);
	expect_entry(delta, 4, REASON_SUPERSEDED, T0 + 40, 0);
	expect_entry(delta, 5, REASON_KEY_COMPROMISE, T0 + 80, 0);
	expect_entry(delta, 6, REASON_CESSATION, T0 + 70, 0);
	expect_entry(delta, 7, REASON_REMOVE_FROM_CRL, T0 + 95, 0);
	X509_CRL_free(delta);
	crl_service_free(svc);

	/* a restart replays the store, never reuses a number, and keeps
	 * the base: relying parties still hold the first full CRL */
	assert_non_null(svc = service(&e));
	full = snap_crl(svc, CRL_FULL, &e.ca, &fnum2);
	assert_true(fnum2 > dnum2);
	assert_int_equal(num_entries(full), 5);
	expect_entry(full, 5, REASON_KEY_COMPROMISE, T0 + 80, 0);
	assert_null(find(full, 7));
	X509_CRL_free(full);
	delta = snap_crl(svc, CRL_DELTA, &e.ca, &dnum);
	assert_int_equal(ext_uint(delta, NID_delta_crl, NULL), fnum);
	assert_int_equal(num_entries(delta), 5);
	expect_entry(delta, 3, REASON_REMOVE_FROM_CRL, T0 + 50, 0);
	expect_entry(delta, 5, REASON_KEY_COMPROMISE, T0 + 80, 0);
	X509_CRL_free(delta);
	crl_service_free(svc);
	env_close(&e);
}

static void	apply(struct crl_builder *, uint64_t, unsigned int, uint8_t,
		    uint8_t, int64_t);

/* the base of the current delta, and its number of entries */
static uint64_t
delta_base(struct crl_service *svc, const struct ca *ca, int *out_num)
{
	X509_CRL *d;
	uint64_t n, base;

	d = snap_crl(svc, CRL_DELTA, ca, &n);
	base = ext_uint(d, NID_delta_crl, NULL);
	*out_num = num_entries(d);
	X509_CRL_free(d);
	return base;
}

static uint64_t
full_number(struct crl_service *svc, const struct ca *ca)
{
	X509_CRL *f;
	uint64_t n;

	f = snap_crl(svc, CRL_FULL, ca, &n);
	X509_CRL_free(f);
	return n;
}

/*
 * The base is the oldest full CRL a relying party may hold: it moves on
 * only when that one has expired (nextUpdate + the skew allowance), and
 * a restart keeps it.
 */
static void
test_base_window(void **state)
{
	struct env e;
	struct crl_service *svc;
	uint64_t f1, f2, f3, f4;
	int n;

	(void)state;
	test_now = T0 + 100000;
	env_open(&e, "EC");
	add_cert(e.st, 1);
	add_cert(e.st, 2);
	assert_non_null(svc = service(&e));
	f1 = full_number(svc, &e.ca);
	set_status(e.st, 1, CERT_REVOKED, REASON_KEY_COMPROMISE, test_now, 0);
	assert_int_equal(crl_service_changed(svc), 1);
	assert_int_equal(delta_base(svc, &e.ca, &n), f1);
	assert_int_equal(n, 1);
	/* scheduled builds: the deltas keep base f1 while f1 is valid */
	test_now += INTERVAL;
	assert_int_equal(crl_service_rebuild(svc), 1);
	f2 = full_number(svc, &e.ca);
	set_status(e.st, 2, CERT_HOLD, 0, test_now, 0);
	assert_int_equal(crl_service_changed(svc), 1);
	assert_int_equal(delta_base(svc, &e.ca, &n), f1);
	assert_int_equal(n, 2);
	/* f1 at its nextUpdate + the skew: still a base */
	test_now = T0 + 100000 + NEXT_UPDATE + SKEW;
	assert_int_equal(crl_service_changed(svc), 1);
	assert_int_equal(delta_base(svc, &e.ca, &n), f1);
	/* a second later no one may hold f1: the base is f2, and the delta
	 * no longer lists the revocation f2 has */
	test_now++;
	assert_int_equal(crl_service_rebuild(svc), 1);
	f3 = full_number(svc, &e.ca);
	assert_int_equal(delta_base(svc, &e.ca, &n), f2);
	assert_int_equal(n, 1);
	crl_service_free(svc);
	/* a restart keeps f2 (recorded in the store) */
	assert_non_null(svc = service(&e));
	f4 = full_number(svc, &e.ca);
	assert_true(f4 > f3);
	assert_int_equal(delta_base(svc, &e.ca, &n), f2);
	assert_int_equal(n, 1);
	crl_service_free(svc);
	/* once every full CRL before the restart has expired, the base is
	 * the one built at start */
	test_now += NEXT_UPDATE + SKEW + 1;
	assert_non_null(svc = service(&e));
	f4 = full_number(svc, &e.ca);
	assert_int_equal(delta_base(svc, &e.ca, &n), f4);
	assert_int_equal(n, 0);
	crl_service_free(svc);
	env_close(&e);
	test_now = T0 + 1000;
}

/*
 * A revocation event for a revoked serial (a reason raised to
 * keyCompromise): the entry takes the new reason, keeps the first
 * revocation date, and gains the invalidity date; the delta lists it.
 */
static void
test_reason_change(void **state)
{
	struct ca ca;
	struct crl_builder *b;
	struct rev_event ev;
	uint8_t *der = NULL;
	size_t len;
	X509_CRL *crl;

	(void)state;
	ca_make(&ca, "EC");
	assert_non_null(b = crl_builder_new(ca.cert, ca.key, NULL));
	apply(b, 1, 1, CERT_REVOKED, REASON_SUPERSEDED, T0 + 10);
	apply(b, 2, 2, CERT_REVOKED, REASON_CESSATION, T0 + 20);
	assert_int_equal(crl_builder_full(b, &der, &len, 1, T0 + 30,
	    T0 + 3600), 1);
	free(der);
	memset(&ev, 0, sizeof(ev));
	ev.seq = 3;
	ser(ev.serial, 1);
	ev.status = CERT_REVOKED;
	ev.reason = REASON_KEY_COMPROMISE;
	ev.when = T0 + 40;
	ev.invalidity = T0 - 86400;
	assert_int_equal(crl_builder_apply(b, &ev), 1);
	assert_int_equal(crl_builder_count(b), 2);
	assert_int_equal(crl_builder_delta(b, &der, &len, 2, T0 + 50,
	    T0 + 110), 1);
	crl = parse(der, len, &ca);
	assert_int_equal(num_entries(crl), 1);
	expect_entry(crl, 1, REASON_KEY_COMPROMISE, T0 + 10, T0 - 86400);
	X509_CRL_free(crl);
	free(der);
	/* no invalidity date in the event: the entry keeps its own */
	ev.seq = 4;
	ev.reason = REASON_AFFILIATION_CHANGED;
	ev.invalidity = 0;
	assert_int_equal(crl_builder_apply(b, &ev), 1);
	assert_int_equal(crl_builder_full(b, &der, &len, 3, T0 + 60,
	    T0 + 3600), 1);
	crl = parse(der, len, &ca);
	assert_int_equal(num_entries(crl), 2);
	expect_entry(crl, 1, REASON_AFFILIATION_CHANGED, T0 + 10, T0 - 86400);
	expect_entry(crl, 2, REASON_CESSATION, T0 + 20, 0);
	X509_CRL_free(crl);
	free(der);
	crl_builder_free(b);
	ca_free(&ca);
}

static void
write_ca_pem(const struct ca *ca, char *path)
{
	FILE *f;

	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_X509(f, ca->cert), 1);
	assert_int_equal(fclose(f), 0);
	/* certtool --inder reads the CA as DER too */
	memcpy(strrchr(path, '.'), ".der", 4);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(i2d_X509_fp(f, ca->cert), 1);
	assert_int_equal(fclose(f), 0);
}

/* Real peers read the published files. */
static void
test_peers(void **state)
{
	struct env e;
	struct crl_service *svc;
	char cmd[512];
	unsigned int i;

	(void)state;
	test_now = (int64_t)time(NULL);	/* certtool checks the dates */
	env_open(&e, "EC");
	for (i = 1; i <= 20; i++) {
		add_cert(e.st, i);
		set_status(e.st, i, i % 3 == 0 ? CERT_HOLD : CERT_REVOKED,
		    i % 4, T0 + i, 0);
	}
	assert_non_null(svc = service(&e));
	set_status(e.st, 3, CERT_GOOD, 0, T0 + 100, 0);
	assert_int_equal(crl_service_changed(svc), 1);
	snprintf(cmd, sizeof(cmd), "%s/ca.pem", e.dir);
	write_ca_pem(&e.ca, cmd);
	snprintf(cmd, sizeof(cmd), "openssl crl -in %s/full.crl -inform DER "
	    "-CAfile %s/ca.pem -noout -verify 2>&1 | grep -q 'verify OK'",
	    e.pub, e.dir);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "openssl crl -in %s/delta.crl -inform DER "
	    "-CAfile %s/ca.pem -noout -verify -text 2>&1 | "
	    "grep -q 'Remove From CRL'", e.pub, e.dir);
	assert_int_equal(system(cmd), 0);
	if (system("command -v certtool >/dev/null 2>&1") == 0) {
		snprintf(cmd, sizeof(cmd), "certtool --crl-info --inder "
		    "--infile %s/full.crl 2>&1 | grep -q 'Revoked certificates "
		    "(20)'", e.pub);
		assert_int_equal(system(cmd), 0);
		snprintf(cmd, sizeof(cmd), "certtool --verify-crl --inder "
		    "--infile %s/full.crl --load-ca-certificate %s/ca.der "
		    ">/dev/null 2>&1", e.pub, e.dir);
		assert_int_equal(system(cmd), 0);
	}
	crl_service_free(svc);
	env_close(&e);
}

/* Builder without a store: Ed25519 and incremental == fresh. */
static void
apply(struct crl_builder *b, uint64_t seq, unsigned int n, uint8_t status,
    uint8_t reason, int64_t when)
{
	struct rev_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.seq = seq;
	ser(ev.serial, n);
	ev.status = status;
	ev.reason = reason;
	ev.when = when;
	assert_int_equal(crl_builder_apply(b, &ev), 1);
}

static void
test_ed25519(void **state)
{
	struct ca ca;
	struct crl_builder *b;
	uint8_t *der = NULL;
	size_t len;
	X509_CRL *crl;

	(void)state;
	ca_make(&ca, "ED25519");
	assert_non_null(b = crl_builder_new(ca.cert, ca.key, NULL));
	/* empty: revokedCertificates absent (RFC 5280 5.1.2.6) */
	assert_int_equal(crl_builder_full(b, &der, &len, 1, T0,
	    T0 + NEXT_UPDATE), 1);
	crl = parse(der, len, &ca);
	assert_null(X509_CRL_get_REVOKED(crl));
	assert_int_equal(asn1_time(X509_CRL_get0_lastUpdate(crl)), T0);
	assert_int_equal(asn1_time(X509_CRL_get0_nextUpdate(crl)),
	    T0 + NEXT_UPDATE);
	check_aki_freshest(crl, &ca, NULL);
	X509_CRL_free(crl);
	free(der);
	/* 2050 and later is GeneralizedTime (RFC 5280 4.1.2.5) */
	apply(b, 1, 1, CERT_REVOKED, REASON_AFFILIATION_CHANGED, 2524608000LL);
	assert_int_equal(crl_builder_full(b, &der, &len, 2, T0,
	    2524608000LL + 10), 1);
	crl = parse(der, len, &ca);
	assert_int_equal(ASN1_STRING_type(X509_CRL_get0_nextUpdate(crl)),
	    V_ASN1_GENERALIZEDTIME);
	assert_int_equal(ASN1_STRING_type(X509_CRL_get0_lastUpdate(crl)),
	    V_ASN1_UTCTIME);
	expect_entry(crl, 1, REASON_AFFILIATION_CHANGED, 2524608000LL, 0);
	X509_CRL_free(crl);
	free(der);
	crl_builder_free(b);
	ca_free(&ca);
}

static void
same_entries(X509_CRL *a, X509_CRL *b)
{
	STACK_OF(X509_REVOKED) *sk = X509_CRL_get_REVOKED(a);
	X509_REVOKED *ra, *rb;
	int i;

	assert_int_equal(num_entries(a), num_entries(b));
	for (i = 0; i < num_entries(a); i++) {
		ra = sk_X509_REVOKED_value(sk, i);
		assert_int_equal(X509_CRL_get0_by_serial(b, &rb,
		    X509_REVOKED_get0_serialNumber(ra)), 1);
		assert_int_equal(reason_of(ra), reason_of(rb));
		assert_int_equal(ASN1_TIME_compare(
		    X509_REVOKED_get0_revocationDate(ra),
		    X509_REVOKED_get0_revocationDate(rb)), 0);
	}
}

static void
test_incremental(void **state)
{
	struct ca ca;
	struct crl_builder *inc, *fresh;
	uint8_t *d1 = NULL, *d2 = NULL;
	size_t l1, l2;
	X509_CRL *c1, *c2;
	uint64_t seq = 0;
	unsigned int i, expect = 0;
	int st;

	(void)state;
	ca_make(&ca, "EC");
	assert_non_null(inc = crl_builder_new(ca.cert, ca.key, NULL));
	assert_non_null(fresh = crl_builder_new(ca.cert, ca.key, NULL));
	/* 50000 holds (about 2.3 MB: three entry chunks), a first full
	 * build, then releases and revocations (enough dead bytes to
	 * compact while the chunks are shared, a table that grows) */
	for (i = 1; i <= HOLDS; i++)
		apply(inc, ++seq, i, CERT_HOLD, 0, T0 + i);
	assert_int_equal(crl_builder_full(inc, &d1, &l1, 1, T0, T0 + 1), 1);
	free(d1);
	for (i = 1; i <= HOLDS; i++) {
		if (i % 3 == 0)
			apply(inc, ++seq, i, CERT_GOOD, 0, T0 + 9000 + i);
		else if (i % 3 == 1)
			apply(inc, ++seq, i, CERT_REVOKED, i % 11 == 7 ? 1 :
			    REASON_SUPERSEDED, T0 + 9000 + i);
	}
	for (i = HOLDS + 1; i <= HOLDS + 1000; i++)
		apply(inc, ++seq, i, CERT_REVOKED, REASON_CESSATION, T0 + i);
	/* the fresh builder sees only the final state */
	seq = 0;
	for (i = 1; i <= HOLDS + 1000; i++) {
		if (i > HOLDS) {
			apply(fresh, ++seq, i, CERT_REVOKED, REASON_CESSATION,
			    T0 + i);
			expect++;
			continue;
		}
		st = i % 3;
		if (st == 0)
			continue;
		if (st == 1)
			apply(fresh, ++seq, i, CERT_REVOKED, i % 11 == 7 ? 1 :
			    REASON_SUPERSEDED, T0 + 9000 + i);
		else
			apply(fresh, ++seq, i, CERT_HOLD, 0, T0 + i);
		expect++;
	}
	assert_int_equal(crl_builder_count(inc), expect);
	assert_int_equal(crl_builder_count(fresh), expect);
	assert_int_equal(crl_builder_full(inc, &d1, &l1, 2, T0, T0 + 1), 1);
	assert_int_equal(crl_builder_full(fresh, &d2, &l2, 2, T0, T0 + 1), 1);
	/* same entries and only them: same size too */
	assert_true((l1 > l2 ? l1 - l2 : l2 - l1) <= 3);
	c1 = parse(d1, l1, &ca);
	c2 = parse(d2, l2, &ca);
	assert_int_equal(num_entries(c1), (int)expect);
	same_entries(c1, c2);
	same_entries(c2, c1);
	expect_entry(c1, 3 * 7 + 1, REASON_SUPERSEDED, T0 + 9000 + 22, 0);
	expect_entry(c1, 2, REASON_CERTIFICATE_HOLD, T0 + 2, 0);
	assert_null(find(c1, 3));
	X509_CRL_free(c1);
	X509_CRL_free(c2);
	free(d1);
	free(d2);
	crl_builder_free(inc);
	crl_builder_free(fresh);
	ca_free(&ca);
}

/*
 * A held snapshot shares the builder's entry chunks: later changes and a
 * rebuild (dead marks, compaction) copy a shared chunk first, so the held
 * CRL's bytes never change.
 */
static void
test_snapshot_cow(void **state)
{
	struct env e;
	struct crl_service *svc;
	const struct crl_snapshot *s, *s2;
	uint8_t *copy;
	size_t len;
	X509_CRL *crl;
	unsigned int i;

	(void)state;
	env_open(&e, "EC");
	for (i = 1; i <= 200; i++) {
		add_cert(e.st, i);
		set_status(e.st, i, i % 2 ? CERT_HOLD : CERT_REVOKED, 1,
		    T0 + i, 0);
	}
	assert_non_null(svc = service(&e));
	/* peek: no contiguous copy yet; get makes it */
	assert_non_null(s = crl_service_peek(svc, CRL_FULL));
	assert_null(s->der);
	crl_snapshot_release(s);
	assert_non_null(s = crl_service_get(svc, CRL_FULL));
	assert_non_null(s->der);
	len = s->der_len;
	assert_non_null(copy = malloc(len));
	memcpy(copy, s->der, len);
	for (i = 1; i <= 200; i += 2)		/* release every hold */
		set_status(e.st, i, CERT_GOOD, 0, T0 + 1000 + i, 0);
	assert_int_equal(crl_service_changed(svc), 1);
	assert_int_equal(crl_service_rebuild(svc), 1);
	assert_non_null(s2 = crl_service_get(svc, CRL_FULL));
	crl = parse(s2->der, s2->der_len, &e.ca);
	assert_int_equal(num_entries(crl), 100);
	assert_null(find(crl, 1));
	expect_entry(crl, 2, 1, T0 + 2, 0);
	X509_CRL_free(crl);
	crl_snapshot_release(s2);
	/* the old snapshot, read through its pieces now, is unchanged */
	crl_service_free(svc);
	assert_int_equal(s->der_len, len);
	{
		struct acc acc = { malloc(len), 0 };
		assert_non_null(acc.p);
		assert_int_equal(crl_snapshot_pieces(s, acc_piece, &acc), 1);
		assert_int_equal(acc.n, len);
		assert_memory_equal(acc.p, copy, len);
		free(acc.p);
	}
	crl = parse(copy, len, &e.ca);
	assert_int_equal(num_entries(crl), 200);
	X509_CRL_free(crl);
	crl_snapshot_release(s);
	free(copy);
	env_close(&e);
}

/* ---- HTTP ---- */

struct hctx {
	struct crl_service	*svc;
	struct event_base	*base;
	int			 code;
	char			 ctype[64];
	char			 etag[64];
	char			 cc[96];
	uint8_t			*body;
	size_t			 body_len;
};

static void
server_cb(struct ocsp_http_req *req, const char *path, void *arg)
{
	struct hctx *h = arg;

	crl_http_handle(h->svc, req, path);
}

static void
client_cb(struct evhttp_request *req, void *arg)
{
	struct hctx *h = arg;
	struct evkeyvalq *ih;
	struct evbuffer *b;
	const char *v;

	h->code = req != NULL ? evhttp_request_get_response_code(req) : -1;
	if (req != NULL) {
		ih = evhttp_request_get_input_headers(req);
		v = evhttp_find_header(ih, "Content-Type");
		snprintf(h->ctype, sizeof(h->ctype), "%s", v ? v : "");
		v = evhttp_find_header(ih, "ETag");
		snprintf(h->etag, sizeof(h->etag), "%s", v ? v : "");
		v = evhttp_find_header(ih, "Cache-Control");
		snprintf(h->cc, sizeof(h->cc), "%s", v ? v : "");
		b = evhttp_request_get_input_buffer(req);
		h->body_len = evbuffer_get_length(b);
		h->body = malloc(h->body_len + 1);
		evbuffer_remove(b, h->body, h->body_len);
		h->body[h->body_len] = 0;
	}
	event_base_loopexit(h->base, NULL);
}

static void
http_do(struct hctx *h, struct evhttp_connection *conn,
    enum evhttp_cmd_type cmd, const char *uri, const char *inm)
{
	struct evhttp_request *req;

	free(h->body);
	h->body = NULL;
	h->body_len = 0;
	h->code = 0;
	assert_non_null(req = evhttp_request_new(client_cb, h));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    "127.0.0.1");
	if (inm != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "If-None-Match", inm);
	assert_int_equal(evhttp_make_request(conn, req, cmd, uri), 0);
	event_base_dispatch(h->base);
}

static long
max_age(const char *cc)
{
	const char *p = strstr(cc, "max-age=");

	assert_non_null(p);
	return strtol(p + 8, NULL, 10);
}

static void
test_http(void **state)
{
	struct env e;
	struct hctx h;
	struct ocsp_http_opts ho;
	struct ocsp_http *http;
	struct evhttp_connection *conn;
	const struct crl_snapshot *s;
	char etag[64];
	int port;

	(void)state;
	env_open(&e, "EC");
	add_cert(e.st, 1);
	set_status(e.st, 1, CERT_REVOKED, REASON_KEY_COMPROMISE, T0, 0);
	memset(&h, 0, sizeof(h));
	test_now = (int64_t)time(NULL);	/* max-age counts from now */
	assert_non_null(h.svc = service(&e));
	assert_non_null(h.base = event_base_new());
	/* micad's listener without a responder: routes only */
	ocsp_http_opts_defaults(&ho);
	snprintf(ho.listen, sizeof(ho.listen), "127.0.0.1:0");
	ho.threads = 1;
	assert_non_null(http = ocsp_http_new(NULL, &ho));
	assert_true(ocsp_http_add_route(http, "/crl", server_cb, &h));
	assert_true(ocsp_http_start(http));
	port = ocsp_http_port(http);
	assert_non_null(conn = evhttp_connection_base_new(h.base, NULL,
	    "127.0.0.1", (unsigned short)port));

	assert_non_null(s = crl_service_get(h.svc, CRL_FULL));
	http_do(&h, conn, EVHTTP_REQ_GET, "/crl", NULL);
	assert_int_equal(h.code, 200);
	assert_string_equal(h.ctype, "application/pkix-crl");
	assert_string_equal(h.etag, s->etag);
	assert_non_null(strstr(h.cc, "max-age="));
	assert_int_equal(h.body_len, s->der_len);
	assert_memory_equal(h.body, s->der, s->der_len);
	snprintf(etag, sizeof(etag), "%s", h.etag);
	http_do(&h, conn, EVHTTP_REQ_GET, "/crl/full.crl?x=1", NULL);
	assert_int_equal(h.code, 200);
	assert_int_equal(h.body_len, s->der_len);
	http_do(&h, conn, EVHTTP_REQ_GET, "/crl/full.crl", etag);
	assert_int_equal(h.code, 304);
	assert_int_equal(h.body_len, 0);
	http_do(&h, conn, EVHTTP_REQ_GET, "/crl/full.pem", etag);
	assert_int_equal(h.code, 200);		/* another representation */
	assert_string_equal(h.ctype, "application/x-pem-file");
	assert_memory_equal(h.body, "-----BEGIN X509 CRL-----\n", 25);
	crl_snapshot_release(s);

	assert_non_null(s = crl_service_get(h.svc, CRL_DELTA));
	http_do(&h, conn, EVHTTP_REQ_GET, "/crl/delta.crl", "\"x\", W/\"y\"");
	assert_int_equal(h.code, 200);
	assert_int_equal(h.body_len, s->der_len);
	assert_memory_equal(h.body, s->der, s->der_len);
	crl_snapshot_release(s);
	http_do(&h, conn, EVHTTP_REQ_GET, "/crl/delta.pem", NULL);
	assert_int_equal(h.code, 200);
	assert_non_null(strstr((char *)h.body, "-----END X509 CRL-----\n"));
	/* every name, DER and + ".pem"; the old .pem names too */
	{
		static const struct {
			const char	*uri;
			int		 pem, delta;
		} names[] = {
			{ "/crl", 0, 0 }, { "/crl.pem", 1, 0 },
			{ "/crl/full.crl", 0, 0 }, { "/crl/full.crl.pem", 1, 0 },
			{ "/crl/delta.crl", 0, 1 },
			{ "/crl/delta.crl.pem", 1, 1 },
			{ "/crl/full.pem", 1, 0 }, { "/crl/delta.pem", 1, 1 },
		};
		static const char *bad[] = { "/crl/full", "/crl/delta",
		    "/crl/other.crl", "/crl.crl", "/crl/full.crl.pem.pem",
		    "/crl/", "/crl/.pem", "/crlx" };
		const struct crl_snapshot *fs, *ds;
		size_t k;

		assert_non_null(fs = crl_service_get(h.svc, CRL_FULL));
		assert_non_null(ds = crl_service_get(h.svc, CRL_DELTA));
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			s = names[k].delta ? ds : fs;
			http_do(&h, conn, EVHTTP_REQ_GET, names[k].uri, NULL);
			assert_int_equal(h.code, 200);
			assert_string_equal(h.ctype, names[k].pem ?
			    "application/x-pem-file" : "application/pkix-crl");
			if (names[k].pem)
				assert_memory_equal(h.body,
				    "-----BEGIN X509 CRL-----\n", 25);
			else {
				assert_int_equal(h.body_len, s->der_len);
				assert_memory_equal(h.body, s->der,
				    s->der_len);
			}
		}
		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			http_do(&h, conn, EVHTTP_REQ_GET, bad[k], NULL);
			assert_int_equal(h.code, 404);
		}
		/* max-age: a full CRL until the next build, a delta while
		 * valid (this service: 3600 and 600 s) */
		http_do(&h, conn, EVHTTP_REQ_GET, "/crl", NULL);
		assert_true(max_age(h.cc) <= INTERVAL &&
		    max_age(h.cc) >= INTERVAL - 60);
		http_do(&h, conn, EVHTTP_REQ_GET, "/crl/delta.crl", NULL);
		assert_true(max_age(h.cc) <= DELTA_AGE &&
		    max_age(h.cc) >= DELTA_AGE - 60);
		crl_snapshot_release(fs);
		crl_snapshot_release(ds);
	}
	http_do(&h, conn, EVHTTP_REQ_POST, "/crl", NULL);
	assert_int_equal(h.code, 405);
	/* HEAD: the length of the CRL, no body */
	assert_non_null(s = crl_service_get(h.svc, CRL_FULL));
	http_do(&h, conn, EVHTTP_REQ_HEAD, "/crl/full.crl", NULL);
	assert_int_equal(h.code, 200);
	assert_int_equal(h.body_len, 0);
	crl_snapshot_release(s);
	/* the OCSP paths are not served without a responder */
	http_do(&h, conn, EVHTTP_REQ_GET, "/ocsp/MAA=", NULL);
	assert_int_equal(h.code, 404);

	free(h.body);
	evhttp_connection_free(conn);
	ocsp_http_free(http);
	event_base_free(h.base);
	crl_service_free(h.svc);
	env_close(&e);
}

/*
 * Changes make deltas only; the thread builds the full CRL on its
 * schedule (full_interval), with no change at all.
 */
static void
test_thread(void **state)
{
	struct env e;
	struct crl_service *svc;
	const struct crl_snapshot *s;
	struct crl_opts o = {
		.full_interval = 3600,
		.delta_max_age = 3600,
	};
	uint64_t first, delta = 0;
	X509_CRL *crl;
	int i, n = 0;

	(void)state;
	env_open(&e, "EC");
	assert_non_null(svc = crl_service_new(e.st, e.ca.cert, e.ca.key, &o));
	assert_non_null(s = crl_service_peek(svc, CRL_FULL));
	first = s->number;
	crl_snapshot_release(s);
	for (i = 1; i <= 10; i++) {
		add_cert(e.st, (unsigned int)i);
		set_status(e.st, (unsigned int)i, CERT_REVOKED, 1, T0, 0);
		assert_int_equal(crl_service_changed(svc), 1);
	}
	/* the delta has all ten at once; the full CRL waits an hour */
	assert_non_null(s = crl_service_get(svc, CRL_DELTA));
	crl = parse(s->der, s->der_len, &e.ca);
	assert_int_equal(num_entries(crl), 10);
	assert_int_equal(s->base_number, first);
	X509_CRL_free(crl);
	crl_snapshot_release(s);
	assert_non_null(s = crl_service_peek(svc, CRL_FULL));
	assert_int_equal(s->number, first);
	assert_int_equal(s->fresh_until - s->this_update, 3600);
	crl_snapshot_release(s);
	crl_service_free(svc);

	/* full_interval = 1 s: new full CRLs (and a delta after each)
	 * come with nothing changed; wait for one, bounded */
	o.full_interval = 1;
	assert_non_null(svc = crl_service_new(e.st, e.ca.cert, e.ca.key, &o));
	assert_non_null(s = crl_service_peek(svc, CRL_FULL));
	first = s->number;
	crl_snapshot_release(s);
	for (i = 0; i < 1000 && n != 10; i++) {
		usleep(10000);
		assert_non_null(s = crl_service_get(svc, CRL_FULL));
		if (s->number > first) {
			crl = parse(s->der, s->der_len, &e.ca);
			n = num_entries(crl);
			X509_CRL_free(crl);
			assert_int_equal(s->next_update - s->this_update, 1);
		}
		crl_snapshot_release(s);
	}
	assert_int_equal(n, 10);
	for (i = 0; i < 1000 && delta <= first + 1; i++) {
		assert_non_null(s = crl_service_peek(svc, CRL_DELTA));
		delta = s->number;
		crl_snapshot_release(s);
		if (delta <= first + 1)
			usleep(10000);
	}
	assert_true(delta > first + 1);
	crl_service_free(svc);
	env_close(&e);
}

/*
 * next_update shorter than full_interval: a CRL must be replaced by its
 * nextUpdate (RFC 5280 5.1.2.5), so the builds come every next_update;
 * unset, the validity is full_interval.
 */
static void
test_intervals(void **state)
{
	struct env e;
	struct crl_service *svc;
	const struct crl_snapshot *s;
	struct crl_opts o = {
		.full_interval = 7200,
		.next_update = 3600,
		.no_thread = 1,
		.clock = test_clock,
	};

	(void)state;
	env_open(&e, "EC");
	assert_non_null(svc = crl_service_new(e.st, e.ca.cert, e.ca.key, &o));
	assert_non_null(s = crl_service_peek(svc, CRL_FULL));
	assert_int_equal(s->next_update - s->this_update, 3600);
	assert_int_equal(s->fresh_until - s->this_update, 3600);
	crl_snapshot_release(s);
	assert_non_null(s = crl_service_peek(svc, CRL_DELTA));
	assert_int_equal(s->next_update - s->this_update, 60);	/* default */
	assert_int_equal(s->fresh_until, s->next_update);
	crl_snapshot_release(s);
	crl_service_free(svc);
	o.next_update = 0;
	assert_non_null(svc = crl_service_new(e.st, e.ca.cert, e.ca.key, &o));
	assert_non_null(s = crl_service_peek(svc, CRL_FULL));
	assert_int_equal(s->next_update - s->this_update, 7200);
	assert_int_equal(s->fresh_until - s->this_update, 7200);
	crl_snapshot_release(s);
	crl_service_free(svc);
	env_close(&e);
}

/*
 * A background start (micad): crl_service_new returns at once; until the
 * first build, the CRLs published before are served if they are the last
 * ones signed and current; a status change waits for the first build;
 * numbers go on above.  The clock holds the first build (its third call:
 * crl_service_new, the seeds, then the build) until the gate opens.
 */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open, gate_calls, ready_calls, ready_ok;

static int64_t
gate_clock(void)
{
	pthread_mutex_lock(&gate_mu);
	if (++gate_calls >= 3)
		while (!gate_open)
			pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	return test_now;
}

static void
gate_set(int open)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = open;
	if (!open)
		gate_calls = 0;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static void
on_ready(void *arg, int ok)
{
	(void)arg;
	ready_calls++;
	ready_ok = ok;
}

static void
test_background(void **state)
{
	struct env e;
	struct crl_service *svc;
	const struct crl_snapshot *s;
	struct crl_opts o = {
		.full_interval = INTERVAL,
		.next_update = NEXT_UPDATE,
		.delta_max_age = DELTA_AGE,
		.clock = gate_clock,
		.background = 1,
		.seed_name = { "full.crl", "delta.crl" },
		.ready = on_ready,
	};
	uint64_t full, delta;
	X509_CRL *crl;
	unsigned int i;
	int pending;

	(void)state;
	env_open(&e, "EC");
	for (i = 1; i <= 3; i++) {
		add_cert(e.st, i);
		set_status(e.st, i, CERT_REVOKED, 1, T0, 0);
	}
	/* a run before: full and delta published */
	assert_non_null(svc = service(&e));
	assert_non_null(s = crl_service_peek(svc, CRL_FULL));
	full = s->number;
	crl_snapshot_release(s);
	assert_non_null(s = crl_service_peek(svc, CRL_DELTA));
	delta = s->number;
	crl_snapshot_release(s);
	crl_service_free(svc);

	/* restart: they are served while the first build is held */
	o.publish_dir = o.seed_dir = e.pub;
	o.seed_last[CRL_FULL] = full;
	o.seed_last[CRL_DELTA] = delta;
	gate_set(0);
	ready_calls = 0;
	assert_non_null(svc = crl_service_new(e.st, e.ca.cert, e.ca.key, &o));
	assert_non_null(s = crl_service_get(svc, CRL_FULL));
	assert_int_equal(s->number, full);
	assert_int_equal(s->from_file, 1);
	crl = parse(s->der, s->der_len, &e.ca);
	assert_int_equal(num_entries(crl), 3);
	X509_CRL_free(crl);
	crl_snapshot_release(s);
	assert_non_null(s = crl_service_peek(svc, CRL_DELTA));
	assert_int_equal(s->number, delta);
	assert_int_equal(s->base_number, full);
	crl_snapshot_release(s);
	assert_int_equal(ready_calls, 0);
	/* a change waits for the first build, then its delta comes */
	add_cert(e.st, 4);
	set_status(e.st, 4, CERT_REVOKED, 1, T0, 0);
	gate_set(1);
	assert_int_equal(crl_service_changed(svc), 1);
	assert_int_equal(ready_calls, 1);
	assert_int_equal(ready_ok, 1);
	assert_non_null(s = crl_service_get(svc, CRL_FULL));
	assert_true(s->number > delta);
	assert_int_equal(s->from_file, 0);
	crl = parse(s->der, s->der_len, &e.ca);
	assert_int_equal(num_entries(crl), 4);
	X509_CRL_free(crl);
	crl_snapshot_release(s);
	/* the delta keeps the base of before (relying parties hold it):
	 * the one change since */
	assert_non_null(s = crl_service_get(svc, CRL_DELTA));
	assert_true(s->number > full);
	assert_int_equal(s->base_number, full);
	crl = parse(s->der, s->der_len, &e.ca);
	assert_int_equal(num_entries(crl), 1);
	X509_CRL_free(crl);
	full = s->number - 1;
	delta = s->number;
	crl_snapshot_release(s);
	crl_service_free(svc);

	/* the files are not the last ones signed (a newer full was signed,
	 * never written): the full one is not served, the first build's is */
	o.seed_last[CRL_FULL] = full + 100;
	o.seed_last[CRL_DELTA] = delta;
	gate_set(0);
	assert_non_null(svc = crl_service_new(e.st, e.ca.cert, e.ca.key, &o));
	assert_non_null(s = crl_service_peek(svc, CRL_DELTA));
	assert_int_equal(s->number, delta);
	crl_snapshot_release(s);
	/* the HTTP threads' look: the full one is coming, no waiting; the
	 * delta is there */
	pending = -1;
	assert_null(crl_service_peek_nowait(svc, CRL_FULL, &pending));
	assert_int_equal(pending, 1);
	assert_non_null(s = crl_service_peek_nowait(svc, CRL_DELTA,
	    &pending));
	assert_int_equal(pending, 0);
	assert_int_equal(s->number, delta);
	crl_snapshot_release(s);
	assert_null(crl_service_peek_nowait(svc, (enum crl_kind)2, &pending));
	assert_int_equal(pending, 0);
	gate_set(1);
	assert_non_null(s = crl_service_peek(svc, CRL_FULL));
	assert_true(s->number > delta);
	crl_snapshot_release(s);
	assert_non_null(s = crl_service_peek_nowait(svc, CRL_FULL, &pending));
	assert_int_equal(pending, 0);
	assert_true(s->number > delta);
	crl_snapshot_release(s);
	/* only crl_http_handle counts its refusals */
	assert_int_equal(crl_service_not_ready_total(svc), 0);
	crl_service_free(svc);

	/* a stop before the first build began: no number taken, the ready
	 * callback not called, nothing newer published */
	o.seed_last[CRL_FULL] = o.seed_last[CRL_DELTA] = 0;
	gate_set(0);
	ready_calls = 0;
	assert_non_null(svc = crl_service_new(e.st, e.ca.cert, e.ca.key, &o));
	assert_null(crl_service_peek_nowait(svc, CRL_FULL, &pending));
	assert_int_equal(pending, 1);
	crl_service_stopping(svc);
	assert_null(crl_service_peek(svc, CRL_FULL));
	/* stopping: none is coming */
	assert_null(crl_service_peek_nowait(svc, CRL_FULL, &pending));
	assert_int_equal(pending, 0);
	gate_set(1);
	crl_service_free(svc);
	assert_int_equal(ready_calls, 0);
	o.background = 0;
	o.clock = test_clock;
	assert_non_null(svc = crl_service_new(e.st, e.ca.cert, e.ca.key, &o));
	assert_non_null(s = crl_service_peek(svc, CRL_DELTA));
	/* the first build of this one took the next two numbers */
	assert_true(s->number > delta + 1);
	crl_snapshot_release(s);
	crl_service_free(svc);
	env_close(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_and_delta),
		cmocka_unit_test(test_peers),
		cmocka_unit_test(test_ed25519),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_snapshot_cow),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_thread),
		cmocka_unit_test(test_base_window),
		cmocka_unit_test(test_reason_change),
		cmocka_unit_test(test_intervals),
		cmocka_unit_test(test_background),
	};

	log_init("test_crl", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
