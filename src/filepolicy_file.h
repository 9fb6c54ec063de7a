/* filepolicy_file.h -- the upload policies in force: the global one (ALLOW_TYPES, DENY_TYPES,
 * POLICY_DEPTH, BLOCK_EXTENSION_MISMATCH, POLICY_MODE) and POLICY_FILE's named ones with the users
 * each applies to, read again on SIGHUP and SIGUSR2 (a file that does not read keeps the policies
 * in force). Thread-safe. Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_FILEPOLICY_FILE_H
#define CLAMREST_FILEPOLICY_FILE_H

#include <stddef.h>

struct filepolicy_spec;
struct filepolicy_verdict;
struct scan_kinds;

/* At start: the global policy and path (NULL or "": no file); -1 with one line in err. */
int filepolicy_file_init(const struct filepolicy_spec *global, const char *path, char *err,
    size_t errlen);
/* Reads the file again; -1 with the reason in err (the policies in force stay). */
int filepolicy_file_reload(char *err, size_t errlen);
void filepolicy_file_free(void);
/* 1 when POLICY_FILE's modification time, size or inode changed since it was last read (or
 * tried); 0 without a file. */
int filepolicy_file_changed(void);
/* 1 when any policy has a rule: scans then collect their kinds of layers. */
int filepolicy_file_active(void);
/* Judges a file of user's ("": none) by the user's policy, else the global one; its name in
 * policy (policylen bytes). */
void filepolicy_file_judge(const char *user, const struct scan_kinds *k, const char *name,
    size_t namelen, struct filepolicy_verdict *v, char *policy, size_t policylen);

/* Parses a policy file's text (the format of docs/POLICY.md) into the set's form, for the unit
 * tests: the number of policies, or -1 with the line and the reason in err. */
int filepolicy_file_parse(const char *text, char *err, size_t errlen);

#endif
