/* Private to the ONNX textual syntax: the token stream shared by the re2c lexer
 * (onnx_text_lexer.re) and the recursive-descent parser (onnx_text_parse.c). */
#ifndef KDCC_FRONTENDS_ONNX_TEXT_H
#define KDCC_FRONTENDS_ONNX_TEXT_H

#include <stddef.h>

typedef enum TokKind {
    TK_EOF = 0,
    TK_IDENT,        /* [A-Za-z_][A-Za-z0-9_]* (keywords, type names, inf/nan included) */
    TK_STRING,       /* "..." ; start/len cover the quotes, escapes not yet resolved */
    TK_INT,          /* -?[0-9]+ */
    TK_FLOAT,        /* -?[0-9]+ '.' [0-9]* exp? | -?[0-9]+ exp */
    TK_ARROW,        /* => */
    TK_PUNCT,        /* one of ( ) [ ] { } < > , : = . ? @ - ; the char is *start */
    TK_BAD_CHAR,     /* a byte that starts no token */
    TK_BAD_STRING,   /* a string literal without its closing quote */
} TokKind;

typedef struct Token {
    TokKind kind;
    const char *start;
    size_t len;
} Token;

typedef struct Lexer {
    const char *buf;  /* start of the text */
    const char *cur;  /* next byte to read */
    const char *lim;  /* end of the text; *lim must be a NUL sentinel */
} Lexer;

/* Read the next token, skipping white space and '#' comments. */
void onnx_lex(Lexer *lx, Token *t);

#endif
