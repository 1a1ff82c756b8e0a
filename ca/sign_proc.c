/*
 * sign_proc.c - micad's signer process (see sign_proc.h): keys, policy
 * state, the request loop.
 */
#include <sys/prctl.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "ca/ca.h"
#include "ca/privdrop.h"
#include "ca/renew.h"
#include "ca/sign_policy.h"
#include "ca/sign_proc.h"
#include "ca/sign_proto.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/sigmd.h"
#include "conf/conf.h"

#define PASS_MAX	1024		/* bytes of a key passphrase */
#define RBUF_MIN	(256 * 1024)	/* read buffer kept between frames */
#define STATE_LEN	64		/* signer.state record */
#define ERRLEN		512

struct okey {			/* an OCSP signing key and its responderID */
	EVP_PKEY	*key;
	EVP_MD_CTX	*tmpl;	/* DigestSign initialised, copied per use */
	uint8_t		 respid[SIGN_RESPID_LEN];
	struct sign_key_pt pt;	/* for the leaf key check */
};

struct sproc {
	const struct mica_conf *c;
	X509		*ca;
	EVP_PKEY	*ca_key;
	uint8_t		*ca_alg;	/* AlgorithmIdentifier DER */
	size_t		 ca_alg_len;
	EVP_MD_CTX	*ca_tmpl;	/* DigestSign initialised with the CA
					 * key, copied per certificate */
	int		 ca_lite;	/* certificates: the TBS signed as
					 * received (sign_tbs_parse), not
					 * through X509_sign */
	uint8_t		*ca_name;	/* subject DER */
	size_t		 ca_name_len;
	struct okey	 cur, prev;	/* prev: until the network side has
					 * taken up a renewed OCSP signer */
	EVP_PKEY	*pending;	/* renewal's new key, not installed */
	struct sign_key_pt ca_pt, pending_pt;	/* the CA's, pending's
					 * public keys, for the leaf key
					 * check (sign_key_pt_set) */
	int		 ocsp_is_ca;
	int		 ca_token, ocsp_token;	/* the key is in a PKCS#11 token */
	/* serials signed (open addressing, 0 = empty), loaded lazily */
	uint8_t		(*set)[CA_SERIAL_LEN];
	size_t		 set_cap, set_num;
	int		 set_loaded;
	int		 log_fd, state_fd;
	int		 log_unsynced;	/* lines written, not yet fdatasync'd */
	uint64_t	 last_crl[2];	/* full, delta */
	char		 log_path[CONF_PATH_MAX + 32];
};

static int
is_uri(const char *path)
{
	return strncmp(path, "pkcs11:", 7) == 0;
}

const char *
sign_proc_dir(const struct mica_conf *c)
{
	static char dir[CONF_PATH_MAX + 16];
	char *slash;

	if (!is_uri(c->ca.key) && c->ca.key[0] != '\0') {
		snprintf(dir, sizeof(dir), "%s", c->ca.key);
		if ((slash = strrchr(dir, '/')) == NULL)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
	} else
		snprintf(dir, sizeof(dir), "%s/private", c->ca.dir);
	return dir;
}

char *
sign_read_passphrase(const char *path, char *err, size_t err_len)
{
	char *pw = NULL;
	size_t n = 0;
	ssize_t r;
	struct stat sb;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, err_len, "key passphrase file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) != 0 || (sb.st_mode & 077)) {
		snprintf(err, err_len, "key passphrase file %s is readable by "
		    "group or others (mode %03o); chmod 600 it", path,
		    (unsigned)(sb.st_mode & 0777));
		goto out;
	}
	if ((pw = sodium_malloc(PASS_MAX + 1)) == NULL)
		fatalx("out of memory");
	while (n < PASS_MAX) {
		r = read(fd, pw + n, PASS_MAX - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, err_len, "key passphrase file %s: %s",
			    path, strerror(errno));
			sodium_free(pw);
			pw = NULL;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (memchr(pw + n - (size_t)r, '\n', (size_t)r) != NULL)
			break;
	}
	pw[n] = '\0';
	n = strcspn(pw, "\r\n");
	sodium_memzero(pw + n, PASS_MAX + 1 - n);
 out:
	close(fd);
	return pw;
}

/* ---- the signature log and the CRL state ---- */

static void
hex_of(char *out, size_t out_len, const uint8_t *p, size_t n)
{
	if (out_len < 2 * n + 1)
		n = (out_len - 1) / 2;
	hex_encode(out, p, n);
}

/*
 * Appends one line; durable only after log_sync.  A certificate's line
 * is written when it is signed and synced, for all the certificates of
 * one read, before the replies are written (serve): one fdatasync per
 * group of concurrent requests instead of one per certificate.
 */
static int
log_write(struct sproc *sp, const char *line)
{
	size_t len = strlen(line), off = 0;
	ssize_t w;

	while (off < len) {
		w = write(sp->log_fd, line + off, len - off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_warn("signer: %s", sp->log_path);
			return 0;
		}
		off += (size_t)w;
	}
	sp->log_unsynced = 1;
	return 1;
}

/* Makes every line written so far durable. */
static int
log_sync(struct sproc *sp)
{
	if (!sp->log_unsynced)
		return 1;
	if (fdatasync(sp->log_fd) != 0) {
		log_warn("signer: fdatasync %s", sp->log_path);
		return 0;
	}
	sp->log_unsynced = 0;
	return 1;
}

/* Appends one line and makes it durable before the answer goes out. */
static int
log_line(struct sproc *sp, const char *line)
{
	return log_write(sp, line) && log_sync(sp);
}

static void
refuse(struct sproc *sp, uint16_t type, const char *what, const char *why)
{
	char line[1024];
	size_t i;

	log_warnx("signer: refused %s%s%s: %s", sign_type_name(type),
	    what[0] ? " " : "", what, why);
	snprintf(line, sizeof(line), "%lld refused kind=%s %s%sreason=\"%s\"\n",
	    (long long)time(NULL), sign_type_name(type), what,
	    what[0] ? " " : "", why);
	for (i = 0; line[i] != '\0' && line[i + 1] != '\0'; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = '?';
	(void)log_line(sp, line);
}

static size_t
set_slot(const struct sproc *sp, const uint8_t serial[CA_SERIAL_LEN])
{
	uint64_t h = be64_get(serial + 8) ^ be64_get(serial);

	return (size_t)(h * 0x9e3779b97f4a7c15ull) & (sp->set_cap - 1);
}

static int
set_has(const struct sproc *sp, const uint8_t serial[CA_SERIAL_LEN])
{
	static const uint8_t zero[CA_SERIAL_LEN];
	size_t i;

	if (sp->set_cap == 0)
		return 0;
	for (i = set_slot(sp, serial);; i = (i + 1) & (sp->set_cap - 1)) {
		if (memcmp(sp->set[i], zero, CA_SERIAL_LEN) == 0)
			return 0;
		if (memcmp(sp->set[i], serial, CA_SERIAL_LEN) == 0)
			return 1;
	}
}

static void set_add(struct sproc *, const uint8_t serial[CA_SERIAL_LEN]);

static void
set_grow(struct sproc *sp)
{
	uint8_t (*old)[CA_SERIAL_LEN] = sp->set;
	size_t i, oldcap = sp->set_cap;
	static const uint8_t zero[CA_SERIAL_LEN];

	sp->set_cap = oldcap == 0 ? 1024 : 2 * oldcap;
	if ((sp->set = calloc(sp->set_cap, CA_SERIAL_LEN)) == NULL)
		fatal("signer: calloc");
	sp->set_num = 0;
	for (i = 0; i < oldcap; i++)
		if (memcmp(old[i], zero, CA_SERIAL_LEN) != 0)
			set_add(sp, old[i]);
	free(old);
}

static void
set_add(struct sproc *sp, const uint8_t serial[CA_SERIAL_LEN])
{
	size_t i;

	if (set_has(sp, serial))
		return;
	if (2 * (sp->set_num + 1) > sp->set_cap)
		set_grow(sp);
	for (i = set_slot(sp, serial);; i = (i + 1) & (sp->set_cap - 1)) {
		if (set_has(sp, serial))
			return;
		if (memcmp(sp->set[i], (uint8_t[CA_SERIAL_LEN]){ 0 },
		    CA_SERIAL_LEN) == 0) {
			memcpy(sp->set[i], serial, CA_SERIAL_LEN);
			sp->set_num++;
			return;
		}
	}
}

/* Reads every serial= of a signed certificate line from the log. */
static void
set_load(struct sproc *sp)
{
	FILE *f;
	char line[2048], *s, *e;
	uint8_t sn[CA_SERIAL_LEN];

	sp->set_loaded = 1;
	if ((f = fopen(sp->log_path, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, " refused ") != NULL ||
		    (s = strstr(line, " serial=")) == NULL)
			continue;
		s += 8;
		if ((e = strchr(s, ' ')) != NULL)
			*e = '\0';
		if (serial_parse(sn, s))
			set_add(sp, sn);
	}
	fclose(f);
	log_info("signer: %zu certificate serials signed before (from %s)",
	    sp->set_num, sp->log_path);
}

static int
state_read(struct sproc *sp)
{
	char buf[STATE_LEN + 1];
	ssize_t n;
	unsigned long long full = 0, delta = 0;

	if ((n = pread(sp->state_fd, buf, STATE_LEN, 0)) < 0)
		return 0;
	buf[n] = '\0';
	if (n > 0 && sscanf(buf, "crl_full %llu crl_delta %llu", &full,
	    &delta) != 2)
		return 0;
	sp->last_crl[0] = full;
	sp->last_crl[1] = delta;
	return 1;
}

/* One fixed-size record rewritten in place and fdatasync'd. */
static int
state_write(struct sproc *sp)
{
	char buf[STATE_LEN];

	memset(buf, ' ', sizeof(buf));
	snprintf(buf, sizeof(buf), "crl_full %" PRIu64 " crl_delta %" PRIu64,
	    sp->last_crl[0], sp->last_crl[1]);
	buf[strlen(buf)] = ' ';
	buf[STATE_LEN - 1] = '\n';
	if (pwrite(sp->state_fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf)
	    || fdatasync(sp->state_fd) != 0) {
		log_warn("signer: writing signer.state");
		return 0;
	}
	return 1;
}

static int
open_records(struct sproc *sp, const struct privdrop *pd, char *err,
    size_t err_len)
{
	char path[CONF_PATH_MAX + 32];
	const char *dir = sign_proc_dir(sp->c);

	snprintf(sp->log_path, sizeof(sp->log_path), "%s/signer.log", dir);
	snprintf(path, sizeof(path), "%s/signer.state", dir);
	if ((sp->log_fd = open(sp->log_path, O_WRONLY | O_APPEND | O_CREAT |
	    O_CLOEXEC | O_NOFOLLOW, 0600)) == -1 ||
	    (sp->state_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		snprintf(err, err_len, "signer: %.400s: %s", sp->log_fd == -1 ?
		    sp->log_path : path, strerror(errno));
		return 0;
	}
	/* made as root: hand them to the user the signer runs as */
	if (pd->active && (fchown(sp->log_fd, pd->uid, pd->gid) != 0 ||
	    fchown(sp->state_fd, pd->uid, pd->gid) != 0)) {
		snprintf(err, err_len, "signer: chown %.400s: %s", dir,
		    strerror(errno));
		return 0;
	}
	if (!state_read(sp)) {
		snprintf(err, err_len, "signer: %.400s: unreadable; refusing to "
		    "start (it guards CRL numbers)", path);
		return 0;
	}
	return 1;
}

/* ---- keys ---- */

static int
okey_set(struct okey *k, EVP_PKEY *key)
{
	EVP_MD_CTX *t = NULL;

	if (!sign_respid_bykey(k->respid, key) ||
	    (t = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(t, NULL, sigmd_name(key), NULL, NULL, key,
	    NULL) != 1) {
		log_ssl("signer: OCSP key");
		EVP_MD_CTX_free(t);
		return 0;
	}
	EVP_MD_CTX_free(k->tmpl);
	EVP_PKEY_free(k->key);
	k->tmpl = t;
	k->key = key;
	sign_key_pt_set(&k->pt, key);
	return 1;
}

/* The AlgorithmIdentifier X509_sign writes with the CA key. */
static int
learn_ca_alg(struct sproc *sp)
{
	X509 *x = NULL;
	const X509_ALGOR *a;
	unsigned char *der = NULL;
	int n, rc = 0;

	if ((x = X509_new()) == NULL ||
	    !X509_set_pubkey(x, X509_get0_pubkey(sp->ca)) ||
	    X509_sign(x, sp->ca_key, sigmd_get(sp->ca_key)) <= 0 ||
	    (a = X509_get0_tbs_sigalg(x)) == NULL ||
	    (n = i2d_X509_ALGOR(a, &der)) <= 0)
		goto out;
	sp->ca_alg = der;
	sp->ca_alg_len = (size_t)n;
	der = NULL;
	if ((n = i2d_X509_NAME(X509_get_subject_name(sp->ca), &der)) <= 0)
		goto out;
	sp->ca_name = der;
	sp->ca_name_len = (size_t)n;
	rc = 1;
 out:
	X509_free(x);
	return rc;
}

/*
 * The CA key's DigestSign context, and whether certificates take the
 * light path: a key whose signature over the TBS bytes is what X509_sign
 * makes with ca_alg (EC, RSA PKCS#1 v1.5, EdDSA; an RSA-PSS key's
 * parameters are X509_sign's to set).
 */
static int
ca_tmpl_set(struct sproc *sp)
{
	EVP_PKEY *k = sp->ca_key;

	sp->ca_lite = EVP_PKEY_is_a(k, "EC") || EVP_PKEY_is_a(k, "RSA") ||
	    EVP_PKEY_is_a(k, "ED25519") || EVP_PKEY_is_a(k, "ED448");
	sign_key_pt_set(&sp->ca_pt, X509_get0_pubkey(sp->ca));
	if ((sp->ca_tmpl = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(sp->ca_tmpl, NULL, sigmd_name(k), NULL,
	    NULL, k, NULL) != 1) {
		log_ssl("signer: CA key");
		return 0;
	}
	return 1;
}

/*
 * A standby without the CA key ([ca] key empty): only its own OCSP
 * signer, issued by the CA; certificates and CRLs are refused.
 */
static int
load_ocsp_only(struct sproc *sp, char *err, size_t err_len)
{
	const struct conf_ca *cc = &sp->c->ca;
	X509 *ocsp = NULL;
	EVP_PKEY *k = NULL;
	unsigned char *der = NULL;
	int n, rc = 0;

	if (cc->ocsp_cert[0] == '\0') {
		snprintf(err, err_len, "[ca] key is not set: a standby needs "
		    "its own OCSP signer ([ca] ocsp_cert, ocsp_key)");
		return 0;
	}
	if (!ca_cert_read(&sp->ca, cc->cert, err, err_len) ||
	    !ca_cert_read(&ocsp, cc->ocsp_cert, err, err_len) ||
	    !ca_key_read(&k, cc->ocsp_key, NULL, err, err_len))
		goto out;
	if (X509_check_private_key(ocsp, k) != 1) {
		snprintf(err, err_len, "the OCSP key does not match the OCSP "
		    "certificate");
		goto out;
	}
	if (X509_check_issued(sp->ca, ocsp) != X509_V_OK ||
	    X509_verify(ocsp, X509_get0_pubkey(sp->ca)) != 1) {
		snprintf(err, err_len, "the OCSP certificate was not issued "
		    "by this CA");
		goto out;
	}
	if ((n = i2d_X509_NAME(X509_get_subject_name(sp->ca), &der)) <= 0)
		goto out;
	sp->ca_name = der;
	sp->ca_name_len = (size_t)n;
	if (!okey_set(&sp->cur, k)) {
		snprintf(err, err_len, "signer: preparing the OCSP key failed");
		goto out;
	}
	k = NULL;
	rc = 1;
 out:
	X509_free(ocsp);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return rc;
}

static int
load_keys(struct sproc *sp, char *err, size_t err_len)
{
	struct ca_signer *s = NULL;
	struct ca_signer_paths p;
	char *pass = NULL;
	const struct conf_ca *cc = &sp->c->ca;
	int rc = 0;

	if (cc->key[0] == '\0')
		return load_ocsp_only(sp, err, err_len);
	memset(&p, 0, sizeof(p));
	p.ca_cert = cc->cert;
	p.ca_key = cc->key;
	p.ocsp_cert = cc->ocsp_cert;
	p.ocsp_key = cc->ocsp_key;
	if (cc->key_passphrase_file[0] != '\0') {
		if ((pass = sign_read_passphrase(cc->key_passphrase_file, err,
		    err_len)) == NULL)
			goto out;
		p.passphrase = pass;
	}
	/* ca_signer_load: ca_key_read for each key, and the checks that
	 * each key matches its certificate and the OCSP one is the CA's */
	if (!ca_signer_load(&s, &p, err, err_len))
		goto out;
	sp->ca = X509_dup(ca_signer_get0_cert(s));
	sp->ca_key = ca_signer_get0_key(s);
	if (sp->ca == NULL || !EVP_PKEY_up_ref(sp->ca_key))
		fatalx("signer: out of memory");
	sp->ocsp_is_ca = ca_signer_get0_ocsp_key(s) == sp->ca_key;
	sp->ca_token = is_uri(cc->key);
	sp->ocsp_token = sp->ocsp_is_ca ? sp->ca_token : is_uri(cc->ocsp_key);
	if (!EVP_PKEY_up_ref(ca_signer_get0_ocsp_key(s)) ||
	    !okey_set(&sp->cur, ca_signer_get0_ocsp_key(s)) ||
	    !learn_ca_alg(sp) || !ca_tmpl_set(sp)) {
		snprintf(err, err_len, "signer: preparing the keys failed");
		goto out;
	}
	rc = 1;
 out:
	if (pass != NULL)
		sodium_free(pass);
	ca_signer_free(s);
	ERR_clear_error();
	return rc;
}

/* ---- requests ---- */

struct reply {
	uint16_t	 type;
	const uint8_t	*body;
	size_t		 len;
	uint8_t		*owned;		/* freed after sending */
	char		 err[ERRLEN];
};

/*
 * A key in a token signs through the libp11 engine, whose thread safety
 * we do not rely on: its signatures (the OCSP channels' threads, the main
 * thread's CRLs and certificates) are made one at a time.
 */
static pthread_mutex_t token_mu = PTHREAD_MUTEX_INITIALIZER;

static int
sign_raw(EVP_MD_CTX *tmpl, EVP_PKEY *key, int token, const uint8_t *tbs,
    size_t len, uint8_t **out, size_t *out_len)
{
	EVP_MD_CTX *c = NULL;
	size_t n = 0;
	int rc = 0;

	if (token)
		pthread_mutex_lock(&token_mu);

	if ((c = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (tmpl == NULL || EVP_MD_CTX_copy_ex(c, tmpl) != 1) {
		/* EdDSA contexts cannot be copied */
		ERR_clear_error();
		if (EVP_DigestSignInit_ex(c, NULL, sigmd_name(key), NULL, NULL,
		    key, NULL) != 1)
			goto out;
	}
	if (EVP_DigestSign(c, NULL, &n, tbs, len) != 1 ||
	    (*out = malloc(n)) == NULL)
		goto out;
	if (EVP_DigestSign(c, *out, &n, tbs, len) != 1) {
		free(*out);
		*out = NULL;
		goto out;
	}
	*out_len = n;
	rc = 1;
 out:
	if (!rc)
		log_ssl("signer: signing");
	EVP_MD_CTX_free(c);
	if (token)
		pthread_mutex_unlock(&token_mu);
	return rc;
}

static void
do_ocsp(struct sproc *sp, const struct sign_frame *f, struct reply *rp)
{
	const uint8_t *rid;
	size_t rlen;
	struct okey *k = NULL;

	if (!sign_ocsp_parse(&rid, &rlen, f->body, f->body_len, rp->err,
	    sizeof(rp->err)))
		goto refused;
	if (rlen == SIGN_RESPID_LEN && memcmp(rid, sp->cur.respid, rlen) == 0)
		k = &sp->cur;
	else if (sp->prev.key != NULL && rlen == SIGN_RESPID_LEN &&
	    memcmp(rid, sp->prev.respid, rlen) == 0)
		k = &sp->prev;
	if (k == NULL) {
		snprintf(rp->err, sizeof(rp->err), "ResponseData: RFC 6960 "
		    "4.2.1: the responderID is not this responder's key");
		goto refused;
	}
	if (!sign_raw(k->tmpl, k->key, sp->ocsp_token, f->body, f->body_len,
	    &rp->owned, &rp->len)) {
		snprintf(rp->err, sizeof(rp->err), "signing failed");
		return;
	}
	rp->type = SIGN_R_OK;
	rp->body = rp->owned;
	return;
 refused:
	refuse(sp, f->type, "", rp->err);
}

static void
do_crl(struct sproc *sp, const struct sign_frame *f, struct reply *rp)
{
	struct sign_crl_info ci;
	uint8_t hash[32];
	char what[96], hex[65], line[256];
	int k;

	if (!sign_crl_parse(&ci, f->body, f->body_len, rp->err,
	    sizeof(rp->err))) {
		refuse(sp, f->type, "", rp->err);
		return;
	}
	k = ci.is_delta ? 1 : 0;
	snprintf(what, sizeof(what), "crl=%s number=%" PRIu64,
	    k ? "delta" : "full", ci.number);
	if (ci.issuer_len != sp->ca_name_len ||
	    memcmp(ci.issuer, sp->ca_name, sp->ca_name_len) != 0)
		snprintf(rp->err, sizeof(rp->err), "TBSCertList: RFC 5280 "
		    "5.1.2.3: the issuer is not this CA");
	else if (ci.alg_len != sp->ca_alg_len ||
	    memcmp(ci.alg, sp->ca_alg, sp->ca_alg_len) != 0)
		snprintf(rp->err, sizeof(rp->err), "TBSCertList: RFC 5280 "
		    "5.1.2.2: the signature algorithm is not the CA key's");
	else if (ci.number <= sp->last_crl[k])
		snprintf(rp->err, sizeof(rp->err), "TBSCertList: RFC 5280 "
		    "5.2.3: CRL number %" PRIu64 " not above %" PRIu64 ", the "
		    "last %s CRL signed", ci.number, sp->last_crl[k],
		    k ? "delta" : "full");
	else
		rp->err[0] = '\0';
	if (rp->err[0] != '\0') {
		refuse(sp, f->type, what, rp->err);
		return;
	}
	sp->last_crl[k] = ci.number;
	SHA256(f->body, f->body_len, hash);
	hex_of(hex, sizeof(hex), hash, sizeof(hash));
	snprintf(line, sizeof(line), "%lld crl %s tbs_sha256=%s\n",
	    (long long)time(NULL), what, hex);
	if (!state_write(sp) || !log_line(sp, line)) {
		snprintf(rp->err, sizeof(rp->err), "signer: cannot record "
		    "the CRL number; not signed");
		return;
	}
	if (sp->ca_key == NULL) {
		snprintf(rp->err, sizeof(rp->err), "no CA key here (a "
		    "standby): CRLs are signed by the primary");
		return;
	}
	if (!sign_raw(NULL, sp->ca_key, sp->ca_token, f->body, f->body_len,
	    &rp->owned, &rp->len)) {
		snprintf(rp->err, sizeof(rp->err), "signing failed");
		return;
	}
	rp->type = SIGN_R_OK;
	rp->body = rp->owned;
}

/* "serial=HEX spki_sha256=HEX subject=\"...\"" of x. */
static void
describe(X509 *x, char *out, size_t out_len)
{
	uint8_t sn[CA_SERIAL_LEN], h[32];
	unsigned int n = 0;
	char hex[SERIAL_HEX_LEN], kh[65], subj[CA_SUBJECT_MAX];
	size_t i;

	if (!ca_cert_serial(x, sn))
		memset(sn, 0, sizeof(sn));
	serial_hex(hex, sn);
	if (X509_pubkey_digest(x, EVP_sha256(), h, &n) != 1 || n != 32)
		memset(h, 0, sizeof(h));
	hex_of(kh, sizeof(kh), h, sizeof(h));
	(void)ca_name_print(subj, sizeof(subj), X509_get_subject_name(x));
	for (i = 0; subj[i] != '\0'; i++)
		if (subj[i] == '"' || subj[i] == '\n' || subj[i] == '\r')
			subj[i] = '?';
	snprintf(out, out_len, "serial=%s spki_sha256=%s subject=\"%s\"",
	    hex, kh, subj);
	ERR_clear_error();
}

/*
 * The certificate as sent: its TBS parsed without decoding the key and
 * checked (sp->ca_lite), or decoded whole by OpenSSL.  *out_view is what
 * describe reads.  1, or 0 with rp->err (refused).
 */
static int
cert_parse(const struct sign_frame *f, int lite,
    struct sign_tbs *t, X509 **x, X509 **out_view, struct reply *rp)
{
	struct sign_cert_spans c;
	const unsigned char *p = f->body;

	if (lite) {
		if (!sign_cert_spans(&c, f->body, f->body_len)) {
			snprintf(rp->err, sizeof(rp->err), "certificate: RFC "
			    "5280 4.1: not one DER certificate");
			return 0;
		}
		if (!sign_tbs_parse(t, c.tbs, c.tbs_len, rp->err,
		    sizeof(rp->err)))
			return 0;
		*out_view = t->x;
		return 1;
	}
	if ((*x = d2i_X509(NULL, &p, (long)f->body_len)) == NULL ||
	    p != f->body + f->body_len) {
		snprintf(rp->err, sizeof(rp->err), "certificate: RFC 5280 "
		    "4.1: not one DER certificate");
		return 0;
	}
	*out_view = *x;
	return 1;
}

/* Signs the checked certificate: *out, *out_len the Certificate DER. */
static int
cert_sign(struct sproc *sp, const struct sign_frame *f, int lite, X509 *x,
    uint8_t **out, size_t *out_len)
{
	struct sign_cert_spans c;
	unsigned char *der = NULL;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	int n, rc = 0;

	if (lite) {
		/* the TBS bytes as received: sign_tbs_parse held them to
		 * DER */
		if (!sign_cert_spans(&c, f->body, f->body_len) ||
		    !sign_raw(sp->ca_tmpl, sp->ca_key, sp->ca_token, c.tbs,
		    c.tbs_len, &sig, &sig_len))
			goto out;
		if (!sign_cert_build(out, out_len, c.tbs, c.tbs_len,
		    sp->ca_alg, sp->ca_alg_len, sig, sig_len))
			fatal("signer: malloc");
		rc = 1;
		goto out;
	}
	if (sp->ca_token)
		pthread_mutex_lock(&token_mu);
	n = X509_sign(x, sp->ca_key, sigmd_get(sp->ca_key));
	if (sp->ca_token)
		pthread_mutex_unlock(&token_mu);
	if (n <= 0 || (n = i2d_X509(x, &der)) <= 0) {
		log_ssl("signer: X509_sign");
		goto out;
	}
	if ((*out = malloc((size_t)n)) == NULL)
		fatal("signer: malloc");
	memcpy(*out, der, (size_t)n);
	*out_len = (size_t)n;
	rc = 1;
 out:
	OPENSSL_free(der);
	free(sig);
	return rc;
}

static void
do_cert(struct sproc *sp, const struct sign_frame *f, struct reply *rp)
{
	struct sign_cert_rules rules;
	struct sign_tbs t;
	X509 *x = NULL, *view = NULL;
	uint8_t sn[CA_SERIAL_LEN];
	char what[CA_SUBJECT_MAX + 160], line[CA_SUBJECT_MAX + 256];
	int renewal = f->type == SIGN_T_OCSP_CERT, ok;
	/* an OCSP signer's certificate (rare) keeps the OpenSSL path */
	int lite = sp->ca_lite && !renewal;

	what[0] = '\0';
	memset(&t, 0, sizeof(t));
	if (!cert_parse(f, lite, &t, &x, &view, rp))
		goto refused;
	/* the signature changes none of what describe prints */
	describe(view, what, sizeof(what));
	memset(&rules, 0, sizeof(rules));
	rules.ca = sp->ca;
	rules.alg = sp->ca_alg;
	rules.alg_len = sp->ca_alg_len;
	rules.ocsp_pub = sp->cur.key;
	rules.pending_pub = sp->pending;
	rules.ca_pt = &sp->ca_pt;
	rules.ocsp_pt = &sp->cur.pt;
	rules.pending_pt = &sp->pending_pt;
	ok = lite ? sign_tbs_check(&rules, &t, renewal, rp->err,
	    sizeof(rp->err)) : sign_cert_check(&rules, x, renewal, rp->err,
	    sizeof(rp->err));
	if (!ok)
		goto refused;
	if (!sp->set_loaded)
		set_load(sp);
	if (!ca_cert_serial(view, sn) || set_has(sp, sn)) {
		snprintf(rp->err, sizeof(rp->err), "certificate: RFC 5280 "
		    "4.1.2.2: the serial was signed before (or is wider than "
		    "16 bytes)");
		goto refused;
	}
	if (sp->ca_key == NULL) {
		snprintf(rp->err, sizeof(rp->err), "no CA key here (a "
		    "standby): certificates are signed by the primary");
		goto out;
	}
	if (!cert_sign(sp, f, lite, x, &rp->owned, &rp->len)) {
		snprintf(rp->err, sizeof(rp->err), "signing failed");
		goto out;
	}
	snprintf(line, sizeof(line), "%lld %s %s\n", (long long)time(NULL),
	    renewal ? "ocsp-cert" : "cert", what);
	/* synced with the others of this read before any reply goes out
	 * (serve) */
	if (!log_write(sp, line)) {
		snprintf(rp->err, sizeof(rp->err), "signer: cannot write "
		    "signer.log; not signed");
		free(rp->owned);
		rp->owned = NULL;
		rp->len = 0;
		goto out;
	}
	set_add(sp, sn);
	rp->type = SIGN_R_OK;
	rp->body = rp->owned;
	goto out;
 refused:
	refuse(sp, f->type, what, rp->err);
 out:
	sign_tbs_cleanup(&t);
	X509_free(x);
	ERR_clear_error();
}

/* A new OCSP signer key: written to OCSP_KEY.new (0600), kept pending. */
static void
do_newkey(struct sproc *sp, struct reply *rp)
{
	const char *kp = sp->c->ca.ocsp_key;
	char tkey[CONF_PATH_MAX + 8];
	EVP_PKEY *k = NULL;
	unsigned char *der = NULL;
	const char *type = "ec-p256";
	char group[64] = "";
	int n;

	if (sp->ocsp_is_ca || kp[0] == '\0') {
		snprintf(rp->err, sizeof(rp->err), "no separate OCSP signer "
		    "key to renew");
		return;
	}
	if (is_uri(kp)) {
		/* a key in a token is never written: re-certify it */
		if (!EVP_PKEY_up_ref(sp->cur.key))
			fatalx("up_ref");
		k = sp->cur.key;
	} else {
		if (EVP_PKEY_is_a(sp->cur.key, "ED25519"))
			type = "ed25519";
		else if (EVP_PKEY_is_a(sp->cur.key, "RSA"))
			type = "rsa-3072";
		else if (EVP_PKEY_get_group_name(sp->cur.key, group,
		    sizeof(group), NULL) == 1 && strcmp(group, "secp384r1") ==
		    0)
			type = "ec-p384";
		snprintf(tkey, sizeof(tkey), "%s.new", kp);
		(void)unlink(tkey);
		if (!ca_keygen(&k, type) || !ca_key_write(tkey, k, NULL,
		    rp->err, sizeof(rp->err))) {
			if (rp->err[0] == '\0')
				snprintf(rp->err, sizeof(rp->err), "cannot "
				    "make a key");
			goto out;
		}
	}
	if ((n = i2d_PUBKEY(k, &der)) <= 0) {
		snprintf(rp->err, sizeof(rp->err), "cannot encode the key");
		goto out;
	}
	EVP_PKEY_free(sp->pending);
	sp->pending = k;
	sign_key_pt_set(&sp->pending_pt, k);
	k = NULL;
	if ((rp->owned = malloc((size_t)n)) == NULL)
		fatal("signer: malloc");
	memcpy(rp->owned, der, (size_t)n);
	rp->body = rp->owned;
	rp->len = (size_t)n;
	rp->type = SIGN_R_OK;
	log_info("signer: new OCSP signer key made%s", is_uri(kp) ?
	    " (the token's key, certified again)" : "");
 out:
	OPENSSL_free(der);
	EVP_PKEY_free(k);
}

/* Installs the pending key: OCSP_KEY.new renamed over OCSP_KEY. */
static void
do_commit(struct sproc *sp, struct reply *rp)
{
	const char *kp = sp->c->ca.ocsp_key;
	char tkey[CONF_PATH_MAX + 8];
	struct okey old = sp->prev;
	int fd;

	if (sp->pending == NULL) {
		snprintf(rp->err, sizeof(rp->err), "no OCSP signer renewal "
		    "pending");
		return;
	}
	if (!is_uri(kp)) {
		snprintf(tkey, sizeof(tkey), "%s.new", kp);
		if (rename(tkey, kp) != 0) {
			snprintf(rp->err, sizeof(rp->err), "rename %.300s: %s",
			    tkey, strerror(errno));
			return;
		}
		snprintf(tkey, sizeof(tkey), "%s", sign_proc_dir(sp->c));
		if ((fd = open(tkey, O_RDONLY | O_DIRECTORY)) != -1) {
			(void)fsync(fd);
			close(fd);
		}
	}
	/* the current key answers for responses built before the network
	 * side takes up the new certificate */
	sp->prev = sp->cur;
	memset(&sp->cur, 0, sizeof(sp->cur));
	if (!okey_set(&sp->cur, sp->pending)) {
		sp->cur = sp->prev;
		sp->prev = old;
		snprintf(rp->err, sizeof(rp->err), "cannot use the new key");
		return;
	}
	sp->pending = NULL;
	EVP_MD_CTX_free(old.tmpl);
	EVP_PKEY_free(old.key);
	rp->type = SIGN_R_OK;
	log_info("signer: new OCSP signer key installed");
}

static void
do_hello(struct sproc *sp, struct reply *rp)
{
	const struct conf_ca *cc = &sp->c->ca;
	char *t;

	if ((t = malloc(SIGN_SMALL_MAX)) == NULL)
		fatal("signer: malloc");
	/* where the keys live, never a PIN (a URI's query is cut) */
	/* ... and the last CRL numbers signed (micad serves the CRLs
	 * published before while it makes new ones, only if they are
	 * these: nothing newer was ever published) */
	snprintf(t, SIGN_SMALL_MAX, "pid=%ld ca_key=%s:%.*s ocsp_key=%s:%.*s "
	    "log=%s crl_full=%" PRIu64 " crl_delta=%" PRIu64, (long)getpid(),
	    is_uri(cc->key) ? "token" : "file",
	    (int)strcspn(cc->key, "?"), cc->key, sp->ocsp_is_ca ? "ca" :
	    is_uri(cc->ocsp_key) ? "token" : "file",
	    (int)strcspn(cc->ocsp_key, "?"), sp->ocsp_is_ca ? "" :
	    cc->ocsp_key, sp->log_path, sp->last_crl[0], sp->last_crl[1]);
	rp->owned = (uint8_t *)t;
	rp->body = rp->owned;
	rp->len = strlen(t);
	rp->type = SIGN_R_OK;
}

static void
handle(struct sproc *sp, const struct sign_frame *f, struct wb *out)
{
	struct reply rp;

	memset(&rp, 0, sizeof(rp));
	rp.type = SIGN_R_ERR;
	switch (f->type) {
	case SIGN_T_HELLO:
		do_hello(sp, &rp);
		break;
	case SIGN_T_CERT:
	case SIGN_T_OCSP_CERT:
		do_cert(sp, f, &rp);
		break;
	case SIGN_T_CRL:
		do_crl(sp, f, &rp);
		break;
	case SIGN_T_OCSP:
		do_ocsp(sp, f, &rp);
		break;
	case SIGN_T_OCSP_NEWKEY:
		do_newkey(sp, &rp);
		break;
	case SIGN_T_OCSP_COMMIT:
		do_commit(sp, &rp);
		break;
	default:
		snprintf(rp.err, sizeof(rp.err), "not a request");
		break;
	}
	if (rp.type == SIGN_R_ERR) {
		if (rp.err[0] == '\0')
			snprintf(rp.err, sizeof(rp.err), "failed");
		rp.body = (const uint8_t *)rp.err;
		rp.len = strlen(rp.err);
	}
	if (!sign_frame_encode(out, rp.type, f->id, rp.body, rp.len))
		fatalx("signer: reply too large");
	free(rp.owned);
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(fd, p, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		p += w;
		len -= (size_t)w;
	}
	return 1;
}


/*
 * OCSP channels: socketpairs (the blocking callers' and one per HTTP
 * thread of the network side), each served by its own
 * thread here.  The network side writes a batch of OCSP frames back to
 * back on a channel (one sender at a time per channel); the thread reads
 * what is there, signs every complete frame and writes all the replies
 * at once, so a batch costs one read and one write on each side.  The
 * channels' threads sign in parallel; they only read the keys, and
 * OCSP_COMMIT, the one request that changes them, takes the lock for
 * writing.
 */
static pthread_rwlock_t keys_lock = PTHREAD_RWLOCK_INITIALIZER;

struct chan {
	struct sproc	*sp;
	int		 fd;
};

static void *
chan_main(void *arg)
{
	struct chan *ch = arg;
	struct sign_frame f[SIGN_BATCH_MAX];
	struct wb out;
	uint8_t *buf, *nb;
	size_t cap = 64 * 1024, len = 0, used = 0, n = 0, i;
	enum sign_parse_rc prc;
	char err[256];
	ssize_t r;

	if ((buf = malloc(cap)) == NULL)
		fatal("signer: malloc");
	wb_init(&out);
	for (;;) {
		/* a batch: the complete frames read, answered in one write */
		prc = sign_batch_parse(f, SIGN_BATCH_MAX, &n, &used,
		    SIGN_T_OCSP, buf, len, err, sizeof(err));
		if (prc == SIGN_PARSE_BAD) {
			log_warnx("signer: OCSP channel: %s; closing it", err);
			break;
		}
		if (prc == SIGN_PARSE_OK) {
			pthread_rwlock_rdlock(&keys_lock);
			for (i = 0; i < n; i++)
				handle(ch->sp, &f[i], &out);
			pthread_rwlock_unlock(&keys_lock);
			if (!wb_ok(&out) || !write_all(ch->fd, out.data,
			    out.len))
				break;
			out.len = 0;
			memmove(buf, buf + used, len - used);
			len -= used;
			continue;
		}
		if (used > cap) {	/* a large frame announced */
			if ((nb = realloc(buf, used)) == NULL)
				fatal("signer: realloc");
			buf = nb;
			cap = used;
		}
		r = read(ch->fd, buf + len, cap - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	/* the network side sees the EOF and stops */
	close(ch->fd);
	free(buf);
	wb_cleanup(&out);
	return NULL;
}

static int
start_chans(struct sproc *sp, const int *fds, int num)
{
	struct chan *ch;
	pthread_t t;
	int i;

	for (i = 0; i < num; i++) {
		if ((ch = calloc(1, sizeof(*ch))) == NULL)
			fatal("signer: calloc");
		ch->sp = sp;
		ch->fd = fds[i];
		if (pthread_create(&t, NULL, chan_main, ch) != 0 ||
		    pthread_detach(t) != 0)
			return 0;
	}
	return 1;
}

/* Reads frames, answers each, writes the replies of one read at once. */
static int
serve(struct sproc *sp, int fd)
{
	uint8_t *buf, *nb;
	size_t cap = RBUF_MIN, len = 0, off, used;
	struct sign_frame f;
	struct wb out;
	enum sign_parse_rc prc;
	char err[256];
	ssize_t n;

	if ((buf = malloc(cap)) == NULL)
		fatal("signer: malloc");
	wb_init(&out);
	for (;;) {
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				log_info("signer: the network process is gone "
				    "(EOF); exiting");
			else
				log_warn("signer: read");
			break;
		}
		len += (size_t)n;
		off = 0;
		while ((prc = sign_frame_parse(&f, &used, buf + off, len - off,
		    err, sizeof(err))) == SIGN_PARSE_OK) {
			if (f.type >= SIGN_R_OK) {
				snprintf(err, sizeof(err), "a reply frame");
				prc = SIGN_PARSE_BAD;
				break;
			}
			if (f.type == SIGN_T_OCSP_COMMIT)
				pthread_rwlock_wrlock(&keys_lock);
			else
				pthread_rwlock_rdlock(&keys_lock);
			handle(sp, &f, &out);
			pthread_rwlock_unlock(&keys_lock);
			off += used;
		}
		if (prc == SIGN_PARSE_BAD) {
			log_warnx("signer: malformed request: %s; closing",
			    err);
			free(buf);
			wb_cleanup(&out);
			return 0;
		}
		memmove(buf, buf + off, len - off);
		len -= off;
		if (used > cap) {	/* a large frame announced */
			if ((nb = realloc(buf, used)) == NULL)
				fatal("signer: realloc");
			buf = nb;
			cap = used;
		} else if (len == 0 && cap > RBUF_MIN) {
			free(buf);
			cap = RBUF_MIN;
			if ((buf = malloc(cap)) == NULL)
				fatal("signer: malloc");
		}
		/* the certificates signed in this round are in signer.log
		 * before any of them leaves; if that cannot be made durable,
		 * none leaves and the signer stops (micad stops with it) */
		if (!log_sync(sp))
			fatalx("signer: signer.log cannot be made durable; "
			    "the certificates just signed are not sent; "
			    "exiting");
		if (!wb_ok(&out) || !write_all(fd, out.data, out.len)) {
			log_warn("signer: write");
			break;
		}
		out.len = 0;
	}
	free(buf);
	wb_cleanup(&out);
	return 1;
}

/* Frees what the signer holds (memcheck then reports real leaks only). */
static void
sproc_cleanup(struct sproc *sp)
{
	X509_free(sp->ca);
	EVP_PKEY_free(sp->ca_key);
	OPENSSL_free(sp->ca_alg);
	EVP_MD_CTX_free(sp->ca_tmpl);
	OPENSSL_free(sp->ca_name);
	EVP_MD_CTX_free(sp->cur.tmpl);
	EVP_PKEY_free(sp->cur.key);
	EVP_MD_CTX_free(sp->prev.tmpl);
	EVP_PKEY_free(sp->prev.key);
	EVP_PKEY_free(sp->pending);
	free(sp->set);
	if (sp->log_fd != -1)
		close(sp->log_fd);
	if (sp->state_fd != -1)
		close(sp->state_fd);
}

/* PR_SET_PDEATHSIG (SIGUSR2): the network process died, often before
 * the EOF is read. */
static void
on_term(int sig)
{
	static const char msg[] = "micad-signer: info: signer: the network "
	    "process is gone; exiting\n";

	(void)sig;
	(void)write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(0);
}

void
sign_proc_main(int fd, const int *ocsp_fds, int num_ocsp,
    const struct mica_conf *c, const struct privdrop *pd)
{
	struct sproc sp;
	struct wb out;
	char err[1024];
	int ok;

	memset(&sp, 0, sizeof(sp));
	sp.c = c;
	sp.log_fd = sp.state_fd = -1;
	log_init("micad-signer", log_getlevel());
	/* the network process gone for any reason: go too */
	signal(SIGUSR2, on_term);
	(void)prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0);
	/* A stop signal for the whole group (^C, systemd's SIGTERM to the
	 * unit) is micad's to handle: the signer serves micad's shutdown
	 * and exits when micad closes the socket. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	/* A renewal that crashed between its renames, before the keys
	 * are loaded. */
	log_debug("signer start: forked +%.1f ms", log_clock_ms());
	ok = renew_recover(c, err, sizeof(err)) &&
	    open_records(&sp, pd, err, sizeof(err)) &&
	    load_keys(&sp, err, sizeof(err)) &&
	    privdrop_drop(pd, err, sizeof(err));
	log_debug("signer start: keys loaded +%.1f ms", log_clock_ms());
	/* setuid made the process dumpable again: keys never in a core
	 * dump, no same-uid ptrace */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_warn("signer: PR_SET_DUMPABLE");
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (!ok) {
		/* the first request (HELLO) gets the reason */
		wb_init(&out);
		(void)sign_frame_encode(&out, SIGN_R_ERR, 0, err, strlen(err));
		if (wb_ok(&out))
			(void)write_all(fd, out.data, out.len);
		wb_cleanup(&out);
		log_warnx("%s", err);
		_exit(1);
	}
	log_info("signer: ready (pid %ld), CA key and OCSP key loaded, "
	    "last CRL numbers full %" PRIu64 " delta %" PRIu64,
	    (long)getpid(), sp.last_crl[0], sp.last_crl[1]);
	if (!start_chans(&sp, ocsp_fds, num_ocsp))
		fatalx("signer: cannot start the OCSP channel threads");
	ok = serve(&sp, fd);
	/* the channel threads are held off for good: free, then go */
	pthread_rwlock_wrlock(&keys_lock);
	sproc_cleanup(&sp);
	_exit(ok ? 0 : 1);
}
