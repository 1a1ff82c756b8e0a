/*
 * replay.c - feeds files (or every file of directories) to a libFuzzer
 * target's LLVMFuzzerTestOneInput, so corpora replay under ordinary builds.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
run_file(const char *path)
{
	FILE *f;
	uint8_t *buf;
	long n;

	if ((f = fopen(path, "rb")) == NULL) {
		perror(path);
		return 0;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return 0;
	}
	if ((buf = malloc(n ? n : 1)) == NULL ||
	    fread(buf, 1, n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return 0;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 1;
}

static int
run_path(const char *path, int *count)
{
	struct stat sb;
	DIR *d;
	struct dirent *de;
	char sub[4096];
	int ok = 1;

	if (stat(path, &sb) != 0) {
		perror(path);
		return 0;
	}
	if (!S_ISDIR(sb.st_mode)) {
		if (!run_file(path))
			return 0;
		(*count)++;
		return 1;
	}
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		ok &= run_path(sub, count);
	}
	closedir(d);
	return ok;
}

int
main(int argc, char **argv)
{
	int i, ok = 1, count = 0;

	for (i = 1; i < argc; i++)
		ok &= run_path(argv[i], &count);
	printf("replayed %d inputs\n", count);
	return ok ? 0 : 1;
}
