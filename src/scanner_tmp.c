/* scanner_tmp.c -- libclamav's temporary folder: made at start, stale ones of dead processes
 * removed, remade when lost, watched for a full file system. */
#include "scanner_priv.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SCANNER_TMP_PREFIX "clamrest."	/* our folder below TMPDIR: clamrest.<pid> */

static int
scanner_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void
scanner_rmtree(const char *path)
{
	nftw(path, scanner_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Folders of earlier clamrest processes that died without cleaning up. */
static void
scanner_wipe_stale(const char *tmpdir)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	size_t plen = strlen(SCANNER_TMP_PREFIX);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		long long pid;
		char path[4096];

		if (strncmp(de->d_name, SCANNER_TMP_PREFIX, plen) != 0 ||
		    util_parse_ll(de->d_name + plen, 1, 1LL << 30, &pid) != 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name) < sizeof(path)) {
			log_info("removing stale temporary folder %s", path);
			scanner_rmtree(path);
		}
	}
	closedir(d);
}

/* The setting that chose libclamav's folder, for messages. */
const char *
scanner_tmp_setting(const struct scanner *s)
{
	return s->o.tmpdir_setting != NULL ? s->o.tmpdir_setting : "SCAN_TMPDIR";
}

int
scanner_make_tmpdir(struct scanner *s, const char *parent, char *err, size_t errlen)
{
	if ((size_t)snprintf(s->tmpdir, sizeof(s->tmpdir), "%s/%s%ld", parent, SCANNER_TMP_PREFIX,
	    (long)getpid()) >= sizeof(s->tmpdir)) {
		snprintf(err, errlen, "%s: path too long", scanner_tmp_setting(s));
		return -1;
	}
	scanner_wipe_stale(parent);
	scanner_rmtree(s->tmpdir);
	if (mkdir(s->tmpdir, 0700) != 0) {
		snprintf(err, errlen, "%s: cannot create %s: %s", scanner_tmp_setting(s), s->tmpdir,
		    strerror(errno));
		return -1;
	}
	return 0;
}


const char *
scanner_pick_tmpdir(const char *fallback, uint64_t need)
{
	struct statfs fs;

	if (statfs(SCANNER_TMPFS, &fs) != 0 || fs.f_type != TMPFS_MAGIC ||
	    access(SCANNER_TMPFS, W_OK | X_OK) != 0)
		return fallback;
	if ((uint64_t)fs.f_bavail * (uint64_t)fs.f_bsize < need)
		return fallback;
	return SCANNER_TMPFS;
}

/* 1 when the file system holding fd has less than SCANNER_TMP_LOW_WATER bytes free. */
int
scanner_fs_low(int fd)
{
	struct statfs fs;

	if (fstatfs(fd, &fs) != 0)
		return 0;
	return (uint64_t)fs.f_bavail * (uint64_t)fs.f_bsize < SCANNER_TMP_LOW_WATER;
}

int
scanner_dir_low(const char *dir)
{
	struct statfs fs;

	if (statfs(dir, &fs) != 0)
		return 1;
	return (uint64_t)fs.f_bavail * (uint64_t)fs.f_bsize < SCANNER_TMP_LOW_WATER;
}

/* After a failed scan: our temporary folder may have been removed under us (a /tmp cleaner, an
 * operator); make it again so the next scan can run. */
void
scanner_heal(struct scanner *s, const struct scan_result *r)
{
	if (r->verdict == SCAN_ERROR && mkdir(s->tmpdir, 0700) == 0)
		log_warnx("temporary folder %s was missing; made it again", s->tmpdir);
}

