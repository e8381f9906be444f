/* Validate emitted C with libclang: the same front end a user's clang would run. */
#include "runtime/validate.h"

#include <clang-c/Index.h>
#include <string.h>

int validate_c(const char *c_name, const char *c_text, size_t c_len,
               const char *h_name, const char *h_text, size_t h_len, Diag *d)
{
    char cpath[512], hpath[512];
    snprintf(cpath, sizeof cpath, "/kdcc-validate/%s", c_name);
    snprintf(hpath, sizeof hpath, "/kdcc-validate/%s", h_name);
    struct CXUnsavedFile files[2] = {
        {.Filename = cpath, .Contents = c_text, .Length = (unsigned long)c_len},
        {.Filename = hpath, .Contents = h_text, .Length = (unsigned long)h_len},
    };
    const char *args[] = {"-x", "c", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-I/kdcc-validate",
                          "-fsyntax-only"};
    CXIndex idx = clang_createIndex(0, 0);
    if (!idx)
        return diag_error(d, NULL, "internal error: libclang could not start");
    CXTranslationUnit tu = NULL;
    enum CXErrorCode ec = clang_parseTranslationUnit2(idx, cpath, args, (int)(sizeof args / sizeof args[0]),
                                                      files, 2, CXTranslationUnit_None, &tu);
    int rc = 0;
    if (ec != CXError_Success || !tu) {
        rc = diag_error(d, NULL, "internal error: libclang could not parse the emitted C (error %d)", (int)ec);
    } else {
        unsigned n = clang_getNumDiagnostics(tu);
        for (unsigned i = 0; i < n && rc == 0; i++) {
            CXDiagnostic dg = clang_getDiagnostic(tu, i);
            if (clang_getDiagnosticSeverity(dg) >= CXDiagnostic_Warning) {
                CXString s = clang_formatDiagnostic(dg, CXDiagnostic_DisplaySourceLocation | CXDiagnostic_DisplayColumn |
                                                            CXDiagnostic_DisplayOption);
                rc = diag_error(d, NULL, "internal error: the emitted C does not validate: %s (use --no-validate to write it anyway)",
                                clang_getCString(s));
                clang_disposeString(s);
            }
            clang_disposeDiagnostic(dg);
        }
        clang_disposeTranslationUnit(tu);
    }
    clang_disposeIndex(idx);
    return rc;
}
