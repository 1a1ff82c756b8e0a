/*
 * san.c - subjectAltName text: "DNS:host", "IP:addr", "email:user@host"
 * as the operator types them (mica-admin issue --san, account add
 * --san), checked for syntax, turned into GENERAL_NAMEs, and the check
 * of a CSR's SANs against an account's list.
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "common/log.h"

int
ca_dns_name_check(const char *name, char *err, size_t err_len)
{
	const char *p = name, *label;
	size_t n, total = strlen(name);

	/* one leading wildcard label, as certificates carry them */
	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	if (total == 0 || total > 253) {
		snprintf(err, err_len, "DNS name \"%s\": 1 to 253 characters "
		    "(RFC 1034 section 3.1)", name);
		return 0;
	}
	for (;;) {
		label = p;
		n = strspn(p, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
		if (n == 0 || n > 63) {
			snprintf(err, err_len, "DNS name \"%s\": each label "
			    "has 1 to 63 letters, digits or hyphens (RFC 1035 "
			    "section 2.3.1)", name);
			return 0;
		}
		if (label[0] == '-' || label[n - 1] == '-') {
			snprintf(err, err_len, "DNS name \"%s\": a label "
			    "neither starts nor ends with a hyphen (RFC 1035 "
			    "section 2.3.1)", name);
			return 0;
		}
		p += n;
		if (*p == '\0')
			break;
		if (*p != '.' || p[1] == '\0') {
			snprintf(err, err_len, "DNS name \"%s\": only letters, "
			    "digits, hyphens and dots between labels (RFC "
			    "1035 section 2.3.1)", name);
			return 0;
		}
		p++;
	}
	return 1;
}

static int
email_check(const char *addr, char *err, size_t err_len)
{
	const char *at = strrchr(addr, '@');
	size_t i;
	char e[256];

	for (i = 0; addr[i] != '\0'; i++)
		if ((unsigned char)addr[i] <= 0x20 ||
		    (unsigned char)addr[i] >= 0x7f) {
			snprintf(err, err_len, "email \"%s\": blanks, control "
			    "and non-ASCII characters are not allowed "
			    "(rfc822Name is an IA5String, RFC 5280 section "
			    "4.2.1.6)", addr);
			return 0;
		}
	if (at == NULL || at == addr || at[1] == '\0' ||
	    strchr(addr, '@') != at || i > 254) {
		snprintf(err, err_len, "email \"%s\": expected local-part@"
		    "domain (RFC 5280 section 4.2.1.6)", addr);
		return 0;
	}
	if (!ca_dns_name_check(at + 1, e, sizeof(e)) ||
	    strncmp(at + 1, "*.", 2) == 0) {
		snprintf(err, err_len, "email \"%s\": the domain is not a "
		    "host name (RFC 5280 section 4.2.1.6)", addr);
		return 0;
	}
	return 1;
}

/* The type prefix of text: GEN_DNS, GEN_IPADD, GEN_EMAIL or -1. */
static int
san_type(const char *text, const char **out_value)
{
	static const struct {
		const char	*prefix;
		int		 type;
	} types[] = {
		{ "DNS:", GEN_DNS }, { "IP:", GEN_IPADD },
		{ "email:", GEN_EMAIL },
	};
	size_t i, n;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		n = strlen(types[i].prefix);
		if (strncasecmp(text, types[i].prefix, n) == 0) {
			*out_value = text + n;
			return types[i].type;
		}
	}
	return -1;
}

int
ca_san_parse(GENERAL_NAME **out, const char *text, char *err,
    size_t err_len)
{
	GENERAL_NAME *gn = NULL;
	ASN1_OCTET_STRING *os = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	const char *v = NULL;
	unsigned char ip[16];
	int type, iplen, rc = 0;
	char e[CA_ERR_MAX];

	if ((type = san_type(text, &v)) < 0) {
		snprintf(err, err_len, "SAN \"%s\": expected DNS:NAME, IP:ADDRESS "
		    "or email:ADDRESS", text);
		goto out;
	}
	if ((gn = GENERAL_NAME_new()) == NULL)
		fatalx("GENERAL_NAME_new");
	if (type == GEN_IPADD) {
		iplen = inet_pton(AF_INET, v, ip) == 1 ? 4 :
		    inet_pton(AF_INET6, v, ip) == 1 ? 16 : 0;
		if (iplen == 0) {
			snprintf(err, err_len, "SAN \"%s\": not an IPv4 or IPv6 "
			    "address", text);
			goto out;
		}
		if ((os = ASN1_OCTET_STRING_new()) == NULL ||
		    !ASN1_OCTET_STRING_set(os, ip, iplen))
			fatalx("ASN1_OCTET_STRING");
		GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
	} else {
		if (type == GEN_DNS ? !ca_dns_name_check(v, e, sizeof(e)) :
		    !email_check(v, e, sizeof(e))) {
			snprintf(err, err_len, "SAN \"%s\": %s", text, e);
			goto out;
		}
		if ((ia5 = ASN1_IA5STRING_new()) == NULL ||
		    !ASN1_STRING_set(ia5, v, -1))
			fatalx("ASN1_IA5STRING");
		GENERAL_NAME_set0_value(gn, type, ia5);
	}
	*out = gn;
	gn = NULL;
	rc = 1;
 out:
	GENERAL_NAME_free(gn);
	return rc;
}

int
ca_san_print(char *out, size_t out_len, const GENERAL_NAME *gn)
{
	const ASN1_STRING *s;
	char ip[INET6_ADDRSTRLEN];
	int n;

	switch (gn->type) {
	case GEN_DNS:
	case GEN_EMAIL:
		s = gn->type == GEN_DNS ? gn->d.dNSName : gn->d.rfc822Name;
		n = snprintf(out, out_len, "%s:%.*s", gn->type == GEN_DNS ?
		    "DNS" : "email", ASN1_STRING_length(s),
		    (const char *)ASN1_STRING_get0_data(s));
		/* an embedded NUL would make the text differ from the name */
		if (memchr(ASN1_STRING_get0_data(s), '\0',
		    (size_t)ASN1_STRING_length(s)) != NULL)
			return 0;
		return n >= 0 && (size_t)n < out_len;
	case GEN_IPADD:
		s = gn->d.iPAddress;
		if ((ASN1_STRING_length(s) != 4 && ASN1_STRING_length(s) != 16) ||
		    inet_ntop(ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6,
		    ASN1_STRING_get0_data(s), ip, sizeof(ip)) == NULL)
			return 0;
		n = snprintf(out, out_len, "IP:%s", ip);
		return n >= 0 && (size_t)n < out_len;
	default:
		return 0;
	}
}

/*
 * 1 when gn equals the SAN text t (already checked): DNS names and email
 * domains ignore case (RFC 5280 section 7.2, 7.5), IP addresses compare
 * as bytes.
 */
static int
san_equal(const GENERAL_NAME *gn, const char *t)
{
	GENERAL_NAME *want = NULL;
	char e[CA_ERR_MAX], a[CA_SAN_TEXT_MAX], b[CA_SAN_TEXT_MAX];
	int eq = 0;

	if (!ca_san_parse(&want, t, e, sizeof(e)) || want->type != gn->type)
		goto out;
	if (!ca_san_print(a, sizeof(a), gn) || !ca_san_print(b, sizeof(b),
	    want))
		goto out;
	eq = strcasecmp(a, b) == 0;
 out:
	GENERAL_NAME_free(want);
	return eq;
}

int
ca_san_list_check(const char *list, char *err, size_t err_len)
{
	char buf[CA_SAN_LIST_MAX + 1], *p, *tok, *save = NULL;
	GENERAL_NAME *gn = NULL;

	if (strlen(list) > CA_SAN_LIST_MAX) {
		snprintf(err, err_len, "SAN list longer than %d characters",
		    CA_SAN_LIST_MAX);
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	for (p = buf; (tok = strtok_r(p, ",", &save)) != NULL; p = NULL) {
		if (!ca_san_parse(&gn, tok, err, err_len))
			return 0;
		GENERAL_NAME_free(gn);
		gn = NULL;
	}
	return 1;
}

int
ca_csr_san_allowed(const struct ca_csr *csr, const char *list, char *err,
    size_t err_len)
{
	STACK_OF(X509_EXTENSION) *exts;
	int rc;

	exts = ca_csr_extensions(csr);
	rc = ca_exts_san_allowed(exts, list, err, err_len);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

int
ca_exts_san_allowed(const STACK_OF(X509_EXTENSION) *exts, const char *list,
    char *err, size_t err_len)
{
	GENERAL_NAMES *in = NULL;
	const GENERAL_NAME *gn;
	char buf[CA_SAN_LIST_MAX + 1], *p, *tok, *save = NULL;
	char text[CA_SAN_TEXT_MAX];
	int i, found, rc = 0;

	if (exts == NULL ||
	    (in = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL)) ==
	    NULL) {
		rc = 1;		/* no SAN asked for */
		goto out;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(in); i++) {
		gn = sk_GENERAL_NAME_value(in, i);
		if (gn->type != GEN_DNS && gn->type != GEN_EMAIL &&
		    gn->type != GEN_IPADD)
			continue;	/* never copied (casign.c) */
		if (!ca_san_print(text, sizeof(text), gn)) {
			snprintf(err, err_len, "CSR: subjectAltName: an entry "
			    "cannot be read (RFC 5280 section 4.2.1.6)");
			goto out;
		}
		found = 0;
		snprintf(buf, sizeof(buf), "%s", list);
		save = NULL;
		for (p = buf; !found &&
		    (tok = strtok_r(p, ",", &save)) != NULL; p = NULL)
			found = san_equal(gn, tok);
		if (!found) {
			snprintf(err, err_len, "CSR: subjectAltName %s is not "
			    "among the names the account may have (%s)", text,
			    list[0] != '\0' ? list : "none");
			goto out;
		}
	}
	rc = 1;
 out:
	ERR_clear_error();
	GENERAL_NAMES_free(in);
	return rc;
}

int
ca_add_sans(X509 *x, const char *const *sans, size_t num, char *err,
    size_t err_len)
{
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gn = NULL;
	size_t i;
	int rc = 0;

	if ((gens = GENERAL_NAMES_new()) == NULL)
		fatalx("GENERAL_NAMES_new");
	for (i = 0; i < num; i++) {
		if (!ca_san_parse(&gn, sans[i], err, err_len))
			goto out;
		if (!sk_GENERAL_NAME_push(gens, gn))
			fatalx("sk_GENERAL_NAME_push");
		gn = NULL;
	}
	if (num > 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_REPLACE) != 1) {
		snprintf(err, err_len, "cannot add subjectAltName");
		ERR_clear_error();
		goto out;
	}
	rc = 1;
 out:
	GENERAL_NAMES_free(gens);
	return rc;
}
