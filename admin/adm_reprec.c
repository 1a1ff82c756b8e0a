/*
 * adm_reprec.c - the checks of the admin command "replica record NAME"
 * (mica-admin replica add while micad runs).  Its name and attachments
 * come from the admin socket: bytes from another process, taken on trust
 * only once checked here, before anything is written.  Pure: no store,
 * no micad; the command (adm_cmd.c), the unit test and the fuzz target
 * call it alike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "admin/admin.h"
#include "ca/ca.h"
#include "ca/repl.h"
#include "common/log.h"

/* What each attachment must be: the profiles replica add issues. */
static const struct reprec_slot {
	const char	*att;
	const char	*what;
	uint32_t	 xku;		/* the EKU it must carry */
} slots[ADM_REPREC_CERTS] = {
	{ "cert0", "OCSP signer", XKU_OCSP_SIGN },
	{ "cert1", "TLS server", XKU_SSL_SERVER },
	{ "cert2", "replication client", XKU_SSL_CLIENT },
};

void
adm_reprec_cleanup(struct adm_replica_rec *rr)
{
	int i;

	for (i = 0; i < ADM_REPREC_CERTS; i++)
		free(rr->rec[i].der);
	memset(rr, 0, sizeof(*rr));
}

/* An attachment's name for a message: it is the peer's, shown only when
 * it is made of the characters our names use. */
static const char *
shown_name(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
		    name[i] == '-' || name[i] == '.'))
			return "(a name with other characters)";
	return i == 0 ? "(an empty name)" : name;
}

/* Each attachment is one of the slots, and each slot is there once. */
static int
check_attachments(const struct adm_msg *in, const struct adm_attach *out[],
    char *err, size_t err_len)
{
	int i, k;

	for (k = 0; k < ADM_REPREC_CERTS; k++)
		out[k] = NULL;
	for (i = 0; i < in->num_att; i++) {
		for (k = 0; k < ADM_REPREC_CERTS; k++)
			if (strcmp(in->att[i].name, slots[k].att) == 0)
				break;
		if (k == ADM_REPREC_CERTS) {
			snprintf(err, err_len, "replica record: unknown "
			    "attachment %s (cert0, cert1, cert2 only)",
			    shown_name(in->att[i].name));
			return 0;
		}
		if (out[k] != NULL) {
			snprintf(err, err_len, "replica record: %s given "
			    "twice", slots[k].att);
			return 0;
		}
		out[k] = &in->att[i];
	}
	for (k = 0; k < ADM_REPREC_CERTS; k++) {
		if (out[k] == NULL || out[k]->len == 0) {
			snprintf(err, err_len, "replica record: %s (the %s "
			    "certificate) missing", slots[k].att,
			    slots[k].what);
			return 0;
		}
		if (out[k]->len > ADM_REPREC_CERT_MAX) {
			snprintf(err, err_len, "replica record: %s is %zu "
			    "bytes, at most %d", slots[k].att, out[k]->len,
			    ADM_REPREC_CERT_MAX);
			return 0;
		}
	}
	return 1;
}

/* The subject has exactly one commonName, and it is want (no NUL in it). */
static int
only_cn_is(X509 *x, const char *want)
{
	const X509_NAME *n = X509_get_subject_name(x);
	const ASN1_STRING *s;
	int pos;

	if ((pos = X509_NAME_get_index_by_NID(n, NID_commonName, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(n, NID_commonName, pos) >= 0)
		return 0;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, pos));
	return s != NULL && (size_t)ASN1_STRING_length(s) == strlen(want) &&
	    memcmp(ASN1_STRING_get0_data(s), want, strlen(want)) == 0;
}

/* One attachment: a whole DER certificate of slot k that ca issued. */
static int
check_cert(X509 *ca, const struct adm_attach *a, int k, const char *cn,
    struct cert_rec *c, char *err, size_t err_len)
{
	const unsigned char *p = a->data;
	X509 *x;
	int ok;

	if ((x = d2i_X509(NULL, &p, (long)a->len)) == NULL ||
	    p != a->data + a->len) {
		ERR_clear_error();
		X509_free(x);
		snprintf(err, err_len, "replica record: %s is not a DER "
		    "certificate (or has bytes after it)", slots[k].att);
		return 0;
	}
	ok = X509_check_issued(ca, x) == X509_V_OK &&
	    X509_verify(x, X509_get0_pubkey(ca)) == 1;
	if (!ok)
		snprintf(err, err_len, "replica record: %s is not a "
		    "certificate this CA issued", slots[k].att);
	else if (!(ok = (X509_get_extension_flags(x) & EXFLAG_XKUSAGE) &&
	    (X509_get_extended_key_usage(x) & slots[k].xku)))
		snprintf(err, err_len, "replica record: %s is not the %s "
		    "certificate (its extended key usage)", slots[k].att,
		    slots[k].what);
	else if (k == ADM_REPREC_CERTS - 1 && !(ok = only_cn_is(x, cn)))
		snprintf(err, err_len, "replica record: %s is not the "
		    "replication certificate of this replica (its subject "
		    "must be CN=%s)", slots[k].att, cn);
	else if (!(ok = ca_cert_serial(x, c->serial) &&
	    ca_cert_times(x, &c->st.not_before, &c->st.not_after)))
		snprintf(err, err_len, "replica record: %s: serial or "
		    "validity unreadable", slots[k].att);
	X509_free(x);
	ERR_clear_error();
	return ok;
}

int
adm_reprec_parse(struct adm_replica_rec *out, char *out_name,
    size_t name_len, const struct adm_msg *in, X509 *ca, time_t now,
    char *err, size_t err_len)
{
	const struct adm_attach *att[ADM_REPREC_CERTS];
	char cn[REPL_NAME_MAX + 16];
	struct cert_rec *c;
	int i, k;

	memset(out, 0, sizeof(*out));
	if (in->argc != 3 || strcmp(in->argv[0], "replica") != 0 ||
	    strcmp(in->argv[1], "record") != 0) {
		snprintf(err, err_len, "usage: replica record NAME");
		return 0;
	}
	/* the name as the replication certificate's CN carries it */
	if (strlen(in->argv[2]) > REPL_NAME_MAX ||
	    snprintf(cn, sizeof(cn), "replica:%s", in->argv[2]) >=
	    (int)sizeof(cn) || !repl_cn_name(cn, out_name, name_len)) {
		snprintf(err, err_len, "replica record: bad name (1 to %d of "
		    "a-z 0-9 - _ .)", REPL_NAME_MAX);
		return 0;
	}
	if (!check_attachments(in, att, err, err_len))
		return 0;
	for (k = 0; k < ADM_REPREC_CERTS; k++) {
		c = &out->rec[k];
		if (!check_cert(ca, att[k], k, cn, c, err, err_len))
			goto fail;
		for (i = 0; i < k; i++)
			if (memcmp(out->rec[i].serial, c->serial,
			    sizeof(c->serial)) == 0) {
				snprintf(err, err_len, "replica record: %s "
				    "and %s are the same certificate",
				    slots[i].att, slots[k].att);
				goto fail;
			}
		if ((c->der = malloc(att[k]->len)) == NULL)
			fatalx("out of memory");
		memcpy(c->der, att[k]->data, att[k]->len);
		c->der_len = att[k]->len;
		c->st.status = CERT_GOOD;
		c->issued_at = now;
		snprintf(c->account, sizeof(c->account), "%s",
		    CA_OWN_ACCOUNT);
	}
	out->name = out_name;
	return 1;
 fail:
	adm_reprec_cleanup(out);
	return 0;
}
