/*
 * cainit_local.h - what casign.c (the self-signed init) shares with
 * cainit.c (an issuing CA under another root, an existing CA).  Not a
 * public header: only files of ca/ include it.
 */
#ifndef MICA_CAINIT_LOCAL_H
#define MICA_CAINIT_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca.h"

/*
 * The CA's name from opts: the parsed --subject, else CN=cn (default
 * CA_DEFAULT_CN).  out_cn gets the (last) common name, or CA_DEFAULT_CN
 * for a subject without one, to name the OCSP signer.  Returns a new
 * X509_NAME or NULL with a message in err.
 */
X509_NAME	*ca_init_name(const struct ca_init_opts *opts, char *out_cn,
		    size_t cn_len, char *err, size_t err_len);
/*
 * An OCSP signer (tls_names NULL: EKU OCSPSigning, ocsp-nocheck) or TLS
 * server certificate (SANs from tls_names) for key, signed by ca/ca_key,
 * valid days from now and never past the CA.  Returns a new X509, or NULL
 * with a message in err (err must start as "").
 */
X509		*ca_make_sub(X509 *ca, EVP_PKEY *ca_key, const char *cn,
		    EVP_PKEY *key, int days, time_t now,
		    const char *const *tls_names, size_t num_names,
		    uint8_t serial[CA_SERIAL_LEN], char *err, size_t err_len);
/* A TLS client certificate CN=cn (EKU clientAuth), like ca_make_sub. */
X509		*ca_make_client(X509 *ca, EVP_PKEY *ca_key, const char *cn,
		    EVP_PKEY *key, int days, time_t now,
		    uint8_t serial[CA_SERIAL_LEN], char *err, size_t err_len);
/* The last commonName of n into out, or CA_DEFAULT_CN when it has none. */
void		 ca_name_last_cn(char *out, size_t out_len, const X509_NAME *n);
/* lstat says the path exists (or cannot tell): 1, else 0. */
int		 ca_path_exists(const char *path);
/* Makes dir (0755 if new) and priv (0700), refusing loose modes.  1/0. */
int		 ca_init_dirs(const char *dir, const char *priv, char *err,
		    size_t err_len);

#endif
