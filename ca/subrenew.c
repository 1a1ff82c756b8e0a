/*
 * subrenew.c - RENEW: a subscriber's certificate replaced before it
 * expires, on proof of possession of its key (see subrenew.h and
 * docs/PROTOCOL.md).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "ca/ca.h"
#include "ca/micad.h"
#include "ca/notify.h"
#include "ca/proto.h"
#include "ca/subrenew.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/sigmd.h"
#include "conf/conf.h"
#include "store/store.h"

#define ALLOW_PREFIX	"renew_allow:"	/* meta key: + serial hex */
/* meta key + serial hex: renewed and left to expire (renew_revoke_old =
 * no).  Such a pair is not linked in the certs records: there a replaced
 * subscriber certificate is revoked by definition (mica-admin check);
 * this key stops a second renewal and the audit names both. */
#define KEPT_PREFIX	"renewed_kept:"

struct renew_ctx {
	struct micad		*d;
	uint64_t		 cid;
	struct micad_settings	 set;
	int64_t			 now;
	uint8_t			*cert;
	size_t			 cert_len;
	uint8_t			*csr;
	size_t			 csr_len;
	X509_NAME		*subject;	/* the old certificate's */
	uint8_t			 old_serial[STORE_SERIAL_LEN];
	subrenew_fn		 fn;
	void			*arg;
	struct micad_changed	 chg;
	/* results */
	uint8_t			 new_serial[STORE_SERIAL_LEN];
	uint8_t			*der;
	size_t			 der_len;
	char			 account[STORE_NAME_MAX + 1];
	int			 revoked_old;
	int			 allowed;	/* by an administrator */
	int			 resent;	/* an earlier renewal, again */
	uint16_t		 code;
	char			 err[CA_ERR_MAX];
};

static void
meta_key(char *out, size_t out_len, const char *prefix,
    const uint8_t serial[STORE_SERIAL_LEN])
{
	char hex[SERIAL_HEX_LEN];

	serial_hex(hex, serial);
	snprintf(out, out_len, "%s%s", prefix, hex);
}

static void
allow_key(char *out, size_t out_len, const uint8_t serial[STORE_SERIAL_LEN])
{
	meta_key(out, out_len, ALLOW_PREFIX, serial);
}

int
subrenew_allow_txn(struct store_txn *txn, const uint8_t serial[16],
    int64_t until)
{
	char key[64];

	allow_key(key, sizeof(key), serial);
	return store_meta_set_u64(txn, key, until > 0 ? (uint64_t)until : 0);
}

/* UTC "YYYY-MM-DD HH:MM:SS UTC" for messages. */
static void
fmt_time(char *out, size_t out_len, int64_t t)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, out_len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, out_len, "%" PRId64, t);
}

static void
ctx_free(struct renew_ctx *c)
{
	if (c == NULL)
		return;
	free(c->cert);
	free(c->csr);
	free(c->der);
	X509_NAME_free(c->subject);
	free(c);
}

/*
 * The answer to an earlier RENEW was lost (micad stopped after the
 * commit): the same proof for a CSR with the key of old's replacement
 * made by a renewal gets that replacement again, nothing is signed.
 * 1 with c->der set when so.
 */
static int
renew_again(struct renew_ctx *c, const struct cert_rec *old,
    struct store_txn *txn, enum store_rc *out_rc)
{
	struct cert_rec		 nw;
	const unsigned char	*p;
	X509			*x = NULL;
	X509_REQ		*req = NULL;
	int			 same = 0;

	memset(&nw, 0, sizeof(nw));
	*out_rc = STORE_OK;
	if (serial_is_zero(old->replaced_by))
		return 0;
	if ((*out_rc = store_cert_get(txn, old->replaced_by, &nw)) !=
	    STORE_OK) {
		if (*out_rc == STORE_NOTFOUND)
			*out_rc = STORE_OK;
		goto out;
	}
	if (memcmp(nw.replaces, c->old_serial, STORE_SERIAL_LEN) != 0 ||
	    strcmp(nw.account, old->account) != 0 ||
	    nw.der_len > LONG_MAX || c->csr_len > LONG_MAX)
		goto out;
	p = nw.der;
	if ((x = d2i_X509(NULL, &p, (long)nw.der_len)) == NULL)
		goto out;
	p = c->csr;
	if ((req = d2i_X509_REQ(NULL, &p, (long)c->csr_len)) == NULL ||
	    X509_REQ_get0_pubkey(req) == NULL ||
	    EVP_PKEY_eq(X509_get0_pubkey(x), X509_REQ_get0_pubkey(req)) != 1)
		goto out;
	if ((c->der = malloc(nw.der_len)) == NULL) {
		*out_rc = STORE_INVALID;
		goto out;
	}
	memcpy(c->der, nw.der, nw.der_len);
	c->der_len = nw.der_len;
	memcpy(c->new_serial, nw.serial, STORE_SERIAL_LEN);
	snprintf(c->account, sizeof(c->account), "%s", old->account);
	c->resent = 1;
	same = 1;
out:
	ERR_clear_error();
	X509_free(x);
	X509_REQ_free(req);
	cert_rec_cleanup(&nw);
	return same;
}

/* The rules that need the store; STORE_ABORT with c->err on a refusal. */
static enum store_rc
renew_check(struct renew_ctx *c, const struct cert_rec *old,
    struct store_txn *txn)
{
	char	hex[SERIAL_HEX_LEN], nhex[SERIAL_HEX_LEN], key[64];
	char	when[32], opens[32];
	uint64_t until = 0;
	enum store_rc rc;
	int64_t	window = (int64_t)c->set.policy.renew_window * 86400;

	serial_hex(hex, c->old_serial);
	c->code = PROTO_E_BAD_REQUEST;
	if (old->der_len != c->cert_len ||
	    memcmp(old->der, c->cert, c->cert_len) != 0) {
		snprintf(c->err, sizeof(c->err), "certificate %s is not the "
		    "one this CA issued with that serial", hex);
		return STORE_ABORT;
	}
	if (strcmp(old->account, "(ca)") == 0) {
		snprintf(c->err, sizeof(c->err), "certificate %s is one of "
		    "micad's own certificates, renewed by micad", hex);
		return STORE_ABORT;
	}
	if (old->st.status == CERT_REVOKED) {
		snprintf(c->err, sizeof(c->err), "certificate %s is revoked: "
		    "a revoked certificate cannot be renewed", hex);
		return STORE_ABORT;
	}
	if (old->st.status != CERT_GOOD) {
		snprintf(c->err, sizeof(c->err), "certificate %s is on hold: "
		    "it cannot be renewed until the hold is released", hex);
		return STORE_ABORT;
	}
	if (old->st.not_after < c->now) {
		fmt_time(when, sizeof(when), old->st.not_after);
		snprintf(c->err, sizeof(c->err), "certificate %s expired on "
		    "%s: an expired certificate cannot be renewed; ask the CA "
		    "for a new one", hex, when);
		return STORE_ABORT;
	}
	if (!serial_is_zero(old->replaced_by)) {
		serial_hex(nhex, old->replaced_by);
		snprintf(c->err, sizeof(c->err), "certificate %s was already "
		    "replaced by %s", hex, nhex);
		return STORE_ABORT;
	}
	meta_key(key, sizeof(key), KEPT_PREFIX, c->old_serial);
	if ((rc = store_meta_get_u64(txn, key, &until)) != STORE_OK)
		return rc;
	if (until != 0) {
		snprintf(c->err, sizeof(c->err), "certificate %s was already "
		    "renewed (it is left to expire)", hex);
		return STORE_ABORT;
	}
	allow_key(key, sizeof(key), c->old_serial);
	if ((rc = store_meta_get_u64(txn, key, &until)) != STORE_OK)
		return rc;
	c->allowed = until != 0 && until >= (uint64_t)c->now;
	if (c->set.policy.renew == RENEW_MANUAL && !c->allowed) {
		snprintf(c->err, sizeof(c->err), "renewal needs an "
		    "administrator on this CA ([policy] renew = manual): ask "
		    "the CA operator to run: mica-admin allow-renew %s", hex);
		return STORE_ABORT;
	}
	if (!c->allowed && old->st.not_after - c->now > window) {
		fmt_time(when, sizeof(when), old->st.not_after);
		fmt_time(opens, sizeof(opens), old->st.not_after - window);
		snprintf(c->err, sizeof(c->err), "certificate %s expires on "
		    "%s: renewal opens %d days before, on %s (an administrator "
		    "can allow it earlier: mica-admin allow-renew %s)", hex,
		    when, c->set.policy.renew_window, opens, hex);
		return STORE_ABORT;
	}
	c->code = 0;
	return STORE_OK;
}

static enum store_rc
renew_txn(struct store_txn *txn, void *arg)
{
	struct renew_ctx	*c = arg;
	struct cert_rec		 old;
	char			 hex[SERIAL_HEX_LEN], nhex[SERIAL_HEX_LEN];
	char			 details[256], key[64];
	enum store_rc		 rc;

	memset(&old, 0, sizeof(old));
	free(c->der);		/* from an earlier run of this callback */
	c->der = NULL;
	c->chg.n = 0;
	c->revoked_old = 0;
	c->resent = 0;
	c->code = PROTO_E_INTERNAL;
	c->err[0] = '\0';
	serial_hex(hex, c->old_serial);
	rc = store_cert_get(txn, c->old_serial, &old);
	if (rc == STORE_NOTFOUND) {
		c->code = PROTO_E_BAD_REQUEST;
		snprintf(c->err, sizeof(c->err), "certificate %s is not "
		    "known to this CA", hex);
		rc = STORE_ABORT;
		goto out;
	}
	if (rc != STORE_OK)
		goto out;
	if (old.der_len == c->cert_len &&
	    memcmp(old.der, c->cert, c->cert_len) == 0 &&
	    renew_again(c, &old, txn, &rc)) {
		c->code = 0;
		rc = STORE_ABORT;	/* nothing to write */
		goto out;
	}
	if (rc != STORE_OK || (rc = renew_check(c, &old, txn)) != STORE_OK)
		goto out;
	c->code = PROTO_E_INTERNAL;
	snprintf(c->account, sizeof(c->account), "%s", old.account);
	rc = micad_issue_txn_with(c->d, &c->set, txn, c->csr, c->csr_len,
	    old.account, c->set.policy.request_days, old.account, c->subject,
	    c->new_serial, &c->der, &c->der_len, c->err, sizeof(c->err));
	if (rc != STORE_OK) {
		if (rc == STORE_INVALID) {
			c->code = PROTO_E_BAD_REQUEST;
			rc = STORE_ABORT;
		}
		goto out;
	}
	serial_hex(nhex, c->new_serial);
	if (c->set.policy.renew_revoke_old) {
		rc = store_cert_set_status(txn, c->old_serial, CERT_REVOKED,
		    REASON_SUPERSEDED, c->now, 0, NULL);
		if (rc != STORE_OK)
			goto out;
		if (!micad_changed_add(&c->chg, c->old_serial)) {
			rc = STORE_INVALID;
			goto out;
		}
		c->revoked_old = 1;
		snprintf(details, sizeof(details), "reason=superseded "
		    "replaced_by=%s renewed", nhex);
		if ((rc = store_audit_append(txn, old.account, "cert.revoked",
		    hex, details, NULL)) != STORE_OK)
			goto out;
	}
	if (c->revoked_old)
		rc = store_cert_link(txn, c->old_serial, c->new_serial);
	else {
		meta_key(key, sizeof(key), KEPT_PREFIX, c->old_serial);
		rc = store_meta_set_u64(txn, key, (uint64_t)c->now);
	}
	if (rc != STORE_OK)
		goto out;
	if (c->allowed) {
		allow_key(key, sizeof(key), c->old_serial);
		if ((rc = store_meta_set_u64(txn, key, 0)) != STORE_OK)
			goto out;
	}
	snprintf(details, sizeof(details), "account=%s new=%s old=%s "
	    "allowed_by_admin=%d", old.account, nhex,
	    c->revoked_old ? "revoked (superseded)" : "left to expire",
	    c->allowed);
	if ((rc = store_audit_append(txn, old.account, "cert.renewed", hex,
	    details, NULL)) != STORE_OK)
		goto out;
	c->code = 0;
out:
	cert_rec_cleanup(&old);
	return rc;
}

/* Loop, after the commit (OCSP and CRLs updated on the writer). */
static void
renew_written(void *arg, enum store_rc rc)
{
	struct renew_ctx	*c = arg;
	struct notify_info	 ni;
	char			 hex[SERIAL_HEX_LEN], nhex[SERIAL_HEX_LEN];
	char			 esc[CA_ERR_MAX];

	serial_hex(hex, c->old_serial);
	if (rc != STORE_OK && rc != STORE_ABORT) {
		log_warnx("cid=%" PRIu64 " renew serial=%s: store: %s", c->cid,
		    hex, store_strerror(rc));
		c->code = PROTO_E_INTERNAL;
		snprintf(c->err, sizeof(c->err), "internal error");
	}
	if (c->code != 0) {
		if (c->code == PROTO_E_INTERNAL && c->err[0] == '\0')
			snprintf(c->err, sizeof(c->err), "internal error");
		proto_log_escape(esc, sizeof(esc), c->err, sizeof(c->err));
		log_info("cid=%" PRIu64 " renew refused serial=%s why=\"%s\"",
		    c->cid, hex, esc);
		c->fn(c->arg, c->code, c->err, NULL, 0);
		goto out;
	}
	serial_hex(nhex, c->new_serial);
	if (c->resent) {
		log_info("cid=%" PRIu64 " renew account=%s old=%s: renewed "
		    "before as %s, sent again", c->cid, c->account, hex, nhex);
		c->fn(c->arg, 0, "", c->der, c->der_len);
		goto out;
	}
	log_info("cid=%" PRIu64 " renewed account=%s old=%s new=%s "
	    "old_revoked=%d", c->cid, c->account, hex, nhex, c->revoked_old);
	memset(&ni, 0, sizeof(ni));
	ni.event = "cert.renewed";
	ni.account = c->account;
	ni.serial = c->old_serial;
	ni.new_serial = c->new_serial;
	ni.actor = c->account;
	ni.time = c->now;
	notify_event(c->d->notify, &ni);
	c->fn(c->arg, 0, "", c->der, c->der_len);
out:
	ctx_free(c);
}

/* The proof of possession: sig over proto_renew_tbs with cert's key. */
static int
sig_verifies(X509 *cert, const uint8_t nonce[32], const uint8_t *cert_der,
    size_t cert_len, const uint8_t *csr, size_t csr_len, const uint8_t *sig,
    size_t sig_len)
{
	uint8_t		 tbs[PROTO_RENEW_TBS_LEN];
	EVP_PKEY	*key = X509_get0_pubkey(cert);
	EVP_MD_CTX	*mc = NULL;
	const char	*md;
	int		 ok = 0;

	if (key == NULL)
		goto out;
	/* the digest mica signs with for this key; none for EdDSA */
	md = sigmd_name(key);
	proto_renew_tbs(tbs, nonce, cert_der, cert_len, csr, csr_len);
	if ((mc = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit_ex(mc, NULL, md, NULL, NULL, key, NULL) != 1)
		goto out;
	ok = EVP_DigestVerify(mc, sig, sig_len, tbs, sizeof(tbs)) == 1;
out:
	ERR_clear_error();	/* a bad signature is the client's problem */
	EVP_MD_CTX_free(mc);
	return ok;
}

int
subrenew_start(struct micad *d, uint64_t cid, const uint8_t nonce[32],
    const uint8_t *cert, size_t cert_len, const uint8_t *csr,
    size_t csr_len, const uint8_t *sig, size_t sig_len, subrenew_fn fn,
    void *arg, uint16_t *out_code, char *err, size_t err_len)
{
	struct renew_ctx	*c = NULL;
	X509			*x = NULL;
	X509			*ca = ca_signer_get0_cert(d->signer);
	const unsigned char	*p = cert;
	int			 queued = 0;

	*out_code = PROTO_E_INTERNAL;
	snprintf(err, err_len, "internal error");
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("renew");
		goto out;
	}
	c->d = d;
	c->cid = cid;
	c->fn = fn;
	c->arg = arg;
	c->now = time(NULL);
	if (!micad_settings_copy(d, &c->set, err, err_len)) {
		log_warnx("cid=%" PRIu64 " renew: %s", cid, err);
		snprintf(err, err_len, "internal error");
		goto out;
	}
	*out_code = PROTO_E_BAD_REQUEST;
	if (c->set.policy.renew == RENEW_OFF) {
		snprintf(err, err_len, "renewal is turned off on this CA "
		    "([policy] renew = off): ask the CA operator for a new "
		    "certificate");
		goto out;
	}
	if (cert_len > LONG_MAX ||
	    (x = d2i_X509(NULL, &p, (long)cert_len)) == NULL ||
	    p != cert + cert_len) {
		ERR_clear_error();
		snprintf(err, err_len, "RENEW: CERT is not one DER "
		    "certificate (RFC 5280 section 4.1)");
		goto out;
	}
	if (ca == NULL || X509_NAME_cmp(X509_get_issuer_name(x),
	    X509_get_subject_name(ca)) != 0 ||
	    X509_verify(x, X509_get0_pubkey(ca)) != 1) {
		ERR_clear_error();
		snprintf(err, err_len, "the certificate was not issued by "
		    "this CA (RFC 5280 section 6.1: its issuer or signature "
		    "does not match the CA certificate)");
		goto out;
	}
	if (!sig_verifies(x, nonce, cert, cert_len, csr, csr_len, sig,
	    sig_len)) {
		snprintf(err, err_len, "proof of possession failed: the "
		    "SIGNATURE does not verify with the certificate's public "
		    "key (sign this connection's CHALLENGE nonce, the "
		    "certificate and the CSR)");
		goto out;
	}
	if (!ca_cert_serial(x, c->old_serial)) {
		snprintf(err, err_len, "the certificate's serial is not one "
		    "this CA issues");
		goto out;
	}
	*out_code = PROTO_E_INTERNAL;
	snprintf(err, err_len, "internal error");
	if ((c->subject = X509_NAME_dup(X509_get_subject_name(x))) == NULL ||
	    (c->cert = malloc(cert_len)) == NULL ||
	    (c->csr = malloc(csr_len ? csr_len : 1)) == NULL) {
		log_warnx("cid=%" PRIu64 " renew: out of memory", cid);
		goto out;
	}
	memcpy(c->cert, cert, cert_len);
	c->cert_len = cert_len;
	if (csr_len > 0)
		memcpy(c->csr, csr, csr_len);
	c->csr_len = csr_len;
	if (!micad_write(d, renew_txn, c, &c->chg, renew_written)) {
		snprintf(err, err_len, "server busy: micad is stopping");
		*out_code = PROTO_E_BUSY;
		goto out;
	}
	queued = 1;
	*out_code = 0;
	err[0] = '\0';
out:
	X509_free(x);
	if (!queued)
		ctx_free(c);
	return queued;
}
