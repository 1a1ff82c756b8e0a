/*
 * renew.c - renewal of the OCSP signer and TLS server certificates at
 * micad start (see renew.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <event2/event.h>

#include "ca/ca.h"
#include "ca/micad.h"
#include "ca/privdrop.h"
#include "ca/listener.h"
#include "ca/renew.h"
#include "ca/sign_client.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/sigmd.h"
#include "common/workq.h"
#include "ocsp/ocsp.h"
#include "conf/conf.h"
#include "store/store.h"

#define DAY	86400
#define CA_WARN_DAYS	90	/* warn when the CA expires sooner */
#define RENEW_BACKDATE	60	/* s; notBefore = now - this (casign.c) */

int
renew_is_due(X509 *cert, int64_t now, int renew_before_days)
{
	int64_t nb, na, limit;

	if (!ca_cert_times(cert, &nb, &na))
		return 1;
	/* Outside its validity (a clock that jumped, either way): no
	 * client accepts it, whatever renew_before_days says. */
	if (now < nb || now >= na)
		return 1;
	if (renew_before_days > 0)
		limit = (int64_t)renew_before_days * DAY;
	else {
		limit = (na - nb) / 4;
		if (limit > 30 * DAY)
			limit = 30 * DAY;
	}
	return na - now < limit;
}

/* A key of the same type as cert's. */
static EVP_PKEY *
same_type_key(X509 *cert)
{
	EVP_PKEY *pk = X509_get0_pubkey(cert), *out = NULL;
	char group[64] = "";
	const char *type = "ec-p256";

	if (pk == NULL)
		return NULL;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_ED25519:
		type = "ed25519";
		break;
	case EVP_PKEY_RSA:
		type = "rsa-3072";
		break;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(pk, group, sizeof(group),
		    NULL) == 1 && strcmp(group, "secp384r1") == 0)
			type = "ec-p384";
		break;
	default:
		break;
	}
	if (!ca_keygen(&out, type))
		return NULL;
	return out;
}

/* SANs that replace the old certificate's (tls renew --name). */
struct renew_sans {
	const char *const	*sans;	/* "DNS:x", "IP:x" */
	size_t			 num;
};

/* The old certificate again, with key, serial and validity new, and with
 * sans (if not NULL) instead of its subjectAltName. */
static X509 *
make_cert(X509 *old, const struct ca_signer *signer, int ocsp, EVP_PKEY *key,
    const uint8_t serial[16], int64_t now, const struct renew_sans *sans)
{
	X509 *ca = ca_signer_get0_cert(signer);
	char err[CA_ERR_MAX], serr[CA_ERR_MAX];
	X509 *x = NULL, *ret = NULL;
	X509_EXTENSION *ski = NULL;
	X509V3_CTX v3;
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	int64_t nb, na, cnb, cna;
	int i;

	if (!ca_cert_times(old, &nb, &na) || !ca_cert_times(ca, &cnb, &cna))
		goto out;
	na = now + (na - nb);
	if (na > cna)
		na = cna;
	/* Backdated like every certificate mica issues, never before the
	 * CA's own notBefore. */
	nb = now - RENEW_BACKDATE;
	if (nb < cnb)
		nb = cnb;
	if ((x = X509_new()) == NULL ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    (bn = BN_bin2bn(serial, 16, NULL)) == NULL ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_set_serialNumber(x, ai) ||
	    !X509_set_subject_name(x, X509_get_subject_name(old)) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca)) ||
	    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) == NULL ||
	    !X509_set_pubkey(x, key))
		goto out;
	for (i = 0; i < X509_get_ext_count(old); i++) {
		X509_EXTENSION *e = X509_get_ext(old, i);

		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));

		if (nid == NID_subject_key_identifier ||
		    (sans != NULL && nid == NID_subject_alt_name))
			continue;
		if (!X509_add_ext(x, e, -1))
			goto out;
	}
	if (sans != NULL && !ca_add_sans(x, sans->sans, sans->num, serr,
	    sizeof(serr))) {
		log_warnx("renew: %s", serr);
		goto out;
	}
	X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
	if ((ski = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier,
	    "hash")) == NULL || !X509_add_ext(x, ski, -1))
		goto out;
	if (!ca_signer_sign_cert(signer, &x, ocsp, err, sizeof(err))) {
		log_warnx("renew: %s", err);
		goto out;
	}
	ret = x;
	x = NULL;
 out:
	if (ret == NULL)
		log_ssl("renew: building the certificate");
	X509_EXTENSION_free(ski);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	X509_free(x);
	return ret;
}

struct renew_rec {
	struct cert_rec	 rec;
	uint8_t		 old[16];
	const char	*what;
};

static enum store_rc
renew_txn(struct store_txn *txn, void *arg)
{
	struct renew_rec *r = arg;
	struct cert_state st;
	char hex[SERIAL_HEX_LEN], ohex[SERIAL_HEX_LEN], det[128];
	enum store_rc rc;

	if ((rc = store_cert_add(txn, &r->rec)) != STORE_OK)
		return rc;
	serial_hex(hex, r->rec.serial);
	serial_hex(ohex, r->old);
	rc = store_cert_state(txn, r->old, &st);
	if (rc == STORE_OK)
		rc = store_cert_link(txn, r->old, r->rec.serial);
	else if (rc == STORE_NOTFOUND)
		rc = STORE_OK;	/* an old cert made outside mica */
	if (rc != STORE_OK)
		return rc;
	snprintf(det, sizeof(det), "%s renewed, replaces=%s", r->what, ohex);
	return store_audit_append(txn, "micad", "cert.renew", hex, det, NULL);
}

static int
fsync_dir_of(const char *path)
{
	char tmp[CONF_PATH_MAX];
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s", path);
	if ((fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY)) == -1)
		return 0;
	if (fsync(fd) == 0)
		rc = 1;
	close(fd);
	return rc;
}

/* Renews one certificate; on success the new cert and key (owned). */
/*
 * Serials this process made.  A certificate made here is not renewed
 * again while in the first half of its life: with renew_before_days at
 * or above the lifetime, every fresh certificate would be "due" and the
 * timer would renew it at every check.
 */
static uint8_t made[8][STORE_SERIAL_LEN];
static size_t num_made;

static void
note_made(const uint8_t serial[STORE_SERIAL_LEN])
{
	memcpy(made[num_made % 8], serial, STORE_SERIAL_LEN);
	num_made++;
}

static int
made_here_recently(const char *path, int64_t now)
{
	X509 *x = NULL;
	uint8_t sn[STORE_SERIAL_LEN];
	int64_t nb, na;
	size_t i;
	int rc = 0;
	char err[CA_ERR_MAX];

	if (!ca_cert_read(&x, path, err, sizeof(err)))
		return 0;
	/* Only inside its validity: one made before a clock jump back has
	 * notBefore in the future and must be renewed at once. */
	if (ca_cert_serial(x, sn) && ca_cert_times(x, &nb, &na) &&
	    now >= nb && now < na && now - nb < (na - nb) / 2)
		for (i = 0; i < num_made && i < 8; i++)
			if (memcmp(made[i], sn, sizeof(sn)) == 0)
				rc = 1;
	X509_free(x);
	return rc;
}

static int
renew_one(struct micad *d, const struct privdrop *pd, const char *what,
    const char *cert_path, const char *key_path,
    const struct renew_sans *sans, X509 **out_cert, EVP_PKEY **out_key,
    char *err, size_t err_len)
{
	struct renew_rec r;
	X509 *old = NULL, *x = NULL;
	EVP_PKEY *key = NULL;
	int is_ocsp = key_path == d->conf->ca.ocsp_key;
	int remote_ocsp = is_ocsp && d->sclient != NULL;
	char tkey[CONF_PATH_MAX + 8], tcert[CONF_PATH_MAX + 8];
	char hex[SERIAL_HEX_LEN], where[CA_KEY_URI_MAX + 32];
	enum store_rc rc = STORE_EXISTS;
	int tries, ret = 0, token = ca_key_is_uri(key_path);
	int64_t now = time(NULL);
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	memset(&r, 0, sizeof(r));
	tkey[0] = tcert[0] = '\0';
	if (!ca_cert_read(&old, cert_path, err, err_len))
		goto out;
	/* The OCSP signer's key is made by the signer process (this one
	 * gets the public key); the TLS key lives here. */
	if (!ca_cert_serial(old, r.old))
		goto nokey;
	if (remote_ocsp) {
		/* a token key: the signer certifies the same key again */
		if ((key = sign_client_ocsp_newkey(d->sclient, err,
		    err_len)) == NULL)
			goto out;
	} else if (token) {
		snprintf(err, err_len, "%s: a key in a token is renewed "
		    "through the signer process", what);
		goto out;
	} else if ((key = same_type_key(old)) == NULL) {
 nokey:
		snprintf(err, err_len, "%s: cannot make a new key", what);
		goto out;
	}
	for (tries = 0; tries < 4 && rc == STORE_EXISTS; tries++) {
		X509_free(x);
		free(r.rec.der);
		memset(&r.rec, 0, sizeof(r.rec));
		ca_random_serial(r.rec.serial);
		if ((x = make_cert(old, d->signer, is_ocsp, key,
		    r.rec.serial, now, sans)) == NULL ||
		    !ca_cert_times(x, &r.rec.st.not_before,
		    &r.rec.st.not_after) ||
		    !ca_cert_der(x, &r.rec.der, &r.rec.der_len)) {
			snprintf(err, err_len, "%s: signing failed", what);
			goto out;
		}
		r.rec.st.status = CERT_GOOD;
		r.rec.issued_at = now;
		snprintf(r.rec.account, sizeof(r.rec.account), "%s",
		    CA_OWN_ACCOUNT);
		r.what = what;
		rc = store_write(d->store, renew_txn, &r);
	}
	if (rc != STORE_OK) {
		snprintf(err, err_len, "%s: recording the renewed certificate: "
		    "%s", what, store_strerror(rc));
		goto out;
	}
	/* Committed; now the files: temp + rename, key first (a token key
	 * has no file: the certificate only). */
	if (!token)
		snprintf(tkey, sizeof(tkey), "%s.new", key_path);
	snprintf(tcert, sizeof(tcert), "%s.new", cert_path);
	if (!remote_ocsp)	/* else the signer's new key is in tkey */
		unlink(tkey);
	unlink(tcert);
	/* Owner set on the open descriptors: no path-based chown as root. */
	if (pd != NULL && pd->active) {
		uid = pd->uid;
		gid = pd->gid;
	}
	if (remote_ocsp) {
		/* the signer wrote tkey; it renames it and takes it up */
		if (!ca_cert_write_owned(tcert, x, uid, gid, err, err_len) ||
		    !sign_client_ocsp_commit(d->sclient, err, err_len))
			goto out;
	} else {
		if (!ca_key_write_owned(tkey, key, NULL, uid, gid, err,
		    err_len) || !ca_cert_write_owned(tcert, x, uid, gid, err,
		    err_len))
			goto out;
		if (rename(tkey, key_path) != 0) {
			snprintf(err, err_len, "%s: rename: %s", what,
			    strerror(errno));
			goto out;
		}
	}
	if (rename(tcert, cert_path) != 0) {
		snprintf(err, err_len, "%s: rename: %s", what,
		    strerror(errno));
		goto out;
	}
	if (!token)
		fsync_dir_of(key_path);
	fsync_dir_of(cert_path);
	serial_hex(hex, r.rec.serial);
	if (token) {
		ca_key_describe(where, sizeof(where), key_path);
		log_info("%s renewed: serial=%s, %s replaced, same key (%s)",
		    what, hex, cert_path, where);
	} else
		log_info("%s renewed: serial=%s, %s and %s replaced", what,
		    hex, cert_path, key_path);
	note_made(r.rec.serial);
	*out_cert = x;
	*out_key = key;
	x = NULL;
	key = NULL;
	ret = 1;
 out:
	if (!ret && tkey[0] != '\0')
		unlink(tkey);
	if (!ret && tcert[0] != '\0')
		unlink(tcert);
	free(r.rec.der);
	X509_free(old);
	X509_free(x);
	EVP_PKEY_free(key);
	return ret;
}

/*
 * Reads a certificate and tells whether it is due (0 on read error).  A
 * renewal that could not end later than the current certificate (the CA
 * itself expires first) is not due: it is logged instead, so that micad
 * does not renew on every start.
 */
static int
file_due(const char *path, X509 *ca, int64_t now, int rbd, int *out_due,
    char *err, size_t err_len)
{
	X509 *x = NULL;
	int64_t nb, na, cnb, cna, new_na;

	if (!ca_cert_read(&x, path, err, err_len))
		return 0;
	*out_due = renew_is_due(x, now, rbd);
	if (*out_due && ca_cert_times(x, &nb, &na) &&
	    ca_cert_times(ca, &cnb, &cna)) {
		new_na = now + (na - nb);
		if (new_na > cna)
			new_na = cna;
		if (now < cnb || now >= cna) {
			/* ca_expiry_warn said why at start */
			log_warnx("%s is due for renewal, but the CA "
			    "certificate is not valid at the current time: "
			    "not renewed", path);
			*out_due = 0;
		} else if (now >= nb && now < na && new_na <= na) {
			/* still valid: keep it rather than shorten it */
			log_warnx("%s is due for renewal, but the CA "
			    "certificate expires first: renew the CA", path);
			*out_due = 0;
		}
	}
	X509_free(x);
	return 1;
}

/* Warns when the CA certificate is not valid now or expires within
 * CA_WARN_DAYS. */
static void
ca_expiry_warn(X509 *ca, const char *path, int64_t now)
{
	int64_t nb, na;

	if (!ca_cert_times(ca, &nb, &na))
		return;
	if (now < nb)
		log_warnx("the CA certificate %s is NOT VALID YET: its "
		    "notBefore is %lld s after the current time; is the "
		    "clock wrong?  Nothing can be issued or renewed, and "
		    "clients reject every certificate until the clock is "
		    "right", path, (long long)(nb - now));
	else if (na <= now)
		log_warnx("the CA certificate %s has expired (%lld days ago): "
		    "nothing can be issued or renewed; renew the CA", path,
		    (long long)((now - na) / DAY));
	else if (na - now < (int64_t)CA_WARN_DAYS * DAY)
		log_warnx("the CA certificate %s expires in %lld days: "
		    "certificates and renewals are cut short at its notAfter; "
		    "renew the CA", path, (long long)((na - now) / DAY));
}

/* Regular file (lstat: a symlink is not). */
static int
is_file(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int
is_there(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/*
 * 1 when the key at kpath belongs to the certificate at cpath and that
 * certificate was signed by ca.
 */
static int
pair_ok(X509 *ca, const char *cpath, const char *kpath)
{
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	char err[CA_ERR_MAX];
	int ok = 0;

	if (!is_file(cpath) || !is_file(kpath) ||
	    !ca_cert_read(&x, cpath, err, sizeof(err)) ||
	    !ca_key_read(&k, kpath, NULL, err, sizeof(err)))
		goto out;
	if (X509_check_private_key(x, k) != 1 ||
	    X509_check_issued(ca, x) != X509_V_OK ||
	    X509_verify(x, X509_get0_pubkey(ca)) != 1)
		goto out;
	ok = 1;
 out:
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
	return ok;
}

/*
 * 1 when the certificate at cpath is signed by ca and certifies the same
 * public key as the one at cur_path (a token key certified again; the
 * token is not opened here: this runs before any signer process).
 */
static int
same_key_ok(X509 *ca, const char *cpath, const char *cur_path)
{
	X509 *x = NULL, *cur = NULL;
	char err[CA_ERR_MAX];
	int ok = 0;

	if (!is_file(cpath) || !ca_cert_read(&x, cpath, err, sizeof(err)) ||
	    !ca_cert_read(&cur, cur_path, err, sizeof(err)))
		goto out;
	if (EVP_PKEY_eq(X509_get0_pubkey(x), X509_get0_pubkey(cur)) != 1 ||
	    X509_check_issued(ca, x) != X509_V_OK ||
	    X509_verify(x, X509_get0_pubkey(ca)) != 1)
		goto out;
	ok = 1;
 out:
	ERR_clear_error();
	X509_free(x);
	X509_free(cur);
	return ok;
}

/* recover_one for a token key: only the certificate was written. */
static int
recover_token(X509 *ca, const char *what, const char *cert_path, char *err,
    size_t err_len)
{
	char tcert[CONF_PATH_MAX + 8];

	snprintf(tcert, sizeof(tcert), "%s.new", cert_path);
	if (!is_there(tcert))
		return 1;
	if (same_key_ok(ca, tcert, cert_path)) {
		if (rename(tcert, cert_path) != 0)
			goto fail;
		log_info("%s: finished an interrupted renewal: %s installed",
		    what, tcert);
	} else {
		if (unlink(tcert) != 0)
			goto fail;
		log_warnx("%s: discarded the leftover of an interrupted "
		    "renewal (%s): not the token key's certificate from this "
		    "CA", what, tcert);
	}
	fsync_dir_of(cert_path);
	return 1;
 fail:
	snprintf(err, err_len, "%s: recovering an interrupted renewal: %s",
	    what, strerror(errno));
	return 0;
}

/* Finishes or discards one interrupted renewal (see renew.h). */
static int
recover_one(X509 *ca, const char *what, const char *cert_path,
    const char *key_path, char *err, size_t err_len)
{
	char tkey[CONF_PATH_MAX + 8], tcert[CONF_PATH_MAX + 8];
	int hk, hc;

	if (cert_path[0] == '\0' || key_path[0] == '\0')
		return 1;
	if (ca_key_is_uri(key_path))
		return recover_token(ca, what, cert_path, err, err_len);
	snprintf(tkey, sizeof(tkey), "%s.new", key_path);
	snprintf(tcert, sizeof(tcert), "%s.new", cert_path);
	hk = is_there(tkey);
	hc = is_there(tcert);
	if (!hk && !hc)
		return 1;
	if (hk && hc && pair_ok(ca, tcert, tkey)) {
		/* crashed before the renames: do both, key first */
		if (rename(tkey, key_path) != 0 ||
		    rename(tcert, cert_path) != 0)
			goto fail;
		log_info("%s: finished an interrupted renewal: %s and %s "
		    "installed", what, tkey, tcert);
	} else if (!hk && hc && pair_ok(ca, tcert, key_path)) {
		/* crashed between the renames: the key is already new */
		if (rename(tcert, cert_path) != 0)
			goto fail;
		log_info("%s: finished an interrupted renewal: %s installed "
		    "(%s was already in place)", what, tcert, key_path);
	} else {
		if ((hk && unlink(tkey) != 0) || (hc && unlink(tcert) != 0))
			goto fail;
		log_warnx("%s: discarded the leftovers of an interrupted "
		    "renewal (%s%s%s): %s", what, hk ? tkey : "",
		    hk && hc ? ", " : "", hc ? tcert : "",
		    hk && hc ? "the key does not match the certificate or the "
		    "CA did not sign it" : hc ? "the certificate does not "
		    "match the current key" : "no certificate was written");
	}
	fsync_dir_of(key_path);
	fsync_dir_of(cert_path);
	return 1;
 fail:
	snprintf(err, err_len, "%s: recovering an interrupted renewal: %s",
	    what, strerror(errno));
	return 0;
}

/* path.new is there (path empty: no). */
static int
new_there(const char *path)
{
	char t[CONF_PATH_MAX + 8];

	if (path[0] == '\0' || ca_key_is_uri(path))
		return 0;
	snprintf(t, sizeof(t), "%s.new", path);
	return is_there(t);
}

int
renew_interrupted(const struct mica_conf *c)
{
	return new_there(c->ca.ocsp_cert) || new_there(c->ca.ocsp_key) ||
	    new_there(c->ca.tls_cert) || new_there(c->ca.tls_key);
}

int
renew_recover(const struct mica_conf *c, char *err, size_t err_len)
{
	X509 *ca = NULL;
	int ret = 0;

	if (!ca_cert_read(&ca, c->ca.cert, err, err_len))
		goto out;
	if (!recover_one(ca, "OCSP signer", c->ca.ocsp_cert, c->ca.ocsp_key,
	    err, err_len) ||
	    !recover_one(ca, "TLS server certificate", c->ca.tls_cert,
	    c->ca.tls_key, err, err_len))
		goto out;
	ret = 1;
 out:
	X509_free(ca);
	return ret;
}

int
renew_at_start(struct micad *d, const struct privdrop *pd, int *out_renewed,
    char *err, size_t err_len)
{
	struct mica_conf *c = d->conf;
	struct ca_signer *ns = NULL;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	int due, n = 0, ret = 0;
	int64_t now = time(NULL);
	int rbd = c->ca.renew_before_days;
	X509 *ca = ca_signer_get0_cert(d->signer);

	ca_expiry_warn(ca, c->ca.cert, now);
	if (c->ca.ocsp_cert[0] != '\0' &&
	    ca_signer_get0_ocsp_cert(d->signer) != NULL) {
		if (!file_due(c->ca.ocsp_cert, ca, now, rbd, &due, err,
		    err_len))
			goto out;
		if (due) {
			if (!renew_one(d, pd, "OCSP signer", c->ca.ocsp_cert,
			    c->ca.ocsp_key, NULL, &x, &k, err, err_len))
				goto out;
			if (d->sclient != NULL ? !ca_signer_new_remote(&ns,
			    ca_signer_get0_cert(d->signer), x,
			    sign_client_cert, d->sclient, err, err_len) :
			    !ca_signer_new(&ns, ca_signer_get0_cert(d->signer),
			    ca_signer_get0_key(d->signer), x, k, err,
			    err_len))
				goto out;
			if (d->sclient != NULL)
				ca_signer_set_remote_der(ns, sign_client_der);
			ca_signer_free(d->signer);
			d->signer = ns;
			ca = ca_signer_get0_cert(d->signer);
			n++;
		}
	}
	if (c->ca.tls_cert[0] != '\0') {
		if (!file_due(c->ca.tls_cert, ca, now, rbd, &due, err,
		    err_len))
			goto out;
		X509_free(x);
		EVP_PKEY_free(k);
		x = NULL;
		k = NULL;
		if (due) {
			if (!renew_one(d, pd, "TLS server certificate",
			    c->ca.tls_cert, c->ca.tls_key, NULL, &x, &k, err,
			    err_len))
				goto out;
			n++;
		}
	}
	if (out_renewed != NULL)
		*out_renewed = n;
	ret = 1;
 out:
	X509_free(x);
	EVP_PKEY_free(k);
	return ret;
}

/*
 * Renewal while running.  The work (reading the files, key generation,
 * signing, the store commit, writing and fsync'ing the files) runs on a
 * worker, one job at a time; the OCSP responder takes the new signer
 * under its own lock (ocsp_responder_set_signer, which also drops every
 * cached answer), and the loop reloads the TLS listener when the job is
 * done.  d->signer (the CA key, used by the writer thread) is never
 * replaced while running: the OCSP certificate it holds is the one of
 * the start; the current one is the responder's.
 */
struct renew_job {
	struct micad	*d;
	int64_t		 now;
	int		 rbd;
	int		 tls_renewed;
};

static struct {
	struct micad	*d;
	struct event	*kick;		/* renew_kick -> renew_check */
	int		 busy;		/* a job is on a worker (loop) */
	int		 again;		/* a check came meanwhile (loop) */
} R;

/* Worker: the OCSP signer, then the TLS certificate. */
static void
renew_work(void *arg)
{
	struct renew_job *j = arg;
	struct micad *d = j->d;
	struct mica_conf *c = d->conf;
	X509 *ca = ca_signer_get0_cert(d->signer), *x = NULL;
	EVP_PKEY *k = NULL;
	char err[CA_ERR_MAX];
	int due = 0;

	if (c->ca.ocsp_cert[0] != '\0' && d->ocsp != NULL &&
	    ca_signer_get0_ocsp_cert(d->signer) != NULL &&
	    !made_here_recently(c->ca.ocsp_cert, j->now) &&
	    file_due(c->ca.ocsp_cert, ca, j->now, j->rbd, &due, err,
	    sizeof(err)) && due) {
		if (!renew_one(d, NULL, "OCSP signer", c->ca.ocsp_cert,
		    c->ca.ocsp_key, NULL, &x, &k, err, sizeof(err)))
			log_warnx("OCSP signer renewal failed, will retry: %s",
			    err);
		else if (!ocsp_responder_set_signer(d->ocsp, x,
		    d->sclient != NULL ? sign_client_standin(d->sclient, x) :
		    k))
			log_warnx("OCSP signer renewed on disk but not taken up: "
			    "restart micad");
		X509_free(x);
		EVP_PKEY_free(k);
		x = NULL;
		k = NULL;
	}
	due = 0;
	if (c->ca.tls_cert[0] != '\0' &&
	    !made_here_recently(c->ca.tls_cert, j->now) &&
	    file_due(c->ca.tls_cert, ca, j->now, j->rbd, &due, err,
	    sizeof(err)) && due) {
		if (!renew_one(d, NULL, "TLS server certificate",
		    c->ca.tls_cert, c->ca.tls_key, NULL, &x, &k, err,
		    sizeof(err)))
			log_warnx("TLS certificate renewal failed, will retry: "
			    "%s", err);
		else
			j->tls_renewed = 1;
		X509_free(x);
		EVP_PKEY_free(k);
	}
}

/* Loop: the files are in place; new TLS connections get the new one. */
static void
renew_done(void *arg)
{
	struct renew_job *j = arg;

	if (j->tls_renewed && !j->d->stopping && !ca_listener_reload_tls())
		log_warnx("TLS certificate renewed on disk but not taken up: "
		    "restart micad");
	free(j);
	R.busy = 0;
	if (R.again && !R.d->stopping) {
		R.again = 0;
		renew_check(R.d);
	}
}

void
renew_check(struct micad *d)
{
	struct renew_job *j;
	struct micad_settings set;
	char err[CA_ERR_MAX];

	if (R.busy) {
		R.again = 1;
		return;
	}
	/* renew_before_days may change with a SIGHUP: one copy per pass */
	if (!micad_settings_copy(d, &set, err, sizeof(err))) {
		log_warnx("renewal check: %s", err);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_warn("renewal check");
		return;
	}
	R.d = d;
	j->d = d;
	j->now = time(NULL);
	j->rbd = set.renew_before_days;
	R.busy = 1;
	if (!workq_submit(d->workers, renew_work, renew_done, j)) {
		R.busy = 0;
		free(j);
	}
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	renew_check(arg);
}

int
renew_start(struct micad *d)
{
	R.d = d;
	if ((R.kick = event_new(d->base, -1, 0, on_kick, d)) == NULL)
		return 0;
	if (d->ocsp != NULL)
		ocsp_responder_set_invalid_hook(d->ocsp, renew_kick, NULL);
	return 1;
}

void
renew_kick(void *arg)
{
	(void)arg;
	if (R.kick != NULL)
		event_active(R.kick, 0, 0);
}

void
renew_stop(void)
{
	if (R.kick != NULL)
		event_free(R.kick);
	memset(&R, 0, sizeof(R));
}

/* ---- mica-admin tls renew: a new TLS certificate with other names ---- */

struct tls_job {
	struct micad	*d;
	char		*sans[CA_SANS_MAX];
	size_t		 num;
	renew_tls_done_fn done;
	void		*arg;
	int		 ok;
	char		 serial[SERIAL_HEX_LEN];
	char		 err[CA_ERR_MAX];
};

static void
tls_job_free(struct tls_job *j)
{
	size_t i;

	for (i = 0; i < j->num; i++)
		free(j->sans[i]);
	free(j);
}

/* Worker: the same renewal as when it is due, with the new SANs. */
static void
tls_work(void *arg)
{
	struct tls_job *j = arg;
	struct mica_conf *c = j->d->conf;
	struct renew_sans rs = { (const char *const *)j->sans, j->num };
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	uint8_t sn[STORE_SERIAL_LEN];

	if (c->ca.tls_cert[0] == '\0') {
		snprintf(j->err, sizeof(j->err), "no [ca] tls_cert configured");
		return;
	}
	if (!renew_one(j->d, NULL,
	    "TLS server certificate", c->ca.tls_cert, c->ca.tls_key, &rs,
	    &x, &k, j->err, sizeof(j->err)))
		goto out;
	if (ca_cert_serial(x, sn))
		serial_hex(j->serial, sn);
	j->ok = 1;
 out:
	X509_free(x);
	EVP_PKEY_free(k);
}

/* Loop: the files are in place; new connections get the new one. */
static void
tls_done(void *arg)
{
	struct tls_job *j = arg;

	if (j->ok && j->d->stopping) {
		j->ok = 0;
		snprintf(j->err, sizeof(j->err), "the new TLS certificate "
		    "(serial %s) is on disk; micad is stopping and takes it up "
		    "at its next start", j->serial);
	} else if (j->ok && !ca_listener_reload_tls()) {
		j->ok = 0;
		snprintf(j->err, sizeof(j->err), "the new TLS certificate "
		    "(serial %s) is on disk but micad did not take it up: "
		    "restart micad", j->serial);
	}
	j->done(j->arg, j->ok, j->ok ? j->serial : j->err);
	tls_job_free(j);
	R.busy = 0;
	if (R.again && !R.d->stopping) {
		R.again = 0;
		renew_check(R.d);
	}
}

int
renew_tls_names(struct micad *d, const char *const *sans, size_t num,
    renew_tls_done_fn done, void *arg)
{
	struct tls_job *j;
	size_t i;

	if (R.busy || num == 0 || num > CA_SANS_MAX)
		return 0;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatalx("out of memory");
	for (i = 0; i < num; i++)
		if ((j->sans[j->num++] = strdup(sans[i])) == NULL)
			fatalx("out of memory");
	j->d = d;
	j->done = done;
	j->arg = arg;
	R.d = d;
	R.busy = 1;	/* no automatic renewal at the same time */
	if (!workq_submit(d->workers, tls_work, tls_done, j)) {
		R.busy = 0;
		tls_job_free(j);
		return 0;
	}
	return 1;
}
