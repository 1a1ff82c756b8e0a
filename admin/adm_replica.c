/*
 * adm_replica.c - mica-admin replica add NAME --out DIR: a ready standby
 * directory.  Offline (micad stopped) it opens the store itself; while
 * micad runs (the store is locked) micad records the certificates and
 * writes the store copy through the admin socket ("replica record").
 *
 * In DIR: ca.crt (and the chain), an OCSP signer certificate and key of
 * its own and a TLS server certificate and key (issued now by the CA,
 * the profiles of mica-admin init), the replication client certificate
 * CN=replica:NAME and its key, a copy of the TOTP key, a backup of the
 * store (store/data.mdb: the standby follows the journal from its
 * position), and mica.conf: the primary's, with [ca] key empty (no CA
 * key on a standby), the standby's own files, and [replica] primary set.
 * The three certificates are recorded in the store (journalled, so the
 * standby has them too) with an audit record; NAME and the replication
 * certificate's SHA-256 fingerprint are added to [replica] names_file.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "admin/admin.h"
#include "ca/ca.h"
#include "ca/cainit_local.h"
#include "ca/repl.h"
#include "ca/sign_proc.h"
#include "common/bytes.h"
#include "conf/conf.h"
#include "store/store.h"

#define REPLICA_DAYS	365

static int
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) <
	    0)
		return 0;
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
		close(fd);
		return 0;
	}
	return close(fd) == 0;
}

static int
copy_file(const char *from, const char *to, mode_t mode)
{
	FILE *f;
	struct wb b;
	char buf[4096];
	size_t n;
	int ok;

	if ((f = fopen(from, "r")) == NULL)
		return 0;
	wb_init_secret(&b);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		wb_put(&b, buf, n);
	sodium_memzero(buf, sizeof(buf));
	ok = !ferror(f) && wb_ok(&b) && write_file(to, b.data, b.len, mode);
	fclose(f);
	wb_cleanup(&b);
	return ok;
}

/* The primary's mica.conf for the standby: [ca] file keys replaced, the
 * [replica] section replaced. */
static int
write_conf(const char *from, const char *to, const char *primary,
    const char *chain)
{
	static const char *const ca_keys[] = {
		"cert", "chain", "key", "key_passphrase_file", "ocsp_cert",
		"ocsp_key", "tls_cert", "tls_key",
	};
	FILE *f;
	struct wb out;
	char line[4096], sec[64] = "";
	size_t i, n;
	int skip, ok;

	if ((f = fopen(from, "r")) == NULL)
		return 0;
	wb_init(&out);
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = line + strspn(line, " \t");

		if (*p == '[') {
			n = strcspn(p + 1, "]");
			snprintf(sec, sizeof(sec), "%.*s", (int)n, p + 1);
			if (strcmp(sec, "ca") == 0) {
				wb_str(&out, line);
				wb_str(&out, "cert = ca.crt\n");
				if (chain[0] != '\0')
					wb_str(&out, "chain = chain.pem\n");
				wb_str(&out, "# no CA key on a standby (for "
				    "mica-admin promote: the key file, or the "
				    "HSM's pkcs11: URI)\nkey =\n"
				    "ocsp_cert = ocsp.crt\n"
				    "ocsp_key = private/ocsp.key\n"
				    "tls_cert = tls.crt\n"
				    "tls_key = private/tls.key\n");
				continue;
			}
		}
		if (strcmp(sec, "replica") == 0)
			continue;
		skip = 0;
		for (i = 0; strcmp(sec, "ca") == 0 &&
		    i < sizeof(ca_keys) / sizeof(ca_keys[0]); i++) {
			n = strlen(ca_keys[i]);
			if (strncmp(p, ca_keys[i], n) == 0 &&
			    (p[n] == ' ' || p[n] == '\t' || p[n] == '='))
				skip = 1;
		}
		if (!skip)
			wb_str(&out, line);
	}
	fclose(f);
	wb_str(&out, "\n[replica]\n"
	    "# this micad is a standby of (the primary's [replica] listen)\n"
	    "primary = ");
	wb_str(&out, primary);
	wb_str(&out, "\ncert = replica.crt\nkey = private/replica.key\n"
	    "# after a promotion the old primary follows this one:\n"
	    "#listen = 0.0.0.0:7790\n"
	    "#names_file = replicas\n");
	ok = wb_ok(&out) && write_file(to, out.data, out.len, 0600);
	wb_cleanup(&out);
	return ok;
}

static int
cert_pem(const char *path, X509 *x)
{
	char err[256];

	return ca_cert_write(path, x, err, sizeof(err));
}

static void
fingerprint(char out[65], X509 *x)
{
	unsigned char md[32];
	unsigned int n = 0;

	X509_digest(x, EVP_sha256(), md, &n);
	hex_encode(out, md, 32);
	out[64] = '\0';
}

/* replica list | replica remove NAME: the names file. */
static int
names_cmd(const struct mica_conf *c, const char *name)
{
	char line[512], tmp[CONF_PATH_MAX + 8];
	FILE *f, *o = NULL;
	size_t n;
	int found = 0, ok = 1;

	if ((f = fopen(c->replica.names_file, "r")) == NULL) {
		if (errno == ENOENT && name == NULL)
			return 0;
		fprintf(stderr, "mica-admin: %s: %s\n", c->replica.names_file,
		    strerror(errno));
		return 1;
	}
	if (name != NULL) {
		snprintf(tmp, sizeof(tmp), "%s.new", c->replica.names_file);
		if ((o = fopen(tmp, "w")) == NULL) {
			fprintf(stderr, "mica-admin: %s: %s\n", tmp,
			    strerror(errno));
			fclose(f);
			return 1;
		}
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		n = strcspn(line, " \t\r\n");
		if (name == NULL) {
			if (n > 0 && line[0] != '#')
				printf("%.*s\n", (int)n, line);
			continue;
		}
		if (n == strlen(name) && strncmp(line, name, n) == 0) {
			found = 1;
			continue;
		}
		if (fputs(line, o) == EOF)
			ok = 0;
	}
	fclose(f);
	if (name == NULL)
		return 0;
	if (fflush(o) != 0 || fsync(fileno(o)) != 0)
		ok = 0;
	fclose(o);
	if (!ok || !found || rename(tmp, c->replica.names_file) != 0) {
		unlink(tmp);
		fprintf(stderr, "mica-admin: replica remove %s: %s\n", name,
		    !found ? "not registered" : strerror(errno));
		return 1;
	}
	printf("replica %s removed from %s (a connection it has now goes on "
	    "until it ends; restart micad to cut it)\n", name,
	    c->replica.names_file);
	return 0;
}

/* 1 when a micad listens on the admin socket sock. */
static int
micad_answers(const char *sock)
{
	struct sockaddr_un sun;
	int fd, ok;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sun.sun_path))
		return 0;
	memcpy(sun.sun_path, sock, strlen(sock));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return ok;
}

/*
 * micad running: "replica record NAME" over the admin socket with the
 * three certificates (DER attachments cert0..cert2) and fd, the open
 * store/data.mdb of the new directory: micad records them (journalled,
 * audited) and then writes a backup of the store into fd, a consistent
 * LMDB read snapshot taken after that commit.  1, or 0 with err.
 */
static int
record_online(const char *sock, const struct adm_replica_rec *rr, int fd,
    char *err, size_t err_len)
{
	struct adm_msg req, rep;
	static const char *const att[3] = { "cert0", "cert1", "cert2" };
	int i, ok = 0, code;

	adm_msg_init(&req);
	adm_msg_init(&rep);
	req.argv[req.argc++] = strdup("replica");
	req.argv[req.argc++] = strdup("record");
	req.argv[req.argc++] = strdup(rr->name);
	for (i = 0; i < 3; i++)
		if (!adm_msg_attach(&req, att[i], rr->rec[i].der,
		    rr->rec[i].der_len))
			goto out;
	if (req.argv[0] == NULL || req.argv[1] == NULL || req.argv[2] == NULL)
		goto out;
	code = adm_transact(sock, &req, fd, &rep);
	if (code != 0) {
		snprintf(err, err_len, "micad did not record the "
		    "certificates (exit %d)", code);
		goto done;
	}
	ok = 1;
	goto done;
 out:
	snprintf(err, err_len, "out of memory");
 done:
	adm_msg_cleanup(&req);
	adm_msg_cleanup(&rep);
	return ok;
}

int
adm_replica_cmd(int argc, char **argv, const char *cpath)
{
	static struct mica_conf conf;
	struct store_opts so;
	struct store *st = NULL;
	struct ca_signer *signer = NULL;
	struct ca_signer_paths sp;
	struct adm_replica_rec rr;
	EVP_PKEY *keys[3] = { NULL, NULL, NULL };
	X509 *certs[3] = { NULL, NULL, NULL };
	const char *name = NULL, *out = NULL, *primary = NULL;
	const char *tls_names[16];
	size_t num_names = 0;
	char err[2048], path[CONF_PATH_MAX + 64], cn[128], chk[128], fp[65];
	char *pass = NULL;
	enum store_rc rc;
	time_t now = time(NULL);
	FILE *nf;
	int i, fd = -1, ret = 1, online = 0;

	memset(&rr, 0, sizeof(rr));
	if (argc >= 2 && (strcmp(argv[1], "list") == 0 ||
	    strcmp(argv[1], "remove") == 0)) {
		if ((strcmp(argv[1], "list") == 0 && argc != 2) ||
		    (strcmp(argv[1], "remove") == 0 && argc != 3)) {
			fprintf(stderr, "usage: mica-admin replica list | "
			    "replica remove NAME\n");
			return 2;
		}
		if (cpath == NULL || *cpath == '\0' ||
		    !conf_load(&conf, cpath, err, sizeof(err))) {
			fprintf(stderr, "mica-admin: %s\n", cpath ? err :
			    "which CA? give -c CONF or set MICA_CONF");
			return 1;
		}
		return names_cmd(&conf, argc == 3 ? argv[2] : NULL);
	}
	if (argc < 2 || strcmp(argv[1], "add") != 0) {
		fprintf(stderr, "usage: mica-admin replica add NAME --out DIR "
		    "[--primary HOST:PORT] [--tls-name NAME]... | replica list "
		    "| replica remove NAME\n");
		return 2;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--primary") == 0 && i + 1 < argc)
			primary = argv[++i];
		else if (strcmp(argv[i], "--tls-name") == 0 && i + 1 < argc &&
		    num_names < 16)
			tls_names[num_names++] = argv[++i];
		else if (argv[i][0] != '-' && name == NULL)
			name = argv[i];
		else {
			fprintf(stderr, "mica-admin: replica add: unexpected "
			    "%s\n", argv[i]);
			return 2;
		}
	}
	snprintf(cn, sizeof(cn), "replica:%s", name ? name : "");
	if (name == NULL || out == NULL ||
	    !repl_cn_name(cn, chk, sizeof(chk))) {
		fprintf(stderr, "mica-admin: replica add NAME --out DIR: NAME "
		    "is 1 to %d of a-z 0-9 - _ .\n", REPL_NAME_MAX);
		return 2;
	}
	if (cpath == NULL || *cpath == '\0' ||
	    !conf_load(&conf, cpath, err, sizeof(err))) {
		fprintf(stderr, "mica-admin: %s\n", cpath ? err :
		    "which CA? give -c CONF or set MICA_CONF");
		return 1;
	}
	if (primary == NULL)
		primary = conf.replica.listen;
	if (primary[0] == '\0') {
		fprintf(stderr, "mica-admin: replica add: give --primary "
		    "HOST:PORT (or set [replica] listen)\n");
		return 1;
	}
	if (num_names == 0) {
		tls_names[0] = "localhost";
		tls_names[1] = "127.0.0.1";
		num_names = 2;
	}
	if (ca_path_exists(out)) {
		fprintf(stderr, "mica-admin: %s: exists\n", out);
		return 1;
	}
	/* the store first: micad must be stopped */
	memset(&so, 0, sizeof(so));
	so.exclusive = 1;
	so.map_size = conf.store.map_size;
	if (conf.store.journal_dir[0] != '\0') {
		so.journal_dir = conf.store.journal_dir;
		so.journal_segment_size = conf.store.journal_segment_size;
	}
	if (micad_answers(conf.admin.socket)) {
		/* micad runs: it records the certificates and writes the
		 * store copy (a read snapshot after that commit) */
		online = 1;
	} else if ((rc = store_open(&st, conf.store.path, &so)) !=
	    STORE_OK) {
		fprintf(stderr, "mica-admin: store %s: %s%s%s\n",
		    conf.store.path, store_strerror(rc), rc == STORE_LOCKED ?
		    " and micad does not answer on " : "", rc == STORE_LOCKED ?
		    conf.admin.socket : "");
		return 1;
	}
	memset(&sp, 0, sizeof(sp));
	sp.ca_cert = conf.ca.cert;
	sp.ca_key = conf.ca.key;
	ca_key_pkcs11_module(conf.ca.pkcs11_module);
	if (conf.ca.key_passphrase_file[0] != '\0' &&
	    (pass = sign_read_passphrase(conf.ca.key_passphrase_file, err,
	    sizeof(err))) == NULL)
		goto fail;
	sp.passphrase = pass;
	if (!ca_signer_load(&signer, &sp, err, sizeof(err)))
		goto fail;
	for (i = 0; i < 3; i++)
		if (!ca_keygen(&keys[i], "ec-p256")) {
			snprintf(err, sizeof(err), "cannot make a key");
			goto fail;
		}
	snprintf(path, sizeof(path), "mica OCSP %s", name);
	err[0] = '\0';
	if ((certs[0] = ca_make_sub(ca_signer_get0_cert(signer),
	    ca_signer_get0_key(signer), path, keys[0], REPLICA_DAYS, now, NULL,
	    0, rr.rec[0].serial, err, sizeof(err))) == NULL ||
	    (certs[1] = ca_make_sub(ca_signer_get0_cert(signer),
	    ca_signer_get0_key(signer), tls_names[0], keys[1], REPLICA_DAYS,
	    now, tls_names, num_names, rr.rec[1].serial, err,
	    sizeof(err))) == NULL ||
	    (certs[2] = ca_make_client(ca_signer_get0_cert(signer),
	    ca_signer_get0_key(signer), cn, keys[2], REPLICA_DAYS, now,
	    rr.rec[2].serial, err, sizeof(err))) == NULL)
		goto fail;
	for (i = 0; i < 3; i++) {
		if (!ca_cert_times(certs[i], &rr.rec[i].st.not_before,
		    &rr.rec[i].st.not_after) ||
		    !ca_cert_der(certs[i], &rr.rec[i].der, &rr.rec[i].der_len)) {
			snprintf(err, sizeof(err), "cannot encode a "
			    "certificate");
			goto fail;
		}
		rr.rec[i].st.status = CERT_GOOD;
		rr.rec[i].issued_at = now;
		snprintf(rr.rec[i].account, sizeof(rr.rec[i].account), "%s",
		    CA_OWN_ACCOUNT);
	}
	rr.name = name;
	if (st != NULL && (rc = store_write(st, adm_replica_txn, &rr)) !=
	    STORE_OK) {
		snprintf(err, sizeof(err), "recording the certificates: %s",
		    store_strerror(rc));
		goto fail;
	}
	/* the directory */
	snprintf(path, sizeof(path), "%s/private", out);
	if (!ca_init_dirs(out, path, err, sizeof(err)))
		goto fail;
	snprintf(path, sizeof(path), "%s/store", out);
	if (mkdir(path, 0700) != 0)
		goto io;
	snprintf(path, sizeof(path), "%s/store/data.mdb", out);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0)
		goto io;
	if (online) {
		if (!record_online(conf.admin.socket, &rr, fd, err,
		    sizeof(err)))
			goto fail;
	} else if (store_backup_fd(st, fd) != STORE_OK)
		goto io;
	if (fsync(fd) != 0)
		goto io;
	close(fd);
	fd = -1;
	snprintf(path, sizeof(path), "%s/ca.crt", out);
	if (!copy_file(conf.ca.cert, path, 0644))
		goto io;
	if (conf.ca.chain[0] != '\0') {
		snprintf(path, sizeof(path), "%s/chain.pem", out);
		if (!copy_file(conf.ca.chain, path, 0644))
			goto io;
	}
	snprintf(path, sizeof(path), "%s/private/totp.key", out);
	if (!copy_file(conf.store.totp_key_file, path, 0600))
		goto io;
	{
		static const char *const cfile[3] = {
			"ocsp.crt", "tls.crt", "replica.crt" };
		static const char *const kfile[3] = {
			"private/ocsp.key", "private/tls.key",
			"private/replica.key" };

		for (i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s/%s", out, kfile[i]);
			if (!ca_key_write(path, keys[i], NULL, err,
			    sizeof(err)))
				goto fail;
			snprintf(path, sizeof(path), "%s/%s", out, cfile[i]);
			if (!cert_pem(path, certs[i]))
				goto io;
		}
	}
	snprintf(path, sizeof(path), "%s/mica.conf", out);
	if (!write_conf(conf.path[0] ? conf.path : cpath, path, primary,
	    conf.ca.chain))
		goto io;
	/* registered last: the directory is complete */
	fingerprint(fp, certs[2]);
	if ((nf = fopen(conf.replica.names_file, "a")) == NULL ||
	    fprintf(nf, "%s %s\n", name, fp) < 0 || fflush(nf) != 0 ||
	    fsync(fileno(nf)) != 0) {
		if (nf != NULL)
			fclose(nf);
		snprintf(path, sizeof(path), "%s", conf.replica.names_file);
		goto io;
	}
	fclose(nf);
	printf("replica %s: %s is ready (copy it to the standby host; start "
	    "micad there with -c %s/mica.conf)\nregistered in %s\n", name,
	    out, out, conf.replica.names_file);
	if (conf.replica.listen[0] == '\0')
		printf("note: [replica] listen is not set here: set it and "
		    "restart micad so that the standby can connect\n");
	ret = 0;
	goto out;
 io:
	snprintf(err, sizeof(err), "%s: %s", path, strerror(errno));
 fail:
	fprintf(stderr, "mica-admin: replica add %s: %s\n", name, err);
 out:
	if (fd >= 0)
		close(fd);
	for (i = 0; i < 3; i++) {
		EVP_PKEY_free(keys[i]);
		X509_free(certs[i]);
		free(rr.rec[i].der);
	}
	if (pass != NULL)
		sodium_free(pass);
	ca_signer_free(signer);
	store_close(st);
	return ret;
}
