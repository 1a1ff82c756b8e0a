/*
 * sign_policy.h - what micad's signer process agrees to sign.
 *
 * The signer assumes the network process that asks may be compromised.
 * It parses every TBS itself: a certificate's TBSCertificate with
 * OpenSSL's templates but for the subject key (sign_tbs_parse), a
 * TBSCertList and an OCSP ResponseData with the
 * bounds-checked DER walker below (only the top-level fields are looked
 * at: a 10^6-entry CRL is not decoded entry by entry), and checks them
 * against the CA before any signature is made.
 */
#ifndef MICA_SIGN_POLICY_H
#define MICA_SIGN_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/bytes.h"

#define SIGN_EC_PT_MAX	133	/* an EC point 04 || X || Y on P-521 */

/*
 * Reads one DER TLV from r: single-byte tag (the high-tag form is
 * refused), definite length (short or long form up to 4 length bytes,
 * minimal).  *out_content is a sub-reader over the value; *out_tlv and
 * *out_tlv_len span the whole TLV.  Returns 1, or 0 when malformed or
 * short (r is then left unspecified).
 */
int	sign_der_next(struct rd *r, uint8_t *out_tag, struct rd *out_content,
	    const uint8_t **out_tlv, size_t *out_tlv_len);

/* The parts of a DER Certificate (RFC 5280 4.1). */
struct sign_cert_spans {
	const uint8_t	*tbs;		/* tbsCertificate TLV */
	size_t		 tbs_len;
	const uint8_t	*alg;		/* signatureAlgorithm TLV */
	size_t		 alg_len;
	const uint8_t	*sig;		/* signatureValue bits */
	size_t		 sig_len;
};

/*
 * Splits der as Certificate ::= SEQUENCE { tbsCertificate SEQUENCE,
 * signatureAlgorithm SEQUENCE, signatureValue BIT STRING (no unused
 * bits, at least one byte) } with nothing after it, without decoding the
 * parts.  Pointers in *out point into der.  1, or 0 when malformed.
 */
int	sign_cert_spans(struct sign_cert_spans *out, const uint8_t *der,
	    size_t der_len);

/* The fields of a TBSCertList (RFC 5280 5.1.2) the policy checks. */
struct sign_crl_info {
	const uint8_t	*alg;		/* signature AlgorithmIdentifier TLV */
	size_t		 alg_len;
	const uint8_t	*issuer;	/* Name TLV */
	size_t		 issuer_len;
	uint64_t	 number;	/* cRLNumber (RFC 5280 5.2.3) */
	int		 is_delta;	/* deltaCRLIndicator present (5.2.4) */
};

/*
 * Walks a TBSCertList: SEQUENCE { version INTEGER OPTIONAL, signature
 * AlgorithmIdentifier, issuer Name, thisUpdate Time, nextUpdate Time
 * OPTIONAL, revokedCertificates SEQUENCE OPTIONAL (skipped by length),
 * crlExtensions [0] OPTIONAL } with no trailing bytes; the extensions are
 * decoded with OpenSSL; a cRLNumber (non-negative, at most 64 bits) is
 * required.  Pointers in *out point into tbs.  1, or 0 with err.
 */
int	sign_crl_parse(struct sign_crl_info *out, const uint8_t *tbs,
	    size_t tbs_len, char *err, size_t err_len);

/*
 * Walks an OCSP ResponseData (RFC 6960 4.2.1): SEQUENCE { [0] version
 * OPTIONAL, responderID ([1] byName or [2] byKey), producedAt
 * GeneralizedTime, responses SEQUENCE, [1] extensions OPTIONAL } with no
 * trailing bytes.  *out_respid spans the responderID TLV.  1, or 0 with
 * err.
 */
int	sign_ocsp_parse(const uint8_t **out_respid, size_t *out_respid_len,
	    const uint8_t *tbs, size_t tbs_len, char *err, size_t err_len);

/* The responderID byKey TLV (RFC 6960 4.2.1: [2] OCTET STRING SHA-1 of
 * the subjectPublicKey BIT STRING value) of pub; 24 bytes.  1 or 0. */
#define SIGN_RESPID_LEN	24
int	sign_respid_bykey(uint8_t out[SIGN_RESPID_LEN], EVP_PKEY *pub);

/*
 * A public key as its curve and point, uncompressed, made once per key so
 * that a named-curve EC leaf key is compared with it without reading it
 * again (sign_cert_rules).
 */
enum sign_key_kind {
	SIGN_KEY_OTHER = 0,	/* compared with EVP_PKEY_eq */
	SIGN_KEY_EC,		/* a named-curve EC key: nid, pt */
	SIGN_KEY_NOT_EC,	/* never an EC key's equal */
};
struct sign_key_pt {
	enum sign_key_kind kind;
	int		 nid;
	uint8_t		 pt[SIGN_EC_PT_MAX];
	size_t		 pt_len;
};
void	sign_key_pt_set(struct sign_key_pt *out, EVP_PKEY *k);

/* What a certificate is checked against. */
struct sign_cert_rules {
	X509		*ca;		/* issuer name, validity, CA key */
	const uint8_t	*alg;		/* AlgorithmIdentifier DER the signer
					 * writes with the CA key */
	size_t		 alg_len;
	EVP_PKEY	*ocsp_pub;	/* the OCSP signer's current key */
	EVP_PKEY	*pending_pub;	/* the OCSP renewal's new key, or NULL */
	/* the same keys by sign_key_pt_set, or NULL (read each time) */
	const struct sign_key_pt *ca_pt, *ocsp_pt, *pending_pt;
};

/*
 * A TBSCertificate as received, parsed without OpenSSL decoding its
 * subject key (on OpenSSL 3.0 a decoder context per key costs more than
 * the CA's signature): the key's AlgorithmIdentifier and BIT STRING are
 * kept as they are, the key itself built from its parts (RSA, Ed25519,
 * Ed448; anything else through d2i_PUBKEY) or, for a named-curve EC key,
 * only its point checked on the curve and compared as such.
 */
struct sign_tbs {
	X509		*x;	/* the TBS's fields in an unsigned X509: the
				 * key's bits set, never decoded (for the
				 * extension flags, names, serial, digest) */
	X509_ALGOR	*alg;	/* the signature field */
	EVP_PKEY	*pub;	/* the subject key; NULL when it does not
				 * decode, or (ec_nid != 0) until needed */
	int		 ec_nid;	/* a named-curve EC key: its curve, */
	uint8_t		 ec_pt[SIGN_EC_PT_MAX];	/* its point uncompressed */
	size_t		 ec_pt_len;
};

/*
 * Parses tbs as one DER TBSCertificate (RFC 5280 4.1): every length
 * definite and minimal, no constructed string, the fields re-encoded
 * equal to the bytes, nothing after it; so that the bytes can be signed
 * as received.  1, or 0 with err (out is then empty).  Free with
 * sign_tbs_cleanup (takes an empty or a failed one too).
 */
int	sign_tbs_parse(struct sign_tbs *out, const uint8_t *tbs,
	    size_t tbs_len, char *err, size_t err_len);
void	sign_tbs_cleanup(struct sign_tbs *);

/* sign_cert_check's rules on a parsed TBSCertificate (may build t->pub). */
int	sign_tbs_check(const struct sign_cert_rules *, struct sign_tbs *t,
	    int ocsp_renewal, char *err, size_t err_len);

/*
 * A Certificate DER: SEQUENCE { tbs, alg, BIT STRING { 0 unused bits,
 * sig } } from DER parts (not checked).  *out is malloc'd.  1, or 0
 * when a length is over 2^32.
 */
int	sign_cert_build(uint8_t **out, size_t *out_len, const uint8_t *tbs,
	    size_t tbs_len, const uint8_t *alg, size_t alg_len,
	    const uint8_t *sig, size_t sig_len);

/*
 * Checks a certificate the network side asks the CA to sign: version 3;
 * issuer = the CA's subject; subject not the CA's; signature algorithm
 * (in the TBS) = rules->alg; serial positive, at most 20 bytes (RFC 5280
 * 4.1.2.2); notBefore <= notAfter, both within the CA's validity; no
 * basicConstraints cA and no keyCertSign/cRLSign (a leaf only, RFC 5280
 * 4.2.1.9, 4.2.1.3); extensions decodable; public key not the CA's nor
 * the OCSP signer's.  ocsp_renewal = 0: no id-kp-OCSPSigning and no
 * anyExtendedKeyUsage (RFC 6960 4.2.2.2: a delegated responder).
 * ocsp_renewal = 1: the key must be rules->pending_pub and the EKU
 * OCSPSigning present.  1, or 0 with the rule in err.
 */
int	sign_cert_check(const struct sign_cert_rules *, X509 *x,
	    int ocsp_renewal, char *err, size_t err_len);

#endif
