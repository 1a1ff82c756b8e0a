/*
 * sigmd.h - the one place that chooses the digest mica signs with for a
 * key (certificates, CRLs, OCSP answers).
 *
 * EC P-384 signs with SHA-384 (CA/Browser Forum Baseline Requirements
 * 7.1.3.2: P-384 keys are paired with SHA-384), EC P-256 and RSA with
 * SHA-256, Ed25519/Ed448 are pure (no digest: RFC 8410 section 6).
 */
#ifndef MICA_SIGMD_H
#define MICA_SIGMD_H

#include <openssl/evp.h>

/* "SHA384", "SHA256", or NULL for EdDSA keys (pure signatures). */
const char	*sigmd_name(const EVP_PKEY *key);
/* The same as an EVP_MD (static, never freed), NULL for EdDSA keys. */
const EVP_MD	*sigmd_get(const EVP_PKEY *key);

#endif
