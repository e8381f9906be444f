/* Temporary folders: $TMPDIR (else /tmp)/kdcc-WHAT-XXXXXX, made with mkdtemp and
 * removed without a shell. */
#include "compiler/ir/tmpdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tmpdir_make(char *buf, size_t n, const char *what, Diag *d)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/') /* "/tmp/" -> "/tmp", "/" -> "" */
        len--;
    buf[0] = 0;
    /* the C compiler's command lines put the paths in the folder in '' */
    if (memchr(base, '\'', len))
        return diag_error(d, NULL, "cannot make a temporary folder: TMPDIR=%s has a quote character (')", base);
    if (len + strlen(what) + sizeof "/kdcc--XXXXXX" > n)
        return diag_error(d, NULL, "cannot make a temporary folder: TMPDIR is too long (%zu characters)", len);
    int w = snprintf(buf, n, "%.*s/kdcc-%s-XXXXXX", (int)len, base, what);
    if (!mkdtemp(buf)) {
        int e = errno;
        memcpy(buf + w - 6, "XXXXXX", 6); /* the name asked for, not the last one tried */
        diag_error(d, NULL, "cannot make the temporary folder %s: %s (set TMPDIR to a writable folder)", buf, strerror(e));
        buf[0] = 0;
        return -1;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) ? -1 : 0;
}

void tmpdir_remove(const char *dir)
{
    if (!dir || !dir[0])
        return;
    /* depth first, not following symbolic links */
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "kdcc: warning: could not remove %s: %s\n", dir, strerror(errno));
}
