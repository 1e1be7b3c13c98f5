/* The narration scanner: one chunk of narration.json (a run of whole videos, `{...}`) read in
 * one pass of C into flat columns, with no Python object per narration.
 *
 * Why it exists: at Ego4D scale (4M narrations, 690 MB) the msgspec reader
 * (engine/ego4d/columns.py) spends two thirds of its time on the Python objects it makes per
 * narration (structs, strings, their lengths, joins, frees); this makes none. It is an
 * accelerator, not a second reader: it accepts only what it reads exactly as the msgspec and
 * streaming readers do, and declines (returns None) anything else, which then goes their way.
 * It declines: any JSON it cannot validate (syntax, UTF-8, control characters, lone
 * surrogates), a field of the wrong type, a missing timestamp_sec, a key twice in one object,
 * an unknown video or pass field, NaN/Infinity, a number longer than 64 characters, a time
 * that is not finite, values nested deeper than 64. Sizes are bounded by the chunk the caller
 * gives (a few MiB); every read is checked against its end.
 *
 * scan(buffer) -> None | (video_uids, pass_1, pass_2, unknown)
 *   video_uids: list[str], in file order (duplicates kept: the caller checks them)
 *   pass_N: (having int64[], counts int64[], times float64[], text bytes, text_len int32[],
 *            uid bytes, uid_len int32[], flags uint8[], info uint8[]) as bytes, where `having`
 *            are the video numbers that have the pass (an object, not null), `counts` their
 *            narration counts, and the rest one entry per narration in file order
 *   unknown: list of (pass number, row in the pass's rows, field name) per unknown narration field
 * flags: FLAG_* bits (engine/index.py) for rows whose first byte is ASCII and not whitespace;
 * info: INFO_* bits below. Times are doubles as Python's float() of the JSON number gives them
 * (an integer literal as float(int(...)), so -0 is 0.0).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define FLAG_UNSURE 1
#define FLAG_OTHER 2
#define FLAG_CAMERA_WEARER 4

#define INFO_NO_TEXT 1    /* narration_text null or absent (kept as "") */
#define INFO_UNKNOWN 2    /* the narration has a field outside the schema */
#define INFO_CURLY 4      /* the text has a curly quote (U+2018/2019/201C/201D) */
#define INFO_SLOW_FLAGS 8 /* first byte is whitespace, a control or non-ASCII: flags_of decides */

#define MAX_DEPTH 64
#define MAX_NUMBER 64
#define MAX_CHUNK ((Py_ssize_t)1 << 30) /* lengths are int32 */

typedef struct {
    char *p;
    Py_ssize_t n, cap;
} Buf;

enum { OK = 0, DECLINE = 1, FAIL = -1 }; /* FAIL: a Python exception is set (memory) */

static int buf_grow(Buf *b, Py_ssize_t more) {
    if (b->n + more <= b->cap) return OK;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more) cap *= 2;
    char *p = PyMem_Realloc(b->p, (size_t)cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return FAIL;
    }
    b->p = p;
    b->cap = cap;
    return OK;
}

static inline int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (b->n + n > b->cap && buf_grow(b, n) != OK) return FAIL;
    memcpy(b->p + b->n, src, (size_t)n);
    b->n += n;
    return OK;
}

#define PUT(b, value, type)                                   \
    do {                                                      \
        type v_ = (value);                                    \
        if (buf_put((b), &v_, sizeof(type)) != OK) return FAIL; \
    } while (0)

typedef struct {
    Buf having, counts, times, text, text_len, uid, uid_len, flags, info;
    int64_t rows;
} Pass;

typedef struct {
    const unsigned char *s, *end;
    Pass pass[2];
    Buf scratch; /* keys and strings that are only validated */
    PyObject *uids, *unknown;
} Scan;

/* ---- bytes -------------------------------------------------------------------------------- */

static inline void ws(Scan *sc) {
    while (sc->s < sc->end && (*sc->s == ' ' || *sc->s == '\n' || *sc->s == '\r' || *sc->s == '\t')) sc->s++;
}

static inline int expect(Scan *sc, unsigned char c) {
    ws(sc);
    if (sc->s >= sc->end || *sc->s != c) return DECLINE;
    sc->s++;
    return OK;
}

/* 1: a byte that a JSON string carries as it is (printable ASCII but '"' and '\\'). */
static unsigned char PLAIN[256];

static void init_tables(void) {
    for (int c = 0; c < 256; c++) PLAIN[c] = (c >= 0x20 && c < 0x80 && c != '"' && c != '\\');
}

static int hex4(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return DECLINE;
        v = v * 16 + d;
    }
    *out = v;
    return OK;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), else 0: exactly what Python's
 * strict decoder accepts (no overlong forms, no surrogates, nothing above U+10FFFF). */
static inline int utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    Py_ssize_t left = end - p;
#define CONT(i) (left > (i) && (p[i] & 0xC0) == 0x80)
    if (c >= 0xC2 && c <= 0xDF) return CONT(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!CONT(1) || !CONT(2)) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;
        if (c == 0xED && p[1] > 0x9F) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!CONT(1) || !CONT(2) || !CONT(3)) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;
        if (c == 0xF4 && p[1] > 0x8F) return 0;
        return 4;
    }
#undef CONT
    return 0;
}

static inline int put_utf8(Buf *out, unsigned cp) {
    unsigned char u[4];
    Py_ssize_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_put(out, u, n);
}

/* The JSON string at sc->s (its opening quote) decoded into `out` as UTF-8. */
static int string(Scan *sc, Buf *out) {
    const unsigned char *s = sc->s, *end = sc->end;
    if (s >= end || *s != '"') return DECLINE;
    s++;
    for (;;) {
        const unsigned char *run = s;
        while (s < end && PLAIN[*s]) s++;
        if (s > run && buf_put(out, run, s - run) != OK) return FAIL;
        if (s >= end) return DECLINE;
        unsigned c = *s;
        if (c == '"') {
            sc->s = s + 1;
            return OK;
        }
        if (c >= 0x80) {
            int n = utf8_len(s, end);
            if (n == 0) return DECLINE;
            if (buf_put(out, s, n) != OK) return FAIL;
            s += n;
            continue;
        }
        if (c < 0x20) return DECLINE; /* a raw control character: not JSON */
        /* a backslash */
        if (end - s < 2) return DECLINE;
        unsigned e = s[1], cp;
        s += 2;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (end - s < 4 || hex4(s, &cp) != OK) return DECLINE;
            s += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return DECLINE; /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (end - s < 6 || s[0] != '\\' || s[1] != 'u' || hex4(s + 2, &lo) != OK) return DECLINE;
                if (lo < 0xDC00 || lo > 0xDFFF) return DECLINE;
                s += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            break;
        default: return DECLINE;
        }
        if (put_utf8(out, cp) != OK) return FAIL;
    }
}

/* A JSON number at sc->s, checked against the grammar; *value: as Python's float() of it. */
static int number(Scan *sc, double *value) {
    const unsigned char *s = sc->s, *end = sc->end, *start = s;
    int neg = 0, is_int = 1;
    uint64_t mant = 0;
    int digits = 0, frac_digits = 0, exact = 1;
    if (s < end && *s == '-') {
        neg = 1;
        s++;
    }
    if (s >= end) return DECLINE;
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        while (s < end && *s >= '0' && *s <= '9') {
            if (digits < 19) mant = mant * 10 + (uint64_t)(*s - '0');
            else exact = 0;
            digits++;
            s++;
        }
    } else {
        return DECLINE;
    }
    if (s < end && *s == '.') {
        is_int = 0;
        s++;
        if (s >= end || *s < '0' || *s > '9') return DECLINE;
        while (s < end && *s >= '0' && *s <= '9') {
            if (digits < 19) mant = mant * 10 + (uint64_t)(*s - '0');
            else exact = 0;
            if (mant) digits++; /* leading zeros of the fraction are not significant */
            frac_digits++;
            s++;
        }
    }
    int has_exp = 0;
    if (s < end && (*s == 'e' || *s == 'E')) {
        is_int = 0;
        has_exp = 1;
        s++;
        if (s < end && (*s == '+' || *s == '-')) s++;
        if (s >= end || *s < '0' || *s > '9') return DECLINE;
        while (s < end && *s >= '0' && *s <= '9') s++;
    }
    if (s - start > MAX_NUMBER) return DECLINE;
    sc->s = s;
    if (value == NULL) return OK;
    /* Clinger's fast path: an exact mantissa below 2^53 and a power of ten that is an exact
     * double (<= 1e22); one IEEE multiply or divide is then correctly rounded, as
     * PyOS_string_to_double (Python's float()) is. Otherwise Python's own conversion. */
    static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (!has_exp && exact && mant < ((uint64_t)1 << 53) && frac_digits <= 22) {
        double d = (double)mant;
        if (frac_digits) d /= POW10[frac_digits];
        *value = neg ? -d : d;
        if (is_int && d == 0.0) *value = 0.0; /* float(int("-0")) */
        return OK;
    }
    char tmp[MAX_NUMBER + 1];
    Py_ssize_t n = s - start;
    memcpy(tmp, start, (size_t)n);
    tmp[n] = 0;
    char *stop = NULL;
    double d = PyOS_string_to_double(tmp, &stop, NULL);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return DECLINE;
    }
    if (stop != tmp + n || !isfinite(d)) return DECLINE;
    if (is_int && d == 0.0) d = 0.0; /* float(int("-0")) */
    *value = d;
    return OK;
}

static int literal(Scan *sc, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(sc->end - sc->s) < n || memcmp(sc->s, word, n) != 0) return DECLINE;
    sc->s += n;
    return OK;
}

/* An object's or array's opening `open`; *more unless it is empty (`{}`, `[]`). */
static int open_with(Scan *sc, unsigned char open, unsigned char close, int *more) {
    int rc = expect(sc, open);
    if (rc != OK) return rc;
    ws(sc);
    *more = !(sc->s < sc->end && *sc->s == close);
    if (!*more) sc->s++;
    return OK;
}

/* After a member or an element: *more when a ',' follows, else past the closing `close`. */
static int next_item(Scan *sc, unsigned char close, int *more) {
    ws(sc);
    if (sc->s >= sc->end || (*sc->s != ',' && *sc->s != close)) return DECLINE;
    *more = *sc->s++ == ',';
    return OK;
}

/* The key at sc->s (decoded into scratch), then its ':'. */
static int key(Scan *sc) {
    ws(sc);
    sc->scratch.n = 0;
    int rc = string(sc, &sc->scratch);
    if (rc != OK) return rc;
    return expect(sc, ':');
}

/* Any JSON value, validated and skipped. */
static int skip(Scan *sc, int depth) {
    ws(sc);
    if (sc->s >= sc->end || depth > MAX_DEPTH) return DECLINE;
    int rc, more;
    switch (*sc->s) {
    case '"':
        sc->scratch.n = 0;
        return string(sc, &sc->scratch);
    case 't': return literal(sc, "true");
    case 'f': return literal(sc, "false");
    case 'n': return literal(sc, "null");
    case '[':
        if ((rc = open_with(sc, '[', ']', &more)) != OK) return rc;
        while (more) {
            if ((rc = skip(sc, depth + 1)) != OK || (rc = next_item(sc, ']', &more)) != OK) return rc;
        }
        return OK;
    case '{':
        if ((rc = open_with(sc, '{', '}', &more)) != OK) return rc;
        while (more) {
            if ((rc = key(sc)) != OK || (rc = skip(sc, depth + 1)) != OK) return rc;
            if ((rc = next_item(sc, '}', &more)) != OK) return rc;
        }
        return OK;
    default:
        if (*sc->s == '-' || (*sc->s >= '0' && *sc->s <= '9')) return number(sc, NULL);
        return DECLINE;
    }
}

/* 1 (and past its ':') when the key at sc->s is `"<name>"` written plainly, as it nearly
 * always is: the common case, without copying the key. */
static inline int plain_key(Scan *sc, const char *quoted, size_t n) {
    ws(sc);
    if ((size_t)(sc->end - sc->s) < n || memcmp(sc->s, quoted, n) != 0) return 0;
    sc->s += n;
    return expect(sc, ':') == OK;
}

static inline int key_is(Scan *sc, const char *name) {
    size_t n = strlen(name);
    return (size_t)sc->scratch.n == n && memcmp(sc->scratch.p, name, n) == 0;
}

/* FLAG_* and INFO_CURLY / INFO_SLOW_FLAGS of one decoded text: the rules of flags_of
 * (engine/index.py) and CURLY_BYTES (engine/ego4d/narration.py), on its UTF-8 bytes. */
static void text_bits(const unsigned char *t, Py_ssize_t n, unsigned char *flags, unsigned char *info) {
    unsigned char f = 0, i = 0;
    if (n > 0 && (t[0] <= 32 || t[0] >= 128)) i |= INFO_SLOW_FLAGS;
    if (n > 0 && t[0] == '#') {
        unsigned b1 = n > 1 ? t[1] : 0, b2 = n > 2 ? t[2] : 0;
        if (b1 == 'O' || (b1 == 'o' && b2 == ' ')) f |= FLAG_OTHER;
        if (b1 == 'C' || (b1 == 'c' && b2 == ' ')) f |= FLAG_CAMERA_WEARER;
    }
    /* memchr: nearly every text has one "#" (its first byte) and no curly quote */
    const unsigned char *at = t, *end = t + n;
    while ((at = memchr(at, '#', (size_t)(end - at))) != NULL) {
        if (end - at >= 7 && (at[1] | 0x20) == 'u' && (at[2] | 0x20) == 'n' && (at[3] | 0x20) == 's' &&
            (at[4] | 0x20) == 'u' && (at[5] | 0x20) == 'r' && (at[6] | 0x20) == 'e') {
            f |= FLAG_UNSURE;
            break;
        }
        at++;
    }
    at = t;
    while ((at = memchr(at, 0xE2, (size_t)(end - at))) != NULL) {
        if (end - at >= 3 && at[1] == 0x80 && (at[2] == 0x98 || at[2] == 0x99 || at[2] == 0x9C || at[2] == 0x9D)) {
            i |= INFO_CURLY;
            break;
        }
        at++;
    }
    *flags = f;
    *info |= i;
}

enum { F_TIME = 1, F_FRAME = 2, F_TEXT = 4, F_UID = 8, F_UNMAPPED = 16 };

static int narration(Scan *sc, Pass *p, int pn) {
    int more, rc, seen = 0;
    double t = 0.0;
    unsigned char info = 0, flags = 0;
    Py_ssize_t text_at = p->text.n, uid_at = p->uid.n;
    if ((rc = open_with(sc, '{', '}', &more)) != OK) return rc;
    if (!more) return DECLINE; /* no timestamp_sec */
    while (more) {
        /* Ego4D's order of fields, each tried plainly first; any other key is decoded. */
        int field = 0;
        const unsigned char *before = sc->s;
        if (!(seen & F_TIME) && plain_key(sc, "\"timestamp_sec\"", 15)) field = F_TIME;
        else if (!(seen & F_FRAME) && (sc->s = before, plain_key(sc, "\"timestamp_frame\"", 17))) field = F_FRAME;
        else if (!(seen & F_TEXT) && (sc->s = before, plain_key(sc, "\"narration_text\"", 16))) field = F_TEXT;
        else if (!(seen & F_UID) && (sc->s = before, plain_key(sc, "\"annotation_uid\"", 16))) field = F_UID;
        if (field == 0) {
            sc->s = before;
            if ((rc = key(sc)) != OK) return rc;
            field = key_is(sc, "timestamp_sec")            ? F_TIME
                    : key_is(sc, "timestamp_frame")        ? F_FRAME
                    : key_is(sc, "narration_text")         ? F_TEXT
                    : key_is(sc, "annotation_uid")         ? F_UID
                    : key_is(sc, "_unmapped_timestamp_sec") ? F_UNMAPPED
                                                           : 0;
        }
        if (field & seen) return DECLINE; /* a key twice: the other readers keep the last */
        seen |= field;
        ws(sc);
        if (sc->s >= sc->end) return DECLINE;
        switch (field) {
        case F_TIME:
            if (*sc->s != '-' && (*sc->s < '0' || *sc->s > '9')) return DECLINE;
            if ((rc = number(sc, &t)) != OK) return rc;
            break;
        case F_TEXT:
        case F_UID:
            if (*sc->s == 'n') {
                if ((rc = literal(sc, "null")) != OK) return rc;
                if (field == F_TEXT) info |= INFO_NO_TEXT;
            } else if ((rc = string(sc, field == F_TEXT ? &p->text : &p->uid)) != OK) {
                return rc;
            }
            break;
        case 0: {
            PyObject *name = PyUnicode_DecodeUTF8(sc->scratch.p, sc->scratch.n, "strict");
            if (name == NULL) return FAIL; /* validated already: only memory */
            PyObject *item = Py_BuildValue("(iLN)", pn, (long long)p->rows, name);
            if (item == NULL || PyList_Append(sc->unknown, item) != 0) {
                Py_XDECREF(item);
                return FAIL;
            }
            Py_DECREF(item);
            info |= INFO_UNKNOWN;
            if ((rc = skip(sc, 3)) != OK) return rc; /* its value, ignored */
            break;
        }
        default: /* timestamp_frame, _unmapped_timestamp_sec: any value, ignored */
            if ((rc = skip(sc, 3)) != OK) return rc;
        }
        if ((rc = next_item(sc, '}', &more)) != OK) return rc;
    }
    if (!(seen & F_TIME)) return DECLINE;
    if (!(seen & F_TEXT)) info |= INFO_NO_TEXT;
    Py_ssize_t text_n = p->text.n - text_at, uid_n = p->uid.n - uid_at;
    if (text_n > 0) text_bits((const unsigned char *)p->text.p + text_at, text_n, &flags, &info);
    PUT(&p->times, t, double);
    PUT(&p->text_len, (int32_t)text_n, int32_t);
    PUT(&p->uid_len, (int32_t)uid_n, int32_t);
    PUT(&p->flags, flags, unsigned char);
    PUT(&p->info, info, unsigned char);
    p->rows++;
    return OK;
}

static int narrations(Scan *sc, Pass *p, int pn) {
    int rc, more;
    ws(sc);
    if (sc->s < sc->end && *sc->s == 'n') return literal(sc, "null");
    if ((rc = open_with(sc, '[', ']', &more)) != OK) return rc;
    while (more) {
        if ((rc = narration(sc, p, pn)) != OK || (rc = next_item(sc, ']', &more)) != OK) return rc;
    }
    return OK;
}

static int pass_block(Scan *sc, int pn, int64_t video) {
    Pass *p = &sc->pass[pn - 1];
    int more, rc, seen = 0;
    int64_t before = p->rows;
    ws(sc);
    if (sc->s < sc->end && *sc->s == 'n') return literal(sc, "null"); /* no such pass */
    if ((rc = open_with(sc, '{', '}', &more)) != OK) return rc;
    while (more) {
        if ((rc = key(sc)) != OK) return rc;
        int field = key_is(sc, "narrations") ? 1 : key_is(sc, "summaries") ? 2 : 0;
        if (field == 0 || (field & seen)) return DECLINE; /* unknown pass field, or a key twice */
        seen |= field;
        rc = field == 1 ? narrations(sc, p, pn) : skip(sc, 2);
        if (rc != OK) return rc;
        if ((rc = next_item(sc, '}', &more)) != OK) return rc;
    }
    PUT(&p->having, video, int64_t);
    PUT(&p->counts, p->rows - before, int64_t);
    return OK;
}

static int video(Scan *sc, int64_t v) {
    int more, rc, seen = 0;
    if ((rc = open_with(sc, '{', '}', &more)) != OK) return rc;
    while (more) {
        if ((rc = key(sc)) != OK) return rc;
        int field = key_is(sc, "narration_pass_1") ? 1 : key_is(sc, "narration_pass_2") ? 2 : key_is(sc, "status") ? 4 : 0;
        if (field == 0 || (field & seen)) return DECLINE; /* unknown video field, or a key twice */
        seen |= field;
        rc = field == 4 ? skip(sc, 1) : pass_block(sc, field, v);
        if (rc != OK) return rc;
        if ((rc = next_item(sc, '}', &more)) != OK) return rc;
    }
    return OK;
}

static int chunk(Scan *sc) {
    int more, rc;
    if ((rc = open_with(sc, '{', '}', &more)) != OK) return rc;
    for (int64_t v = 0; more; v++) {
        if ((rc = key(sc)) != OK) return rc;
        PyObject *uid = PyUnicode_DecodeUTF8(sc->scratch.p, sc->scratch.n, "strict");
        if (uid == NULL) return FAIL;
        int appended = PyList_Append(sc->uids, uid);
        Py_DECREF(uid);
        if (appended != 0) return FAIL;
        if ((rc = video(sc, v)) != OK) return rc;
        if ((rc = next_item(sc, '}', &more)) != OK) return rc;
    }
    ws(sc);
    return sc->s == sc->end ? OK : DECLINE;
}

static void free_pass(Pass *p) {
    Buf *bufs[] = {&p->having, &p->counts, &p->times, &p->text, &p->text_len, &p->uid, &p->uid_len, &p->flags, &p->info};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) PyMem_Free(bufs[i]->p);
}

static PyObject *pass_tuple(Pass *p) {
    Buf *bufs[] = {&p->having, &p->counts, &p->times, &p->text, &p->text_len, &p->uid, &p->uid_len, &p->flags, &p->info};
    PyObject *out = PyTuple_New(9);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < 9; i++) {
        PyObject *b = PyBytes_FromStringAndSize(bufs[i]->p ? bufs[i]->p : "", bufs[i]->n);
        if (b == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, b);
    }
    return out;
}

static PyObject *scan(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0) return NULL;
    if (view.len > MAX_CHUNK) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    Scan sc;
    memset(&sc, 0, sizeof(sc));
    sc.s = (const unsigned char *)view.buf;
    sc.end = sc.s + view.len;
    sc.uids = PyList_New(0);
    sc.unknown = PyList_New(0);
    PyObject *result = NULL;
    int rc = FAIL;
    if (sc.uids != NULL && sc.unknown != NULL) {
        rc = chunk(&sc);
    }
    if (rc == OK) {
        PyObject *p1 = pass_tuple(&sc.pass[0]), *p2 = p1 ? pass_tuple(&sc.pass[1]) : NULL;
        if (p1 != NULL && p2 != NULL) result = Py_BuildValue("(OOOO)", sc.uids, p1, p2, sc.unknown);
        Py_XDECREF(p1);
        Py_XDECREF(p2);
    } else if (rc == DECLINE) {
        result = Py_None;
        Py_INCREF(result);
    }
    free_pass(&sc.pass[0]);
    free_pass(&sc.pass[1]);
    PyMem_Free(sc.scratch.p);
    Py_XDECREF(sc.uids);
    Py_XDECREF(sc.unknown);
    PyBuffer_Release(&view);
    return result; /* NULL: the exception that FAIL set */
}

/* gather(blob, offsets, rows) -> bytes: the strings `rows` (int64) of a column whose string i
 * is blob[offsets[i]:offsets[i + 1]] (offsets: int64, one more than the strings), in that
 * order: an unsorted pass's text put in time order without a Python object per string. */
static PyObject *gather(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer blob, offs, rows;
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*", &blob, &offs, &rows)) return NULL;
    /* Read through memcpy: any bytes-like object may be given, aligned or not. */
#define AT(view, i) (memcpy(&v_, (const char *)(view).buf + 8 * (i), 8), v_)
    int64_t v_, k, a, b;
    Py_ssize_t n_strings = offs.len / 8 - 1, n_rows = rows.len / 8, total = 0;
    int ok = offs.len % 8 == 0 && rows.len % 8 == 0 && n_strings >= 0;
    for (Py_ssize_t i = 0; ok && i < n_rows; i++) {
        k = AT(rows, i);
        ok = k >= 0 && k < n_strings && (a = AT(offs, k)) >= 0 && a <= (b = AT(offs, k + 1)) && b <= blob.len;
        if (ok) total += (Py_ssize_t)(b - a);
    }
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "gather: rows or offsets out of range");
    } else if ((out = PyBytes_FromStringAndSize(NULL, total)) != NULL) {
        char *dst = PyBytes_AS_STRING(out);
        for (Py_ssize_t i = 0; i < n_rows; i++) {
            k = AT(rows, i);
            a = AT(offs, k);
            b = AT(offs, k + 1);
            memcpy(dst, (const char *)blob.buf + a, (size_t)(b - a));
            dst += b - a;
        }
    }
#undef AT
    PyBuffer_Release(&blob);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&rows);
    return out;
}

static PyMethodDef methods[] = {
    {"gather", gather, METH_VARARGS, "gather(blob, offsets, rows) -> bytes; see engine/ego4d/_scan.c"},
    {"scan", scan, METH_O, "scan(chunk) -> None | (video_uids, pass_1, pass_2, unknown); see engine/ego4d/_scan.c"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan", "The narration scanner (C): see engine/ego4d/_scan.c.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) {
    init_tables();
    return PyModule_Create(&module);
}
