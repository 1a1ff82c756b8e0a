/*
 * ca.h - CA keys, certificate signing and CSR checks.
 *
 * Key generation and PEM key/certificate files, the offline "init" that
 * creates the CA, OCSP signer and TLS server certificates, the signer that
 * micad loads at start, leaf issuance from a checked CSR, and the CSR
 * policy checks (RFC 2986 parse + signature, key policy, subject, "new key
 * differs from the lost one").
 *
 * Threads: all functions are reentrant.  A loaded struct ca_signer is
 * read-only after ca_signer_load and may be used by several threads at
 * once (OpenSSL 3 EVP_PKEY signing with a shared key is thread-safe).
 * Serials come from libsodium: the program must call sodium_init() once at
 * start (ca_random_serial calls it too, as a safety net).
 */
#ifndef MICA_CA_H
#define MICA_CA_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CA_SERIAL_LEN		16
#define CA_CSR_MAX		(64 * 1024)	/* DER bytes, checked first */
#define CA_SUBJECT_MAX		1024		/* subject text */
#define CA_URL_MAX		400		/* http-url base */
#define CA_ERR_MAX		512		/* enough for every message */
#define CA_PROFILE_MAX_EKU	8
#define CA_CHAIN_MAX		8		/* certificates in a chain file:
						 * the CA, its issuers, the
						 * root (= PROTO_CHAIN_MAX) */
/* PEM files are read whole into memory (one read(2)), capped: a key
 * file (an encrypted RSA-8192 key is about 6.5 KB), a certificate file
 * (a chain file: CA_CHAIN_MAX times that) */
#define CA_KEY_FILE_MAX		(64 * 1024)
#define CA_CERT_FILE_MAX	(64 * 1024)
#define CA_DEFAULT_CN		"mica CA"
#define CA_DEFAULT_KEY_TYPE	"ec-p256"
/* The account of mica's own certificates (CA, OCSP signer, TLS server)
 * in the store: never revoked or held through the subscriber commands. */
#define CA_OWN_ACCOUNT		"(ca)"

/* ---- keys, serials, files ---- */

/*
 * Generates a key: type is "ec-p256" (also for NULL or ""), "ec-p384",
 * "ed25519" or "rsa-3072".  Returns 1 with *out owned by the caller
 * (EVP_PKEY_free), 0 for an unknown type or an OpenSSL failure (logged).
 */
int	ca_keygen(EVP_PKEY **out, const char *type);

/* 16 random bytes (libsodium), top bit clear, never all zero. */
void	ca_random_serial(uint8_t out[CA_SERIAL_LEN]);

/*
 * Writes key as a PEM PKCS#8 file created with O_EXCL and mode 0600
 * (refuses an existing file); with a non-NULL, non-empty passphrase the
 * key is encrypted (PBES2: PBKDF2-HMAC-SHA256, 600000 rounds, 16-byte
 * salt, AES-256-CBC).  The file is fsync'd.  Returns 1, or 0 with a
 * message in err.
 */
int	ca_key_write(const char *path, EVP_PKEY *key, const char *passphrase,
	    char *err, size_t err_len);
/*
 * Reads a PEM private key.  Refuses a file that is not a regular file or
 * is readable/writable by group or others (mode & 077), naming the file.
 * passphrase may be NULL (an encrypted key then fails, never prompts).
 * A pkcs11: URI instead of a path loads the key from a token
 * (ca_key_token_load; passphrase unused).
 * Returns 1 with *out owned by the caller, or 0 with a message in err.
 */
int	ca_key_read(EVP_PKEY **out, const char *path, const char *passphrase,
	    char *err, size_t err_len);
/* ---- keys in a PKCS#11 token (ca/sign_key.c) ---- */

#define CA_KEY_URI_MAX		1024	/* a key setting: path or URI */

/*
 * 1 when a key setting is an RFC 7512 URI ("pkcs11:...", scheme case
 * insensitive) rather than a file name.  ca_key_read takes both: for a
 * URI it calls ca_key_token_load, so ca_key_read stays the one function
 * through which keys are loaded.
 */
int	ca_key_is_uri(const char *setting);
/*
 * The PKCS#11 module used for URIs without module-path= in their query
 * ([ca] pkcs11_module); NULL or "" = none (a URI then needs module-path).
 * Call before loading; copies path.
 */
void	ca_key_pkcs11_module(const char *path);
/* uri without its query ("?pin-value=..."): what messages may show. */
void	ca_key_uri_display(char *out, size_t out_len, const char *uri);
/*
 * Loads the private key a pkcs11: URI names (token=, object= and/or id=,
 * the PIN from pin-source=file:PATH (a 0600 file) or pin-value=) through
 * the OpenSSL "pkcs11" engine (libp11).  The engine is set up at the
 * first call, in the calling process, and is refused in a process forked
 * after that: call this in the process that signs.  *out_not_found (may
 * be NULL) is set to 1 when the token has no such key.  Returns 1 with
 * *out (EVP_PKEY_free; the key never leaves the token), or 0 with a
 * message in err that shows the URI without its query (no PIN).
 */
int	ca_key_token_load(EVP_PKEY **out, const char *uri, int *out_not_found,
	    char *err, size_t err_len);
/*
 * Makes a key pair of key_type (ec-p256, ec-p384, rsa-3072; NULL =
 * ec-p256) in the token, labelled with the URI's object= (and its id=),
 * private key CKA_SENSITIVE and not extractable, by running pkcs11-tool
 * (opensc; the PIN passed in its environment, not on its command line).
 * 1, or 0 with err.
 */
int	ca_key_token_generate(const char *uri, const char *key_type,
	    char *err, size_t err_len);
/* Loads the key the URI names, making it first when the token has none
 * (*out_made = 1 then).  1 with *out, or 0 with err. */
int	ca_key_token_obtain(EVP_PKEY **out, const char *uri,
	    const char *key_type, int *out_made, char *err, size_t err_len);
/*
 * Where a key setting keeps the key, for status lines: "file PATH" or
 * "token LABEL object LABEL" ("token LABEL id HEX"), never the PIN.
 * Returns 1, or 0 for a URI that does not parse (out then says so).
 */
int	ca_key_describe(char *out, size_t out_len, const char *setting);

/* Writes a PEM certificate, O_EXCL, mode 0644, fsync'd.  1 or 0 + err. */
int	ca_cert_write(const char *path, X509 *cert, char *err, size_t err_len);
/*
 * ca_key_write and ca_cert_write, with the new file handed to uid:gid by
 * fchown on the open descriptor before it is written ((uid_t)-1 and
 * (gid_t)-1 leave it as created).  For root writing files for the user
 * micad runs as: no path-based chown, no symlink followed (O_NOFOLLOW).
 */
int	ca_key_write_owned(const char *path, EVP_PKEY *key,
	    const char *passphrase, uid_t uid, gid_t gid, char *err,
	    size_t err_len);
int	ca_cert_write_owned(const char *path, X509 *cert, uid_t uid, gid_t gid,
	    char *err, size_t err_len);
/* Reads a PEM certificate.  1 with *out owned by the caller, or 0 + err. */
int	ca_cert_read(X509 **out, const char *path, char *err, size_t err_len);

/*
 * Reads every PEM certificate of path (at least one, at most
 * CA_CHAIN_MAX), in file order.  Returns 1 with *out owned by the caller
 * (sk_X509_pop_free(.., X509_free)), or 0 + err.
 */
int	ca_certs_read(STACK_OF(X509) **out, const char *path, char *err,
	    size_t err_len);
/* Writes certs as one PEM file, O_EXCL, mode 0644, fsync'd.  1 or 0 + err. */
int	ca_certs_write(const char *path, STACK_OF(X509) *certs, char *err,
	    size_t err_len);
/* Writes a PEM CSR, O_EXCL, mode 0644, fsync'd.  1 or 0 + err. */
int	ca_csr_write(const char *path, X509_REQ *req, char *err,
	    size_t err_len);

/* Serial of cert as 16 bytes big-endian; 0 if negative or wider. */
int	ca_cert_serial(const X509 *cert, uint8_t out[CA_SERIAL_LEN]);
/* notBefore/notAfter as unix seconds.  1, or 0 if unparseable. */
int	ca_cert_times(const X509 *cert, int64_t *out_not_before,
	    int64_t *out_not_after);
/* DER encoding into a malloc'd buffer (caller free()s).  1 or 0. */
int	ca_cert_der(const X509 *cert, uint8_t **out, size_t *out_len);

/* ---- names ---- */

/*
 * Parses a subject given as "/CN=alice/O=Example" (openssl -subj form,
 * first RDN first, '+' joins a multi-valued RDN, '\' escapes) or as
 * "CN=alice,O=Example" (RFC 4514/2253 string: LAST RDN first, so this
 * example is the name O=Example, CN=alice; '\,' '\+' '\XX' escapes).
 * Returns a new X509_NAME (X509_NAME_free) or NULL with a message in err.
 */
X509_NAME	*ca_subject_parse(const char *text, char *err, size_t err_len);
/*
 * Prints name as RFC 2253 text (UTF-8 kept as is) into out.  Returns 1, or
 * 0 when it did not fit (out then holds a truncated, terminated string).
 */
int		 ca_name_print(char *out, size_t out_len, const X509_NAME *name);

/* ---- CSR checks ---- */

struct ca_csr_policy {
	/* Account's allowed subject text (ca_subject_parse form); NULL/"" =
	 * any subject. */
	const char		*allowed_subject;
	/* Subject the CSR must carry exactly (e.g. the lost certificate's);
	 * NULL = no such check. */
	const X509_NAME		*expected_subject;
	/* The CSR key must differ from this key (the lost certificate's);
	 * NULL = no check.  lost_cert_der is the same check from the
	 * certificate DER as stored; both may be given. */
	EVP_PKEY		*lost_key;
	const uint8_t		*lost_cert_der;
	size_t			 lost_cert_len;
};

/*
 * Checks a CSR from a client: size (<= CA_CSR_MAX, checked before
 * parsing), DER parse with no trailing bytes, version, key policy (RSA
 * 2048..8192 bits, EC P-256/P-384 only, Ed25519), signature (RFC 2986),
 * non-empty subject, then the optional policy checks.  policy may be NULL.
 * Returns 1 (with *out_csr owned by the caller, ca_csr_free, when out_csr
 * is not NULL)
 * or 0 with a message like "CSR: RFC 2986: signature does not verify" in
 * err, fit to send to the client.
 */
struct ca_csr;
int	ca_csr_check(struct ca_csr **out_csr, const uint8_t *der,
	    size_t der_len, const struct ca_csr_policy *policy, char *err,
	    size_t err_len);
void	ca_csr_free(struct ca_csr *);
/* The parts of a CSR that passed ca_csr_check, borrowed from it. */
const X509_NAME	*ca_csr_subject(const struct ca_csr *);
EVP_PKEY	*ca_csr_pubkey(const struct ca_csr *);
/* The subjectPKInfo: its bytes as received, its algorithm and its key
 * BIT STRING. */
const uint8_t	*ca_csr_spki(const struct ca_csr *, size_t *len);
const X509_ALGOR *ca_csr_spki_alg(const struct ca_csr *);
/* 1 when the subjectPKInfo bytes as received are the canonical SPKI of
 * the key (common/keyhash.h: what keyhash_pkey_der writes and hashes),
 * so they can be hashed and copied as they are; 0 when not known. */
int		 ca_csr_spki_canonical(const struct ca_csr *);
const ASN1_BIT_STRING *ca_csr_spki_key(const struct ca_csr *);
/* The requested extensions, as X509_REQ_get_extensions gives them: a new
 * stack (sk_X509_EXTENSION_pop_free; empty without the attribute), or
 * NULL when the attribute is not a SEQUENCE of extensions. */
STACK_OF(X509_EXTENSION) *ca_csr_extensions(const struct ca_csr *);

/* ---- issuance profile ---- */

struct ca_profile {
	uint32_t	key_usage;	/* X509v3_KU_* bits (openssl/x509v3.h) */
	int		eku[CA_PROFILE_MAX_EKU];	/* NIDs */
	size_t		num_eku;
	int		copy_san;	/* 1: copy DNS/email/IP SANs from the
					 * CSR (unverified by the CA!); 0 */
};

/* digitalSignature + clientAuth, no SAN copy. */
void	ca_profile_default(struct ca_profile *);
/*
 * Fills a profile from config text: key_usage like
 * "digitalSignature,keyEncipherment" and ext_key_usage like
 * "clientAuth,serverAuth" (OpenSSL names, also dotted OIDs OpenSSL
 * knows).  NULL or "" keeps the default for that part.  Returns 1, or 0
 * with a message naming the bad word in err.
 */
int	ca_profile_parse(struct ca_profile *out, const char *key_usage,
	    const char *ext_key_usage, char *err, size_t err_len);

/* ---- subjectAltNames as text (ca/san.c) ---- */

#define CA_SAN_TEXT_MAX		300	/* "email:" + 254 and a NUL */
#define CA_SAN_LIST_MAX		1024	/* an account's list, comma-separated */
#define CA_SANS_MAX		32	/* --san given to one command */

/*
 * Checks a DNS name: labels of 1..63 letters, digits and hyphens, not
 * starting or ending with a hyphen, at most 253 characters, one leading
 * "*." allowed (RFC 1034 3.1, RFC 1035 2.3.1).  1, or 0 with err.
 */
int	ca_dns_name_check(const char *name, char *err, size_t err_len);
/*
 * Parses "DNS:name", "IP:v4-or-v6" or "email:local@domain" (prefix in
 * any case) into a GENERAL_NAME (*out, GENERAL_NAME_free).  1, or 0 with
 * a message naming the SAN and the rule in err.
 */
int	ca_san_parse(GENERAL_NAME **out, const char *text, char *err,
	    size_t err_len);
/* Prints a DNS, IP or email GENERAL_NAME as "DNS:x", "IP:x", "email:x".
 * 0 for other types or when it does not fit. */
int	ca_san_print(char *out, size_t out_len, const GENERAL_NAME *gn);
/* Checks a comma-separated list of SAN texts.  1, or 0 with err. */
int	ca_san_list_check(const char *list, char *err, size_t err_len);
/*
 * 1 when every DNS, IP and email SAN of csr is on list (comma-separated
 * SAN texts; DNS names and emails compared ignoring case); 0 with "CSR:
 * subjectAltName DNS:x is not among the names the account may have (...)"
 * in err.
 */
int	ca_csr_san_allowed(const struct ca_csr *csr, const char *list,
	    char *err, size_t err_len);
/* ca_csr_san_allowed for the CSR's requested extensions (NULL: none). */
int	ca_exts_san_allowed(const STACK_OF(X509_EXTENSION) *exts,
	    const char *list, char *err, size_t err_len);
/* Adds (replacing any) a subjectAltName extension with the SAN texts
 * (num > 0).  1, or 0 with err. */
int	ca_add_sans(X509 *x, const char *const *sans, size_t num, char *err,
	    size_t err_len);

/* ---- CA initialisation (mica-admin init, offline) ---- */

struct ca_init_opts {
	const char		*dir;		/* created 0755 if missing */
	const char		*cn;		/* NULL = CA_DEFAULT_CN */
	const char		*subject;	/* full subject, ca_subject_parse
						 * form; NULL = CN=cn */
	const char		*key_type;	/* NULL = CA_DEFAULT_KEY_TYPE */
	const char		*passphrase;	/* encrypts ca.key; NULL = none */
	int			 ca_days;	/* 0 = 3650 */
	int			 ocsp_days;	/* 0 = 365 */
	int			 tls_days;	/* 0 = 365 */
	const char *const	*tls_names;	/* NULL = localhost, 127.0.0.1 */
	size_t			 num_tls_names;
	/* pkcs11: URIs (RFC 7512): the CA / OCSP signer key lives in that
	 * token (made there when it has none) and no key file is written;
	 * NULL = a key file. */
	const char		*key_uri;
	const char		*ocsp_key_uri;
};

/* What init made, so the caller can record the three certificates. */
struct ca_init_result {
	X509		*ca_cert;
	X509		*ocsp_cert;
	X509		*tls_cert;
	uint8_t		 ca_serial[CA_SERIAL_LEN];
	uint8_t		 ocsp_serial[CA_SERIAL_LEN];
	uint8_t		 tls_serial[CA_SERIAL_LEN];
	/* ca_init_given: the CA certificate was signed elsewhere (its
	 * serial is another CA's: ca_serial is zero, and it does not go
	 * into mica's store); chain_len certificates went to chain.pem */
	int		 external;
	int		 chain_len;
};

/*
 * Creates DIR/ca.crt, DIR/ocsp.crt, DIR/tls.crt (0644) and
 * DIR/private/{ca,ocsp,tls}.key (0600, private/ 0700): a self-signed root
 * (subject opts->subject, else CN=opts->cn; validity ca_days),
 * an OCSP signer (EKU OCSPSigning, ocsp-nocheck) and a TLS server
 * certificate (SANs from tls_names), three keys of key_type.  Only ca.key
 * is encrypted with the passphrase.  With key_uri / ocsp_key_uri that key
 * is the token's (ca_key_token_obtain) and its file is not written.  Refuses when DIR/ca.crt or
 * DIR/private/ca.key exists (or any of the six files); on failure removes
 * the files it created.  Returns 1 with *out filled (ca_init_result_cleanup)
 * or 0 with a message in err.
 */
int	ca_init_dir(struct ca_init_result *out, const struct ca_init_opts *opts,
	    char *err, size_t err_len);
/* Frees the certificates and zeroes the result. */
void	ca_init_result_cleanup(struct ca_init_result *);

/*
 * First half of an issuing CA under an offline root: makes DIR and
 * DIR/private as ca_init_dir does, a CA key of key_type in
 * DIR/private/ca.key (0600, encrypted with the passphrase) and
 * DIR/ca.csr (0644): a CSR with the subject (or CN) of opts, requesting
 * basicConstraints cA (critical) and keyUsage keyCertSign, cRLSign
 * (critical).  Refuses when ca.key, ca.csr or ca.crt exists.  Returns 1,
 * or 0 with a message in err (and nothing left behind).
 */
int	ca_init_csr(const struct ca_init_opts *opts, char *err,
	    size_t err_len);

/* A CA certificate signed elsewhere, for ca_init_given. */
struct ca_init_given {
	const char	*ca_cert;	/* PEM: the CA certificate */
	const char	*chain;		/* PEM: its issuers up to and
					 * including the root; NULL: ca_cert
					 * is itself a (self-signed) root */
	const char	*import_key;	/* an existing CA key, copied into
					 * DIR/private/ca.key; NULL: the key
					 * ca_init_csr left there */
};

/*
 * Second half (the offline root signed DIR/ca.csr), or the take-over of
 * an existing CA (import_key): checks that the certificate's key is the
 * CA key, that it is a CA (basicConstraints cA, keyUsage keyCertSign and
 * cRLSign) and that it chains to a self-signed root in the chain file
 * (X509_verify_cert, times checked), then writes DIR/ca.crt,
 * DIR/chain.pem (the CA first, the root last), the OCSP signer and TLS
 * certificates and keys as ca_init_dir does (key type: opts->key_type,
 * else that of the CA key), and with import_key the CA key as
 * DIR/private/ca.key (0600, O_EXCL, encrypted when a passphrase is
 * given; the passphrase also opens the imported file).  Returns 1 with
 * *out filled (out->external set) or 0 with a message in err, the files
 * it made removed.
 */
int	ca_init_given(struct ca_init_result *out,
	    const struct ca_init_opts *opts, const struct ca_init_given *given,
	    char *err, size_t err_len);

/*
 * Verifies ca up to a root: the self-signed certificates of issuers are
 * the trust anchors, the others untrusted intermediates; with no issuers
 * ca must be self-signed.  check_time 0 skips the validity periods.
 * Returns 1 with *out_path (ca first, the root last; sk_X509_pop_free)
 * or 0 with a message in err.
 */
int	ca_chain_verify(STACK_OF(X509) **out_path, X509 *ca,
	    STACK_OF(X509) *issuers, int check_time, char *err,
	    size_t err_len);
/*
 * Reads a chain file as micad serves it ([ca] chain): the CA
 * certificate ca first, then its issuers up to the root, verified with
 * ca_chain_verify (times not checked: a warning is logged for a
 * certificate that is expired or not yet valid).  path NULL or "": the
 * chain is ca alone.  Returns 1 with *out (ca first) or 0 + err.
 */
int	ca_chain_load(STACK_OF(X509) **out, const char *path, X509 *ca,
	    char *err, size_t err_len);

/* ---- the signer micad holds ---- */

struct ca_signer;

struct ca_signer_paths {
	const char	*ca_cert;
	const char	*ca_key;
	const char	*passphrase;	/* for ca_key; NULL = none */
	const char	*ocsp_cert;	/* NULL: the CA signs OCSP itself */
	const char	*ocsp_key;
};

/*
 * Loads the CA and OCSP certificates and keys, checks that each key
 * matches its certificate, that the CA certificate is a CA and that the
 * OCSP certificate was issued and signed by it.  Returns 1 with *out
 * (ca_signer_free) or 0 with a message in err.
 */
int	ca_signer_load(struct ca_signer **out, const struct ca_signer_paths *,
	    char *err, size_t err_len);
/* Builds a signer from objects (up-refs them; ocsp may be NULL). 1 or 0. */
int	ca_signer_new(struct ca_signer **out, X509 *ca_cert, EVP_PKEY *ca_key,
	    X509 *ocsp_cert, EVP_PKEY *ocsp_key, char *err, size_t err_len);
/*
 * Signs *x with the CA key (replacing *x by the signed certificate when
 * another process signed it).  ocsp_renewal: *x is the OCSP signer's
 * renewed certificate for the key the signer process made
 * (sign_client_ocsp_newkey); else a leaf.  1, or 0 with err.
 */
typedef int (*ca_sign_cert_fn)(void *arg, X509 **x, int ocsp_renewal,
	    char *err, size_t err_len);
/*
 * Signs the leaf x (built, unsigned) with the CA key in another process
 * and returns the signed certificate as DER only (malloc'd *out_der),
 * checked without decoding it: its TBSCertificate is the one built, and
 * its signature verifies under the CA key.  1, or 0 with err.
 */
typedef int (*ca_sign_der_fn)(void *arg, X509 *x, uint8_t **out_der,
	    size_t *out_len, char *err, size_t err_len);
/*
 * A signer whose private keys live in another process (micad's signer,
 * ca/sign_client.h): fn signs certificates, the get0_key functions
 * return NULL.  Up-refs the certificates (ocsp may be NULL).  1 or 0.
 */
int	ca_signer_new_remote(struct ca_signer **out, X509 *ca_cert,
	    X509 *ocsp_cert, ca_sign_cert_fn fn, void *arg, char *err,
	    size_t err_len);
int	ca_signer_sign_cert(const struct ca_signer *, X509 **x,
	    int ocsp_renewal, char *err, size_t err_len);
/* A remote signer's DER path for leaves (ca_issue with der_only); fn
 * takes the arg given to ca_signer_new_remote. */
void	ca_signer_set_remote_der(struct ca_signer *, ca_sign_der_fn fn);
void	ca_signer_free(struct ca_signer *);
/* Borrowed pointers, valid until ca_signer_free; the keys are NULL for
 * a remote signer. */
X509		*ca_signer_get0_cert(const struct ca_signer *);
EVP_PKEY	*ca_signer_get0_key(const struct ca_signer *);
X509		*ca_signer_get0_ocsp_cert(const struct ca_signer *);
EVP_PKEY	*ca_signer_get0_ocsp_key(const struct ca_signer *);
/*
 * OCSP CertID hashes (RFC 6960 4.1.1) of the CA with md (e.g.
 * EVP_sha1()): issuerNameHash over the DER subject, issuerKeyHash over
 * the subjectPublicKey BIT STRING value.  Both outputs must hold
 * EVP_MAX_MD_SIZE bytes; *out_len gets the hash length.  1 or 0.
 */
int	ca_signer_issuer_hashes(const struct ca_signer *, const EVP_MD *md,
	    uint8_t *out_name_hash, uint8_t *out_key_hash,
	    unsigned int *out_len);

/* ---- leaf issuance ---- */

struct ca_issue_params {
	const struct ca_csr	*req;		/* passed ca_csr_check */
	const X509_NAME		*subject;	/* the certificate's subject
						 * (the account's, or the lost
						 * certificate's); NULL = the
						 * CSR's */
	uint8_t			 serial[CA_SERIAL_LEN];	/* top bit clear, != 0 */
	int			 days;		/* 1..36500 */
	const struct ca_profile	*profile;	/* NULL = ca_profile_default */
	const char		*base_url;	/* http-url; NULL/"" = no AIA,
						 * CRL DP, freshestCRL */
	time_t			 now;		/* 0 = time(NULL) */
	const char *const	*sans;		/* SAN texts set by the operator
						 * (ca_san_parse form), instead
						 * of the CSR's; num_sans 0 =
						 * none */
	size_t			 num_sans;
	/* the CSR key's SubjectPublicKeyInfo as OpenSSL encodes the key
	 * (keyhash_pkey_der), when the caller has it: a CSR whose own
	 * SubjectPublicKeyInfo is these bytes has them copied into the
	 * certificate, without encoding the key again.  NULL = encode. */
	const uint8_t		*spki;
	size_t			 spki_len;
	/* 1: only der and the times are wanted; out->cert stays NULL
	 * (a remote signer's answer is then checked, not decoded) */
	int			 der_only;
};

struct ca_issued {
	X509		*cert;		/* NULL with der_only */
	uint8_t		*der;		/* malloc'd */
	size_t		 der_len;
	int64_t		 not_before;	/* now - 60 s */
	int64_t		 not_after;	/* clamped to the CA's notAfter */
};

/*
 * Signs a leaf certificate for params->req: subject params->subject (DER
 * as mica encodes it, not the CSR's bytes) or else the CSR's,
 * basicConstraints CA:FALSE (critical), keyUsage (critical) and EKU from
 * the profile, SKI from the CSR key, AKI keyid of the CA, and with a base
 * URL: AIA (OCSP <url>/ocsp, caIssuers <url>/ca.crt), CRL DP <url>/crl,
 * freshestCRL <url>/crl/delta.crl.  Digest from common/sigmd.h (SHA-384
 * for a P-384 CA key, SHA-256 for P-256 and RSA, none for Ed25519).
 * notAfter is capped at the CA's notAfter.
 * Returns 1 with *out filled (ca_issued_cleanup) or 0 with err.
 */
int	ca_issue(const struct ca_signer *, struct ca_issued *out,
	    const struct ca_issue_params *params, char *err, size_t err_len);
/* Frees cert and der and zeroes *out. */
void	ca_issued_cleanup(struct ca_issued *);

#endif
