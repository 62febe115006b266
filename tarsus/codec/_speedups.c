/*
 * tarsus.codec._speedups: the Tars tagged binary codec in C.
 *
 * The pure-Python codec (compiler.py) is the reference: this module produces the same bytes,
 * the same values and the same accept/reject decisions, only faster. It knows nothing about
 * Field or TarsType objects; plan.py flattens those into "plan" tuples (documented there),
 * compile_struct() / compile_value() turn a plan into a StructCodec / ValueCodec object that
 * holds a C tree of the types, and the hot path walks that tree.
 *
 * Invariants worth knowing before changing anything:
 * - Decoding recurses only along the *declared* types (bounded by the schema); everything the
 *   input controls (skipping unknown fields) is iterative with an explicit stack whose every
 *   entry consumed at least one input byte, so memory stays O(input) and hostile nesting
 *   cannot overflow the C stack.
 * - Every read is bounds-checked against n before the byte is touched.
 * - Errors are DecodeError / EncodeError instances from tarsus.codec.errors, located (field,
 *   tag, offset) the way api.py locates the pure path's errors: the innermost struct field
 *   being read or written when the failure happened.
 * - User code can run in the middle of an encode or a decode (__index__, __bool__, __hash__,
 *   enum converters, default factories), so every object we keep using across such a call is
 *   held by a strong reference.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* PyMemberDef, T_OBJECT_EX, READONLY: direct __slots__ access */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Constants                                                                                   */

/* Type-node kinds (the plan format, see plan.py). */
enum {
    K_BOOL, K_BYTE, K_SHORT, K_INT, K_LONG, K_UBYTE, K_USHORT, K_UINT,
    K_FLOAT, K_DOUBLE, K_STRING, K_BYTES, K_VECTOR, K_MAP, K_ENUM, K_STRUCT, K_COUNT
};

/* Wire type codes (TarsCpp servant/tup/Tars.h: TarsHeadeChar to TarsHeadeSimpleList). */
enum {
    W_CHAR, W_SHORT, W_INT32, W_INT64, W_FLOAT, W_DOUBLE, W_STRING1, W_STRING4,
    W_MAP, W_LIST, W_STRUCT_BEGIN, W_STRUCT_END, W_ZERO, W_SIMPLE_LIST
};

#define MAX_STRING_LENGTH (100 * 1024 * 1024) /* TARS_MAX_STRING_LENGTH */

static const char *const TYPE_NAMES[16] = {
    "Char", "Short", "Int32", "Int64", "Float", "Double", "String1", "String4",
    "Map", "List", "StructBegin", "StructEnd", "ZeroTag", "SimpleList",
    "invalid type 14", "invalid type 15",
};

/* IDL names of the scalar kinds (error messages say "expected unsigned short"). */
static const char *const KIND_NAMES[K_VECTOR] = {
    "bool", "byte", "short", "int", "long", "unsigned byte", "unsigned short",
    "unsigned int", "float", "double", "string", "vector<byte>",
};

/* Value range of each integer kind (enums travel as int). */
static const long long KIND_LO[K_COUNT] = {
    [K_BYTE] = -128, [K_SHORT] = -32768, [K_INT] = INT32_MIN, [K_LONG] = INT64_MIN,
    [K_ENUM] = INT32_MIN,
};
static const long long KIND_HI[K_COUNT] = {
    [K_BYTE] = 127, [K_SHORT] = 32767, [K_INT] = INT32_MAX, [K_LONG] = INT64_MAX,
    [K_UBYTE] = 255, [K_USHORT] = 65535, [K_UINT] = 4294967295LL, [K_ENUM] = INT32_MAX,
};

/* Reader widening (docs/codec.md): the widest wire integer each kind accepts. */
static const int KIND_MAXWIRE[K_COUNT] = {
    [K_BOOL] = W_CHAR, [K_BYTE] = W_CHAR, [K_SHORT] = W_SHORT, [K_UBYTE] = W_SHORT,
    [K_INT] = W_INT32, [K_USHORT] = W_INT32, [K_ENUM] = W_INT32,
    [K_LONG] = W_INT64, [K_UINT] = W_INT64,
};

/* ------------------------------------------------------------------------------------------ */
/* Module state (single-phase init: one interpreter)                                           */

static PyObject *DecodeError;     /* tarsus.codec.errors.DecodeError */
static PyObject *EncodeError;     /* tarsus.codec.errors.EncodeError */
static PyObject *StructError;     /* struct.error */
static PyObject *LowLevel;        /* the exceptions api.py turns into codec errors */
static PyObject *S_locate, *S_reason, *S_field, *S_items, *KW_locate, *KW_field, *Zero;

/* Installed by plan.py (configure()): class -> StructCodec, and the compilers to call on a
 * miss. */
static PyObject *struct_registry;
static PyObject *struct_miss;
static PyObject *value_miss;

/* Value codecs are looked up by type descriptor, whose Python-level __hash__ is slower than
 * the whole encode; a small direct-mapped identity cache in front of plan.value_codec() avoids
 * it. Each entry holds strong references, so an id cannot be reused while cached. */
#define VCACHE_SIZE 64
static struct { PyObject *key, *codec; } vcache[VCACHE_SIZE];

/* ------------------------------------------------------------------------------------------ */
/* Compiled plans                                                                              */

typedef struct TNode {
    int kind;
    struct TNode *a;   /* VECTOR element, MAP key */
    struct TNode *b;   /* MAP value */
    PyObject *obj;     /* ENUM: converter (callable); STRUCT: the StructCodec */
    PyObject *members; /* ENUM: optional dict int -> member, used instead of calling obj */
    PyObject *name;    /* ENUM: IDL name for messages (may be NULL) */
} TNode;

typedef struct {
    int tag;
    int required;
    int factory;        /* default is a callable building a fresh value */
    PyObject *attr;     /* attribute name (interned) */
    PyObject *deflt;    /* value (or factory) when the field is absent */
    PyObject *field;    /* "Struct.attr", for error locations */
    TNode *type;
    Py_ssize_t slot;    /* offset of the __slots__ member in instances of cls, or -1 */
} FieldSpec;

typedef struct {
    PyObject_HEAD
    PyTypeObject *cls;
    PyObject *name;
    Py_ssize_t nfields;
    FieldSpec *fields;
} StructCodec;

typedef struct {
    PyObject_HEAD
    PyObject *name;     /* idl_name(t): the location of errors outside any struct */
    TNode *root;
} ValueCodec;

static PyTypeObject StructCodec_Type;
static PyTypeObject ValueCodec_Type;

static void
node_free(TNode *t)
{
    if (t == NULL)
        return;
    node_free(t->a);
    node_free(t->b);
    Py_XDECREF(t->obj);
    Py_XDECREF(t->members);
    Py_XDECREF(t->name);
    PyMem_Free(t);
}

static int
node_traverse(TNode *t, visitproc visit, void *arg)
{
    if (t == NULL)
        return 0;
    Py_VISIT(t->obj);
    Py_VISIT(t->members);
    Py_VISIT(t->name);
    if (node_traverse(t->a, visit, arg) < 0)
        return -1;
    return node_traverse(t->b, visit, arg);
}

/* The IDL name of a type ("map<string, vector<int>>"), for error messages. New reference. */
static PyObject *
node_name(const TNode *t)
{
    if (t->kind < K_VECTOR)
        return PyUnicode_FromString(KIND_NAMES[t->kind]);
    switch (t->kind) {
    case K_VECTOR: {
        PyObject *e = node_name(t->a), *r;
        if (e == NULL)
            return NULL;
        r = PyUnicode_FromFormat("vector<%U>", e);
        Py_DECREF(e);
        return r;
    }
    case K_MAP: {
        PyObject *k = node_name(t->a), *v = k ? node_name(t->b) : NULL, *r = NULL;
        if (v != NULL)
            r = PyUnicode_FromFormat("map<%U, %U>", k, v);
        Py_XDECREF(k);
        Py_XDECREF(v);
        return r;
    }
    case K_ENUM:
        if (t->name != NULL)
            return Py_NewRef(t->name);
        return PyUnicode_FromString("enum");
    default:
        return Py_NewRef(((StructCodec *)t->obj)->name);
    }
}

static PyObject *compile_struct_plan(PyObject *plan, PyObject *memo);

/* Compile a type node tuple (see plan.py). ``memo`` (dict class -> StructCodec, or NULL)
 * lets nested structs share one codec. */
static TNode *
node_compile(PyObject *spec, PyObject *memo)
{
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1) {
        PyErr_Format(PyExc_TypeError, "a type node must be a non-empty tuple, got %R", spec);
        return NULL;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(spec);
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(spec, 0));
    if (kind == -1 && PyErr_Occurred())
        return NULL;
    if (kind < 0 || kind >= K_COUNT) {
        PyErr_Format(PyExc_ValueError, "unknown type kind %ld", kind);
        return NULL;
    }
    static const Py_ssize_t min_size[K_COUNT] = {
        [K_VECTOR] = 2, [K_MAP] = 3, [K_ENUM] = 2, [K_STRUCT] = 2,
    };
    if (size < (min_size[kind] ? min_size[kind] : 1)) {
        PyErr_Format(PyExc_ValueError, "type node %R is too short", spec);
        return NULL;
    }
    TNode *t = PyMem_Calloc(1, sizeof(TNode));
    if (t == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    t->kind = (int)kind;
    switch (kind) {
    case K_VECTOR:
        if ((t->a = node_compile(PyTuple_GET_ITEM(spec, 1), memo)) == NULL)
            goto fail;
        break;
    case K_MAP:
        if ((t->a = node_compile(PyTuple_GET_ITEM(spec, 1), memo)) == NULL)
            goto fail;
        if ((t->b = node_compile(PyTuple_GET_ITEM(spec, 2), memo)) == NULL)
            goto fail;
        break;
    case K_ENUM:
        t->obj = Py_NewRef(PyTuple_GET_ITEM(spec, 1));
        if (!PyCallable_Check(t->obj)) {
            PyErr_SetString(PyExc_TypeError, "an enum converter must be callable");
            goto fail;
        }
        if (size > 2 && PyUnicode_Check(PyTuple_GET_ITEM(spec, 2)))
            t->name = Py_NewRef(PyTuple_GET_ITEM(spec, 2));
        if (size > 3 && PyDict_Check(PyTuple_GET_ITEM(spec, 3)))
            t->members = Py_NewRef(PyTuple_GET_ITEM(spec, 3));
        break;
    case K_STRUCT: {
        PyObject *sp = PyTuple_GET_ITEM(spec, 1);
        if (Py_IS_TYPE(sp, &StructCodec_Type))
            t->obj = Py_NewRef(sp);
        else if ((t->obj = compile_struct_plan(sp, memo)) == NULL)
            goto fail;
        break;
    }
    default:
        break;
    }
    return t;
fail:
    node_free(t);
    return NULL;
}

/* The offset of a writable object slot that ``attr`` names in instances of ``cls``, or -1
 * when attribute access on ``cls`` is not plain (custom __getattribute__/__setattr__, a
 * property, no __slots__...). Reading and writing that slot directly is what generic
 * attribute access would do, minus the lookup. */
static Py_ssize_t
slot_offset(PyTypeObject *cls, PyObject *attr)
{
    if (cls->tp_getattro != PyObject_GenericGetAttr
        || cls->tp_setattro != PyObject_GenericSetAttr)
        return -1;
    PyObject *d = _PyType_Lookup(cls, attr); /* borrowed */
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type))
        return -1;
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY))
        return -1;
    return m->offset;
}

static void
struct_codec_clear_fields(StructCodec *c)
{
    FieldSpec *fs = c->fields;
    Py_ssize_t n = c->nfields;
    c->fields = NULL;
    c->nfields = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(fs[i].attr);
        Py_XDECREF(fs[i].deflt);
        Py_XDECREF(fs[i].field);
        node_free(fs[i].type);
    }
    PyMem_Free(fs);
}

/* plan = (cls, name, fields); fields = ((tag, attr, type_node, required, default,
 * default_is_factory), ...) sorted by tag. */
static PyObject *
compile_struct_plan(PyObject *plan, PyObject *memo)
{
    if (!PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) < 3) {
        PyErr_Format(PyExc_TypeError, "a struct plan must be (cls, name, fields), got %R", plan);
        return NULL;
    }
    PyObject *cls = PyTuple_GET_ITEM(plan, 0);
    PyObject *name = PyTuple_GET_ITEM(plan, 1);
    PyObject *fields = PyTuple_GET_ITEM(plan, 2);
    if (!PyType_Check(cls) || !PyUnicode_Check(name) || !PyTuple_Check(fields)) {
        PyErr_SetString(PyExc_TypeError, "a struct plan must be (type, str, tuple)");
        return NULL;
    }
    if (memo != NULL) {
        PyObject *known = PyDict_GetItemWithError(memo, cls);
        if (known != NULL && Py_IS_TYPE(known, &StructCodec_Type))
            return Py_NewRef(known);
        if (PyErr_Occurred())
            return NULL;
    }
    StructCodec *c = PyObject_GC_New(StructCodec, &StructCodec_Type);
    if (c == NULL)
        return NULL;
    c->cls = (PyTypeObject *)Py_NewRef(cls);
    c->name = Py_NewRef(name);
    c->nfields = 0;
    Py_ssize_t n = PyTuple_GET_SIZE(fields);
    c->fields = PyMem_Calloc(n ? n : 1, sizeof(FieldSpec));
    if (c->fields == NULL) {
        PyObject_GC_Track(c);
        Py_DECREF(c);
        return PyErr_NoMemory();
    }
    PyObject_GC_Track(c);
    int last_tag = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = PyTuple_GET_ITEM(fields, i);
        FieldSpec *fs = &c->fields[i];
        c->nfields = i + 1; /* so that a failure below frees what was filled in */
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) < 6) {
            PyErr_Format(PyExc_TypeError, "field plan %R is not a 6-tuple", f);
            goto fail;
        }
        long tag = PyLong_AsLong(PyTuple_GET_ITEM(f, 0));
        if (tag == -1 && PyErr_Occurred())
            goto fail;
        if (tag < 0 || tag > 255 || tag <= last_tag) {
            PyErr_Format(PyExc_ValueError, "%U: field tags must be ascending in 0..255", name);
            goto fail;
        }
        last_tag = (int)tag;
        fs->tag = (int)tag;
        PyObject *attr = PyTuple_GET_ITEM(f, 1);
        if (!PyUnicode_Check(attr)) {
            PyErr_SetString(PyExc_TypeError, "a field name must be a str");
            goto fail;
        }
        Py_INCREF(attr);
        PyUnicode_InternInPlace(&attr);
        fs->attr = attr;
        fs->slot = slot_offset((PyTypeObject *)cls, attr);
        if ((fs->field = PyUnicode_FromFormat("%U.%U", name, attr)) == NULL)
            goto fail;
        if ((fs->type = node_compile(PyTuple_GET_ITEM(f, 2), memo)) == NULL)
            goto fail;
        if ((fs->required = PyObject_IsTrue(PyTuple_GET_ITEM(f, 3))) < 0)
            goto fail;
        fs->deflt = Py_NewRef(PyTuple_GET_ITEM(f, 4));
        if ((fs->factory = PyObject_IsTrue(PyTuple_GET_ITEM(f, 5))) < 0)
            goto fail;
    }
    if (memo != NULL && PyDict_SetItem(memo, cls, (PyObject *)c) < 0)
        goto fail;
    return (PyObject *)c;
fail:
    Py_DECREF(c);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Error helpers                                                                               */

/* type(x).__name__, for messages. */
static const char *
type_name(PyObject *x)
{
    const char *name = Py_TYPE(x)->tp_name, *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

static int
check_nargs(const char *fn, Py_ssize_t nargs, Py_ssize_t lo, Py_ssize_t hi)
{
    if (nargs >= lo && nargs <= hi)
        return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd to %zd arguments (%zd given)", fn, lo, hi,
                 nargs);
    return 0;
}

/* Raise DecodeError(message, offset=offset[, tag=tag]). Always returns -1. */
static int
raise_decode_obj(PyObject *msg, Py_ssize_t offset, int tag)
{
    if (msg == NULL)
        return -1;
    PyObject *kw = Py_BuildValue(tag >= 0 ? "{s:n,s:i}" : "{s:n}", "offset", offset, "tag", tag);
    PyObject *args = kw ? PyTuple_Pack(1, msg) : NULL;
    PyObject *exc = args ? PyObject_Call(DecodeError, args, kw) : NULL;
    Py_DECREF(msg);
    Py_XDECREF(kw);
    Py_XDECREF(args);
    if (exc != NULL) {
        PyErr_SetObject(DecodeError, exc);
        Py_DECREF(exc);
    }
    return -1;
}

static int
dec_fail(Py_ssize_t offset, const char *fmt, ...)
{
    char buf[256];
    va_list va;
    va_start(va, fmt);
    PyOS_vsnprintf(buf, sizeof buf, fmt, va);
    va_end(va);
    return raise_decode_obj(PyUnicode_FromString(buf), offset, -1);
}

#define TRUNCATED(offset) dec_fail((offset), "truncated: the data ends inside a value")

/* "type mismatch: expected vector<int>, found String1"; ``p`` is just after the head. */
static int
dec_mismatch(const TNode *t, int ty, Py_ssize_t p)
{
    PyObject *name = node_name(t);
    if (name == NULL)
        return -1;
    PyObject *msg = PyUnicode_FromFormat(
        "type mismatch: expected %U, found %s", name, TYPE_NAMES[ty & 15]);
    Py_DECREF(name);
    return raise_decode_obj(msg, p - 1, -1);
}

/* Raise EncodeError(message). Always returns -1. */
static int
enc_fail_obj(PyObject *msg)
{
    if (msg == NULL)
        return -1;
    PyObject *exc = PyObject_CallOneArg(EncodeError, msg);
    Py_DECREF(msg);
    if (exc != NULL) {
        PyErr_SetObject(EncodeError, exc);
        Py_DECREF(exc);
    }
    return -1;
}

/* The message api.py gives a low-level exception raised while decoding (_truncated). */
static PyObject *
decode_reason(PyObject *exc)
{
    if (PyErr_GivenExceptionMatches(exc, PyExc_IndexError)
        || PyErr_GivenExceptionMatches(exc, StructError))
        return PyUnicode_FromString("truncated: the data ends inside a value");
    return PyUnicode_FromFormat("malformed data: %S", exc);
}

/* ... and while encoding (_describe). */
static PyObject *
encode_reason(PyObject *exc)
{
    if (PyErr_GivenExceptionMatches(exc, StructError))
        return PyUnicode_FromFormat("value out of range or of the wrong type: %S", exc);
    if (PyErr_GivenExceptionMatches(exc, PyExc_AttributeError))
        return PyUnicode_FromFormat("wrong value type: %S", exc);
    return PyUnicode_FromFormat("cannot encode: %S", exc);
}

/* Take the pending exception (normalized, with its traceback), or NULL. */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *val, *tb;
    PyErr_Fetch(&type, &val, &tb);
    PyErr_NormalizeException(&type, &val, &tb);
    if (val != NULL && tb != NULL)
        PyException_SetTraceback(val, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return val;
#endif
}

/* Raise ``exc`` (a reference is stolen) as it is, traceback included. */
static void
raise_exception(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef(Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

/* Turn the pending exception into a located DecodeError, as api._locate_decode does: a
 * DecodeError gets the location it lacks, a low-level error becomes a DecodeError, anything
 * else (MemoryError, KeyboardInterrupt...) passes through unchanged. */
static void
locate_decode_error(PyObject *field, int tag, Py_ssize_t offset)
{
    PyObject *exc = take_exception(), *err;
    if (exc == NULL)
        return;
    if (PyObject_TypeCheck(exc, (PyTypeObject *)DecodeError)) {
        err = exc;
    }
    else if (PyErr_GivenExceptionMatches(exc, LowLevel)) {
        PyObject *reason = decode_reason(exc);
        Py_DECREF(exc);
        err = reason ? PyObject_CallOneArg(DecodeError, reason) : NULL;
        Py_XDECREF(reason);
        if (err == NULL)
            return; /* building the error failed: that failure is pending */
    }
    else {
        raise_exception(exc);
        return;
    }
    PyObject *args[4] = {err, field, NULL, NULL};
    args[2] = tag >= 0 ? PyLong_FromLong(tag) : Py_NewRef(Py_None);
    args[3] = args[2] ? PyLong_FromSsize_t(offset) : NULL;
    PyObject *r = args[3] ? PyObject_VectorcallMethod(S_locate, args, 1, KW_locate) : NULL;
    Py_XDECREF(args[2]);
    Py_XDECREF(args[3]);
    if (r == NULL) {
        Py_DECREF(err);
        return;
    }
    Py_DECREF(r);
    raise_exception(err);
}

/* The encode-side counterpart (api._locate_encode). ``field`` may be NULL (unknown). */
static void
locate_encode_error(PyObject *field)
{
    PyObject *exc = take_exception(), *reason;
    if (exc == NULL)
        return;
    if (PyObject_TypeCheck(exc, (PyTypeObject *)EncodeError)) {
        PyObject *known = PyObject_GetAttr(exc, S_field);
        if (known == NULL || known != Py_None || field == NULL) {
            Py_XDECREF(known);
            raise_exception(exc); /* already located, or nothing to add */
            return;
        }
        Py_DECREF(known);
        reason = PyObject_GetAttr(exc, S_reason);
    }
    else if (PyErr_GivenExceptionMatches(exc, LowLevel)) {
        reason = encode_reason(exc);
    }
    else {
        raise_exception(exc);
        return;
    }
    Py_DECREF(exc);
    if (reason == NULL)
        return;
    PyObject *args[3] = {NULL, reason, field};
    PyObject *err = PyObject_Vectorcall(EncodeError, args + 1,
                                        1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                        field ? KW_field : NULL);
    Py_DECREF(reason);
    if (err != NULL) {
        PyErr_SetObject(EncodeError, err);
        Py_DECREF(err);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Encoding                                                                                    */

#define ENC_INLINE 1024

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    PyObject *loc;              /* innermost "Struct.field" being written at the failure */
    char inline_buf[ENC_INLINE];
} Enc;

static int
enc_grow(Enc *e, Py_ssize_t extra)
{
    if (extra > PY_SSIZE_T_MAX / 2 - e->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t need = e->len + extra, cap = e->cap * 2;
    if (cap < need)
        cap = need;
    char *nb;
    if (e->buf == e->inline_buf) {
        nb = PyMem_Malloc(cap);
        if (nb != NULL)
            memcpy(nb, e->buf, e->len);
    }
    else {
        nb = PyMem_Realloc(e->buf, cap);
    }
    if (nb == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    e->buf = nb;
    e->cap = cap;
    return 0;
}

#define RESERVE(e, k) ((e)->cap - (e)->len >= (Py_ssize_t)(k) ? 0 : enc_grow((e), (k)))

static inline void
put_head(Enc *e, int type, int tag)
{
    unsigned char *b = (unsigned char *)e->buf + e->len;
    if (tag < 15) {
        b[0] = (unsigned char)((tag << 4) | type);
        e->len += 1;
    }
    else {
        b[0] = (unsigned char)(0xF0 | type);
        b[1] = (unsigned char)tag;
        e->len += 2;
    }
}

static inline void
put_be(Enc *e, uint64_t v, int size)
{
    unsigned char *b = (unsigned char *)e->buf + e->len;
    for (int i = size - 1; i >= 0; i--) {
        b[i] = (unsigned char)v;
        v >>= 8;
    }
    e->len += size;
}

/* An integer in its narrowest wire form (TarsOutputStream::write). Needs 10 bytes reserved. */
static inline void
put_int(Enc *e, int tag, long long v)
{
    if (v == 0) {
        put_head(e, W_ZERO, tag);
    }
    else if (v >= -128 && v <= 127) {
        put_head(e, W_CHAR, tag);
        put_be(e, (uint64_t)v, 1);
    }
    else if (v >= -32768 && v <= 32767) {
        put_head(e, W_SHORT, tag);
        put_be(e, (uint64_t)v, 2);
    }
    else if (v >= INT32_MIN && v <= INT32_MAX) {
        put_head(e, W_INT32, tag);
        put_be(e, (uint64_t)v, 4);
    }
    else {
        put_head(e, W_INT64, tag);
        put_be(e, (uint64_t)v, 8);
    }
}

static int
write_count(Enc *e, Py_ssize_t n)
{
    if (n > INT32_MAX)
        return enc_fail_obj(PyUnicode_FromFormat("%zd elements do not fit a Tars length", n));
    if (RESERVE(e, 10) < 0)
        return -1;
    put_int(e, 0, n);
    return 0;
}

/* The value of an integer-kind field, range-checked. Mirrors the pure path: an int (or
 * bool, IntEnum...) or anything with __index__; a non-integer that compares equal to 0
 * (0.0) is written as ZeroTag, as the pure path's ``x == 0`` test does. */
static int
get_int(PyObject *x, int kind, long long *out)
{
    long long v;
    int overflow = 0;
    if (PyLong_Check(x)) {
        v = PyLong_AsLongLongAndOverflow(x, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
    }
    else {
        int zero = PyObject_RichCompareBool(x, Zero, Py_EQ);
        if (zero < 0)
            return -1;
        if (zero) {
            *out = 0;
            return 0;
        }
        if (!PyIndex_Check(x))
            return enc_fail_obj(PyUnicode_FromFormat(
                "expected an integer, got %s %R", type_name(x), x));
        PyObject *i = PyNumber_Index(x);
        if (i == NULL)
            return -1;
        v = PyLong_AsLongLongAndOverflow(i, &overflow);
        Py_DECREF(i);
        if (v == -1 && PyErr_Occurred())
            return -1;
    }
    if (overflow || v < KIND_LO[kind] || v > KIND_HI[kind])
        return enc_fail_obj(PyUnicode_FromFormat(
            "%S is out of range %lld..%lld", x, KIND_LO[kind], KIND_HI[kind]));
    *out = v;
    return 0;
}

static int enc_fields(Enc *e, StructCodec *c, PyObject *o);

static int
enc_string(Enc *e, int tag, PyObject *x)
{
    const char *data;
    Py_ssize_t len;
    PyObject *tmp = NULL;
    /* Exactly str, as the pure path (``x.__class__ is str``); a str subclass is rejected. */
    if (PyUnicode_CheckExact(x)) {
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(x) < 0)
            return -1;
#endif
        if (PyUnicode_IS_ASCII(x)) {
            data = (const char *)PyUnicode_DATA(x);
            len = PyUnicode_GET_LENGTH(x);
        }
        else {
            if ((tmp = PyUnicode_AsEncodedString(x, "utf-8", "surrogateescape")) == NULL)
                return -1;
            data = PyBytes_AS_STRING(tmp);
            len = PyBytes_GET_SIZE(tmp);
        }
    }
    else if (PyBytes_Check(x)) {
        data = PyBytes_AS_STRING(x);
        len = PyBytes_GET_SIZE(x);
    }
    else if (PyByteArray_Check(x)) {
        data = PyByteArray_AS_STRING(x);
        len = PyByteArray_GET_SIZE(x);
    }
    else if (PyMemoryView_Check(x)) {
        if ((tmp = PyBytes_FromObject(x)) == NULL)
            return -1;
        data = PyBytes_AS_STRING(tmp);
        len = PyBytes_GET_SIZE(tmp);
    }
    else {
        return enc_fail_obj(PyUnicode_FromFormat(
            "expected str or bytes for a string, got %s", type_name(x)));
    }
    int rc = -1;
    if (len > MAX_STRING_LENGTH) {
        enc_fail_obj(PyUnicode_FromFormat("string of %zd bytes exceeds 100 MiB", len));
        goto done;
    }
    if (RESERVE(e, 6 + len) < 0)
        goto done;
    if (len < 256) {
        put_head(e, W_STRING1, tag);
        put_be(e, (uint64_t)len, 1);
    }
    else {
        put_head(e, W_STRING4, tag);
        put_be(e, (uint64_t)len, 4);
    }
    memcpy(e->buf + e->len, data, len);
    e->len += len;
    rc = 0;
done:
    Py_XDECREF(tmp);
    return rc;
}

/* vector<byte>: a SimpleList of any bytes-like object. */
static int
enc_bytes(Enc *e, int tag, PyObject *x)
{
    Py_buffer view;
    const char *data;
    Py_ssize_t len;
    int have_view = 0, rc = -1;
    if (PyBytes_CheckExact(x)) {
        data = PyBytes_AS_STRING(x);
        len = PyBytes_GET_SIZE(x);
    }
    else {
        if (PyObject_GetBuffer(x, &view, PyBUF_SIMPLE) < 0)
            return -1;
        have_view = 1;
        data = view.buf;
        len = view.len;
    }
    if (len > INT32_MAX) {
        enc_fail_obj(PyUnicode_FromFormat("%zd bytes do not fit a Tars length", len));
        goto done;
    }
    if (RESERVE(e, 13 + len) < 0)
        goto done;
    put_head(e, W_SIMPLE_LIST, tag);
    e->buf[e->len++] = 0;
    put_int(e, 0, len);
    memcpy(e->buf + e->len, data, len);
    e->len += len;
    rc = 0;
done:
    if (have_view)
        PyBuffer_Release(&view);
    return rc;
}

static int enc_value(Enc *e, const TNode *t, int tag, PyObject *x);

/* Encode one element while holding a reference to it: encoding can run user code that
 * drops the container's own reference. */
static inline int
enc_held(Enc *e, const TNode *t, int tag, PyObject *x)
{
    Py_INCREF(x);
    int rc = enc_value(e, t, tag, x);
    Py_DECREF(x);
    return rc;
}

static int
changed_size(const char *what)
{
    PyErr_Format(PyExc_RuntimeError, "%s changed size during encoding", what);
    return -1;
}

static int
enc_vector(Enc *e, const TNode *t, int tag, PyObject *x)
{
    if (RESERVE(e, 2) < 0)
        return -1;
    put_head(e, W_LIST, tag);
    if (PyList_CheckExact(x) || PyTuple_CheckExact(x)) {
        int is_list = PyList_CheckExact(x);
        Py_ssize_t n = Py_SIZE(x);
        if (write_count(e, n) < 0)
            return -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (Py_SIZE(x) != n)
                return changed_size("vector");
            PyObject *item = is_list ? PyList_GET_ITEM(x, i) : PyTuple_GET_ITEM(x, i);
            if (enc_held(e, t->a, 0, item) < 0)
                return -1;
        }
        return Py_SIZE(x) == n ? 0 : changed_size("vector");
    }
    /* Any other sized iterable, as the pure path's len() + for loop. */
    Py_ssize_t n = PyObject_Size(x);
    if (n < 0 || write_count(e, n) < 0)
        return -1;
    PyObject *it = PyObject_GetIter(x), *item;
    if (it == NULL)
        return -1;
    Py_ssize_t count = 0;
    while ((item = PyIter_Next(it)) != NULL) {
        int rc = ++count > n ? changed_size("vector") : enc_value(e, t->a, 0, item);
        Py_DECREF(item);
        if (rc < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return -1;
    return count == n ? 0 : changed_size("vector");
}

static int
enc_pair(Enc *e, const TNode *t, PyObject *k, PyObject *v)
{
    if (enc_held(e, t->a, 0, k) < 0)
        return -1;
    return enc_held(e, t->b, 1, v);
}

static int
enc_map(Enc *e, const TNode *t, int tag, PyObject *x)
{
    if (RESERVE(e, 2) < 0)
        return -1;
    put_head(e, W_MAP, tag);
    if (PyDict_CheckExact(x)) {
        Py_ssize_t n = PyDict_GET_SIZE(x), pos = 0, count = 0;
        PyObject *k, *v;
        if (write_count(e, n) < 0)
            return -1;
        while (PyDict_Next(x, &pos, &k, &v)) {
            /* A pair costs a strong reference each: user code (keys' __index__...) may
             * mutate the dict while we encode. */
            Py_INCREF(k);
            Py_INCREF(v);
            int rc = ++count > n ? -2 : enc_pair(e, t, k, v);
            Py_DECREF(k);
            Py_DECREF(v);
            if (rc == -1)
                return -1;
            if (rc == -2 || PyDict_GET_SIZE(x) != n)
                break;
        }
        if (count != n || PyDict_GET_SIZE(x) != n) {
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            return -1;
        }
        return 0;
    }
    /* Any other mapping: len() and .items(), as the pure path. */
    Py_ssize_t n = PyObject_Size(x);
    if (n < 0 || write_count(e, n) < 0)
        return -1;
    PyObject *items = PyObject_CallMethodNoArgs(x, S_items);
    PyObject *it = items ? PyObject_GetIter(items) : NULL, *item;
    Py_XDECREF(items);
    if (it == NULL)
        return -1;
    Py_ssize_t count = 0;
    while ((item = PyIter_Next(it)) != NULL) {
        PyObject *pair = PySequence_Fast(item, "cannot unpack a map item");
        int rc = -1;
        if (pair != NULL) {
            if (PySequence_Fast_GET_SIZE(pair) != 2)
                PyErr_Format(PyExc_ValueError, "expected a (key, value) pair, got %zd values",
                             PySequence_Fast_GET_SIZE(pair));
            else if (++count > n)
                changed_size("map");
            else
                rc = enc_pair(e, t, PySequence_Fast_GET_ITEM(pair, 0),
                              PySequence_Fast_GET_ITEM(pair, 1));
            Py_DECREF(pair);
        }
        Py_DECREF(item);
        if (rc < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return -1;
    return count == n ? 0 : changed_size("map");
}

static int
enc_value(Enc *e, const TNode *t, int tag, PyObject *x)
{
    long long v;
    switch (t->kind) {
    case K_BOOL: {
        int b = x == Py_True ? 1 : x == Py_False ? 0 : PyObject_IsTrue(x);
        if (b < 0 || RESERVE(e, 3) < 0)
            return -1;
        if (b) {
            put_head(e, W_CHAR, tag);
            e->buf[e->len++] = 1;
        }
        else {
            put_head(e, W_ZERO, tag);
        }
        return 0;
    }
    case K_BYTE: case K_SHORT: case K_INT: case K_LONG:
    case K_UBYTE: case K_USHORT: case K_UINT: case K_ENUM:
        if (get_int(x, t->kind, &v) < 0 || RESERVE(e, 10) < 0)
            return -1;
        put_int(e, tag, v);
        return 0;
    case K_FLOAT: case K_DOUBLE: {
        double d = PyFloat_CheckExact(x) ? PyFloat_AS_DOUBLE(x) : PyFloat_AsDouble(x);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return enc_fail_obj(PyUnicode_FromFormat(
                "expected a float, got %s %R", type_name(x), x));
        }
        if (RESERVE(e, 10) < 0)
            return -1;
        Py_ssize_t start = e->len;
        if (t->kind == K_FLOAT) {
            put_head(e, W_FLOAT, tag);
            if (PyFloat_Pack4(d, e->buf + e->len, 0) < 0) { /* OverflowError, as struct */
                e->len = start;
                return -1;
            }
            e->len += 4;
        }
        else {
            put_head(e, W_DOUBLE, tag);
            PyFloat_Pack8(d, e->buf + e->len, 0);
            e->len += 8;
        }
        return 0;
    }
    case K_STRING:
        return enc_string(e, tag, x);
    case K_BYTES:
        return enc_bytes(e, tag, x);
    case K_VECTOR:
        return enc_vector(e, t, tag, x);
    case K_MAP:
        return enc_map(e, t, tag, x);
    default: /* K_STRUCT */
        if (RESERVE(e, 2) < 0)
            return -1;
        put_head(e, W_STRUCT_BEGIN, tag);
        if (enc_fields(e, (StructCodec *)t->obj, x) < 0 || RESERVE(e, 1) < 0)
            return -1;
        e->buf[e->len++] = 0x0B;
        return 0;
    }
}

/* The fields of ``o`` back to back, read with the declared struct's plan (duck-typed, as the
 * pure path: any object with the attributes will do). */
static int
enc_fields(Enc *e, StructCodec *c, PyObject *o)
{
    int exact = Py_TYPE(o) == c->cls;
    for (Py_ssize_t i = 0; i < c->nfields; i++) {
        FieldSpec *f = &c->fields[i];
        PyObject *v = NULL;
        if (exact && f->slot >= 0)
            v = Py_XNewRef(*(PyObject **)((char *)o + f->slot));
        if (v == NULL) /* not a plain slot, or unset: let getattr raise the usual error */
            v = PyObject_GetAttr(o, f->attr);
        if (v == NULL || enc_value(e, f->type, f->tag, v) < 0) {
            Py_XDECREF(v);
            if (e->loc == NULL)
                e->loc = f->field;
            return -1;
        }
        Py_DECREF(v);
    }
    return 0;
}

static PyObject *
enc_finish(Enc *e, int ok)
{
    PyObject *r = ok ? PyBytes_FromStringAndSize(e->buf, e->len) : NULL;
    if (e->buf != e->inline_buf)
        PyMem_Free(e->buf);
    return r;
}

#define ENC_INIT(e) do { (e).buf = (e).inline_buf; (e).len = 0; (e).cap = ENC_INLINE; \
                         (e).loc = NULL; } while (0)

static PyObject *
struct_encode(StructCodec *c, PyObject *obj)
{
    Enc e;
    ENC_INIT(e);
    Py_INCREF(c); /* user code could drop the last reference to the codec */
    int ok = enc_fields(&e, c, obj) == 0;
    if (!ok)
        locate_encode_error(e.loc);
    Py_DECREF(c);
    return enc_finish(&e, ok);
}

static PyObject *
value_encode(ValueCodec *c, PyObject *value)
{
    Enc e;
    ENC_INIT(e);
    Py_INCREF(c);
    int ok = enc_value(&e, c->root, 0, value) == 0;
    if (!ok)
        locate_encode_error(e.loc ? e.loc : c->name);
    Py_DECREF(c);
    return enc_finish(&e, ok);
}

/* ------------------------------------------------------------------------------------------ */
/* Decoding                                                                                    */

typedef struct {
    const unsigned char *d;
    Py_ssize_t n;
    /* the innermost struct field being read when the first failure happened */
    const FieldSpec *loc;
    Py_ssize_t loc_pos;
} Dec;

static inline int
read_head(Dec *s, Py_ssize_t *pp, int *tag, int *ty)
{
    Py_ssize_t p = *pp;
    *tag = *ty = -1; /* on failure too: keeps the compiler's flow analysis happy */
    if (p >= s->n)
        return dec_fail(p, "truncated: expected a field head");
    unsigned h = s->d[p];
    if ((h >> 4) == 15) {
        if (p + 1 >= s->n)
            return dec_fail(p, "truncated: two-byte head cut short");
        *ty = h & 15;
        *tag = s->d[p + 1];
        *pp = p + 2;
    }
    else {
        *ty = h & 15;
        *tag = h >> 4;
        *pp = p + 1;
    }
    return 0;
}

static inline long long
get_be(const unsigned char *b, int size)
{
    uint64_t v = 0;
    for (int i = 0; i < size; i++)
        v = (v << 8) | b[i];
    if (size < 8 && (v >> (size * 8 - 1)))
        v |= ~(uint64_t)0 << (size * 8); /* sign-extend */
    return (long long)v;
}

/* A container element count: an integer at tag 0, 0 <= count <= bytes left (wire.read_length). */
static int
read_length(Dec *s, Py_ssize_t *pp, Py_ssize_t *count)
{
    Py_ssize_t p = *pp, q = p;
    int tag, ty;
    long long c;
    if (read_head(s, &q, &tag, &ty) < 0)
        return -1;
    if (tag != 0)
        return dec_fail(p, "expected a length at tag 0, found tag %d", tag);
    if (ty == W_ZERO) {
        *count = 0;
        *pp = q;
        return 0;
    }
    if (ty > W_INT32)
        return dec_fail(p, "a length must be an integer, found %s", TYPE_NAMES[ty]);
    int size = 1 << ty;
    if (q + size > s->n)
        return dec_fail(q, "truncated length");
    c = get_be(s->d + q, size);
    q += size;
    if (c < 0)
        return dec_fail(p, "negative size %lld", c);
    if (c > s->n - q)
        return dec_fail(p, "size %lld is larger than the %zd bytes left", c, s->n - q);
    *count = (Py_ssize_t)c;
    *pp = q;
    return 0;
}

/* Skip the payload of a value of wire type ``ty`` whose head ends at *pp (wire.skip).
 *
 * Iterative: ``stack`` holds, per open container, the number of values still owed (-1 for
 * a struct, which ends at its StructEnd). Each entry was pushed after consuming a head, so
 * the stack never has more entries than the input has bytes. */
#define SKIP_INLINE 64
static int
skip_value(Dec *s, Py_ssize_t *pp, int ty)
{
    static const int fixed[6] = {1, 2, 4, 8, 4, 8};
    Py_ssize_t small[SKIP_INLINE], *stack = small, cap = SKIP_INLINE, depth = 0;
    Py_ssize_t p = *pp, n = s->n, c;
    const unsigned char *d = s->d;
    int tag, rc = -1;
    for (;;) {
        if (ty <= W_DOUBLE) {
            p += fixed[ty];
        }
        else if (ty == W_STRING1) {
            if (p >= n) {
                dec_fail(p, "truncated string length");
                goto done;
            }
            p += 1 + d[p];
        }
        else if (ty == W_STRING4) {
            if (p + 4 > n) {
                dec_fail(p, "truncated string length");
                goto done;
            }
            p += 4 + (Py_ssize_t)(uint32_t)get_be(d + p, 4);
        }
        else if (ty == W_MAP || ty == W_LIST || ty == W_STRUCT_BEGIN) {
            if (ty == W_STRUCT_BEGIN)
                c = -1;
            else if (read_length(s, &p, &c) < 0)
                goto done;
            else if (ty == W_MAP)
                c *= 2;
            if (depth == cap) {
                Py_ssize_t *ns;
                if (stack == small) {
                    ns = PyMem_Malloc(2 * cap * sizeof(Py_ssize_t));
                    if (ns != NULL)
                        memcpy(ns, small, sizeof small);
                }
                else {
                    ns = PyMem_Realloc(stack, 2 * cap * sizeof(Py_ssize_t));
                }
                if (ns == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                stack = ns;
                cap *= 2;
            }
            stack[depth++] = c;
        }
        else if (ty == W_SIMPLE_LIST) {
            if (p >= n) {
                dec_fail(p, "truncated SimpleList");
                goto done;
            }
            if (d[p] != 0) {
                dec_fail(p, "SimpleList element head must be 0x00, found 0x%02x", d[p]);
                goto done;
            }
            p += 1;
            if (read_length(s, &p, &c) < 0)
                goto done;
            p += c;
        }
        else if (ty == W_STRUCT_END) {
            dec_fail(p - 1, "unexpected StructEnd");
            goto done;
        }
        else if (ty != W_ZERO) {
            dec_fail(p - 1, "invalid type code %d", ty);
            goto done;
        }
        if (p > n) {
            dec_fail(n, "truncated: value runs past the end of the data");
            goto done;
        }
        /* Find the next value still owed, if any. */
        for (;;) {
            if (depth == 0) {
                *pp = p;
                rc = 0;
                goto done;
            }
            Py_ssize_t top = stack[depth - 1];
            if (top == 0) {
                depth--;
                continue;
            }
            if (read_head(s, &p, &tag, &ty) < 0)
                goto done;
            if (top == -1) {
                if (ty == W_STRUCT_END) {
                    depth--;
                    continue;
                }
            }
            else {
                stack[depth - 1] = top - 1;
                if (ty == W_STRUCT_END) {
                    dec_fail(p - 1, "unexpected StructEnd inside a container");
                    goto done;
                }
            }
            break;
        }
    }
done:
    if (stack != small)
        PyMem_Free(stack);
    return rc;
}

/* Find field ``tag`` at or after *pp, skipping lower tags (wire.seek). Sets *ty to its wire
 * type and *pp past its head, or *ty = -1 and *pp on the first head not consumed (end of
 * data, StructEnd, higher tag) when the field is absent. */
static int
seek_slow(Dec *s, Py_ssize_t *pp, int tag, int *ty)
{
    Py_ssize_t p = *pp, q;
    int t, w;
    while (p < s->n) {
        q = p;
        if (read_head(s, &q, &t, &w) < 0)
            return -1;
        if (w == W_STRUCT_END || t > tag)
            break;
        if (w >= 14) {
            raise_decode_obj(PyUnicode_FromFormat("invalid type code %d", w), p, t);
            return -1;
        }
        if (t == tag) {
            *ty = w;
            *pp = q;
            return 0;
        }
        if (skip_value(s, &q, w) < 0)
            return -1;
        p = q;
    }
    *ty = -1;
    *pp = p;
    return 0;
}

/* Position on field ``tag``; the common case (it is next, one-byte head) inline.
 *
 * NOTE: this mirrors compiler._emit_seek exactly, including its quirk: for tags 1..14 a head
 * byte (tag << 4) | 0x0B is taken as field ``tag`` with wire type StructEnd (then a type
 * mismatch), where TarsCpp's skipToTag would call the field absent. Change both together. */
static inline int
seek(Dec *s, Py_ssize_t *pp, int tag, int *ty)
{
    Py_ssize_t p = *pp;
    if (tag < 15 && p < s->n) {
        unsigned h = s->d[p];
        if (tag == 0 ? (h < 16 && h != W_STRUCT_END) : (int)(h >> 4) == tag) {
            *ty = h & 15;
            *pp = p + 1;
            return 0;
        }
    }
    return seek_slow(s, pp, tag, ty);
}

/* The head of a container element, which must be at ``tag`` (0, or 1 for map values). The
 * fast path mirrors compiler._emit_elem_head. */
static inline int
element_head(Dec *s, Py_ssize_t *pp, int tag, int *ty)
{
    Py_ssize_t p = *pp;
    *ty = -1;
    if (p >= s->n)
        return TRUNCATED(p);
    unsigned h = s->d[p];
    if (tag == 0 ? (h < 16 && h != W_STRUCT_END) : (int)(h >> 4) == tag) {
        *ty = h & 15;
        *pp = p + 1;
        return 0;
    }
    int t;
    if (read_head(s, pp, &t, ty) < 0)
        return -1;
    if (*ty == W_STRUCT_END)
        return dec_fail(p, "container ended early (StructEnd where an element was due)");
    if (t != tag)
        return dec_fail(p, "container element has tag %d, expected %d", t, tag);
    return 0;
}

static PyObject *dec_value(Dec *s, const TNode *t, int ty, Py_ssize_t *pp);
static PyObject *dec_fields(Dec *s, StructCodec *c, Py_ssize_t *pp);

static PyObject *
new_string(Dec *s, Py_ssize_t p, Py_ssize_t len)
{
    return PyUnicode_DecodeUTF8((const char *)s->d + p, len, "surrogateescape");
}

/* vector<byte>: a SimpleList, or a List of Char (wire.read_bytes). */
static PyObject *
dec_bytes(Dec *s, const TNode *t, int ty, Py_ssize_t *pp)
{
    const unsigned char *d = s->d;
    Py_ssize_t p = *pp, n = s->n, c;
    if (ty == W_SIMPLE_LIST) {
        /* The pure path's inline case (a Char or Short count), with its messages. */
        if (p >= n)
            return TRUNCATED(p), NULL;
        if (d[p] == 0) {
            if (p + 1 >= n)
                return TRUNCATED(p), NULL;
            int lenty = d[p + 1];
            if (lenty == W_CHAR || lenty == W_SHORT) {
                int size = lenty == W_CHAR ? 1 : 2;
                if (p + 2 + size > n)
                    return TRUNCATED(p), NULL;
                long long m = get_be(d + p + 2, size);
                Py_ssize_t start = p + 2 + size;
                if (m < 0 || m > n - start)
                    return dec_fail(p, "bad byte count %lld", m), NULL;
                *pp = start + m;
                return PyBytes_FromStringAndSize((const char *)d + start, m);
            }
        }
        if (d[p] != 0)
            return dec_fail(p, "SimpleList element head must be 0x00, found 0x%02x", d[p]),
                   NULL;
        p += 1;
        if (read_length(s, &p, &c) < 0)
            return NULL;
        *pp = p + c;
        return PyBytes_FromStringAndSize((const char *)d + p, c);
    }
    if (ty != W_LIST)
        return dec_mismatch(t, ty, p), NULL;
    if (read_length(s, &p, &c) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, c); /* c <= bytes left */
    if (out == NULL)
        return NULL;
    char *o = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < c; i++) {
        Py_ssize_t h = p;
        int tag, ety;
        if (read_head(s, &p, &tag, &ety) < 0)
            goto fail;
        if (ety == W_STRUCT_END) {
            dec_fail(h, "container ended early (StructEnd where an element was due)");
            goto fail;
        }
        if (tag != 0) {
            dec_fail(h, "container element has tag %d, expected 0", tag);
            goto fail;
        }
        if (ety == W_ZERO) {
            o[i] = 0;
        }
        else if (ety == W_CHAR) {
            if (p >= n) {
                dec_fail(p, "truncated byte");
                goto fail;
            }
            o[i] = (char)d[p++];
        }
        else {
            dec_fail(p - 1, "vector<byte> element is %s", TYPE_NAMES[ety]);
            goto fail;
        }
    }
    *pp = p;
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* Preallocate lists only up to this many elements; beyond, grow as elements arrive, so a
 * hostile count cannot make us allocate 8 bytes per input byte before failing. */
#define LIST_PREALLOC 4096

static PyObject *
dec_vector(Dec *s, const TNode *t, int ty, Py_ssize_t *pp)
{
    Py_ssize_t c;
    if (ty != W_LIST)
        return dec_mismatch(t, ty, *pp), NULL;
    if (read_length(s, pp, &c) < 0)
        return NULL;
    int prealloc = c <= LIST_PREALLOC;
    PyObject *list = PyList_New(prealloc ? c : 0);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < c; i++) {
        int ety;
        PyObject *v;
        if (element_head(s, pp, 0, &ety) < 0 || (v = dec_value(s, t->a, ety, pp)) == NULL)
            goto fail;
        if (prealloc) {
            PyList_SET_ITEM(list, i, v);
        }
        else {
            int rc = PyList_Append(list, v);
            Py_DECREF(v);
            if (rc < 0)
                goto fail;
        }
    }
    return list;
fail:
    Py_DECREF(list); /* unfilled items are NULL, which list_dealloc skips */
    return NULL;
}

static PyObject *
dec_map(Dec *s, const TNode *t, int ty, Py_ssize_t *pp)
{
    Py_ssize_t c;
    if (ty != W_MAP)
        return dec_mismatch(t, ty, *pp), NULL;
    if (read_length(s, pp, &c) < 0)
        return NULL;
    PyObject *dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < c; i++) {
        int kty, vty, rc;
        PyObject *k, *v;
        if (element_head(s, pp, 0, &kty) < 0 || (k = dec_value(s, t->a, kty, pp)) == NULL)
            goto fail;
        if (element_head(s, pp, 1, &vty) < 0 || (v = dec_value(s, t->b, vty, pp)) == NULL) {
            Py_DECREF(k);
            goto fail;
        }
        rc = PyDict_SetItem(dict, k, v);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0)
            goto fail;
    }
    return dict;
fail:
    Py_DECREF(dict);
    return NULL;
}

/* int -> enum member through the plan's converter (unknown values stay ints). */
static PyObject *
to_enum(const TNode *t, long long v)
{
    PyObject *i = PyLong_FromLongLong(v), *r;
    if (i == NULL || t->members == NULL) {
        r = i ? PyObject_CallOneArg(t->obj, i) : NULL;
        Py_XDECREF(i);
        return r;
    }
    r = PyDict_GetItemWithError(t->members, i);
    if (r != NULL) {
        Py_DECREF(i);
        return Py_NewRef(r);
    }
    if (PyErr_Occurred()) {
        Py_DECREF(i);
        return NULL;
    }
    return i;
}

/* Read a value of type ``t`` whose head (wire type ``ty`` >= 0) ends at *pp. */
static PyObject *
dec_value(Dec *s, const TNode *t, int ty, Py_ssize_t *pp)
{
    Py_ssize_t p = *pp, n = s->n;
    const unsigned char *d = s->d;
    switch (t->kind) {
    case K_BOOL:
        if (ty == W_ZERO)
            Py_RETURN_FALSE;
        if (ty != W_CHAR)
            return dec_mismatch(t, ty, p), NULL;
        if (p >= n)
            return TRUNCATED(p), NULL;
        *pp = p + 1;
        return PyBool_FromLong(d[p] != 0);
    case K_BYTE: case K_SHORT: case K_INT: case K_LONG:
    case K_UBYTE: case K_USHORT: case K_UINT: case K_ENUM: {
        long long v = 0;
        if (ty != W_ZERO) {
            if (ty > KIND_MAXWIRE[t->kind])
                return dec_mismatch(t, ty, p), NULL;
            int size = 1 << ty;
            if (p + size > n)
                return TRUNCATED(p), NULL;
            v = get_be(d + p, size);
            *pp = p + size;
        }
        return t->kind == K_ENUM ? to_enum(t, v) : PyLong_FromLongLong(v);
    }
    case K_FLOAT: case K_DOUBLE:
        if (ty == W_ZERO)
            return PyFloat_FromDouble(0.0);
        if (ty == W_FLOAT || ty == W_DOUBLE) {
            int size = ty == W_FLOAT ? 4 : 8;
            if (p + size > n)
                return TRUNCATED(p), NULL;
            double v = size == 4 ? PyFloat_Unpack4((const char *)d + p, 0)
                                 : PyFloat_Unpack8((const char *)d + p, 0);
            if (v == -1.0 && PyErr_Occurred())
                return NULL;
            *pp = p + size;
            return PyFloat_FromDouble(v);
        }
        return dec_mismatch(t, ty, p), NULL;
    case K_STRING:
        if (ty == W_STRING1) {
            if (p >= n)
                return TRUNCATED(p), NULL;
            Py_ssize_t len = d[p];
            if (p + 1 + len > n)
                return dec_fail(p, "truncated string"), NULL;
            *pp = p + 1 + len;
            return new_string(s, p + 1, len);
        }
        if (ty == W_STRING4) {
            if (p + 4 > n)
                return dec_fail(p, "truncated string length"), NULL;
            Py_ssize_t len = (Py_ssize_t)(uint32_t)get_be(d + p, 4);
            if (len > MAX_STRING_LENGTH)
                return dec_fail(p, "string of %zd bytes exceeds the 100 MiB limit", len), NULL;
            if (len > n - p - 4)
                return dec_fail(p, "string of %zd bytes runs past the end of the data", len),
                       NULL;
            *pp = p + 4 + len;
            return new_string(s, p + 4, len);
        }
        return dec_mismatch(t, ty, p), NULL;
    case K_BYTES:
        return dec_bytes(s, t, ty, pp);
    case K_VECTOR:
        return dec_vector(s, t, ty, pp);
    case K_MAP:
        return dec_map(s, t, ty, pp);
    default: { /* K_STRUCT */
        if (ty != W_STRUCT_BEGIN)
            return dec_mismatch(t, ty, p), NULL;
        PyObject *o = dec_fields(s, (StructCodec *)t->obj, pp);
        if (o == NULL)
            return NULL;
        /* Skip the fields this struct does not know (a newer peer's), then its StructEnd. */
        p = *pp;
        if (p >= n) {
            TRUNCATED(p);
            goto fail;
        }
        if (d[p] == 0x0B) {
            *pp = p + 1;
            return o;
        }
        for (;;) {
            int tag, w;
            if (read_head(s, &p, &tag, &w) < 0)
                goto fail;
            if (w == W_STRUCT_END)
                break;
            if (skip_value(s, &p, w) < 0)
                goto fail;
        }
        *pp = p;
        return o;
    fail:
        Py_DECREF(o);
        return NULL;
    }
    }
}

static PyObject *
field_default(const FieldSpec *f)
{
    if (!f->factory)
        return Py_NewRef(f->deflt);
    if (f->deflt == (PyObject *)&PyList_Type)
        return PyList_New(0);
    if (f->deflt == (PyObject *)&PyDict_Type)
        return PyDict_New();
    return PyObject_CallNoArgs(f->deflt);
}

/* A new instance of ``c->cls`` (without calling __init__, as object.__new__) filled from the
 * fields at *pp; stops before whatever follows the last known field. */
static PyObject *
dec_fields(Dec *s, StructCodec *c, Py_ssize_t *pp)
{
    PyTypeObject *cls = c->cls;
    if (cls == NULL) /* only after the garbage collector cleared an unreachable codec */
        return PyErr_Format(PyExc_RuntimeError, "cleared codec");
    if (cls->tp_flags & Py_TPFLAGS_IS_ABSTRACT)
        return PyErr_Format(PyExc_TypeError, "cannot instantiate abstract class %s",
                            cls->tp_name);
    PyObject *o = cls->tp_alloc(cls, 0);
    if (o == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < c->nfields; i++) {
        const FieldSpec *f = &c->fields[i];
        PyObject *v;
        int ty;
        if (seek(s, pp, f->tag, &ty) < 0)
            goto fail;
        if (ty >= 0) {
            v = dec_value(s, f->type, ty, pp);
        }
        else if (f->required) {
            dec_fail(*pp, "required field is missing");
            v = NULL;
        }
        else {
            v = field_default(f);
        }
        if (v == NULL)
            goto fail;
        if (f->slot >= 0) { /* o is a fresh cls instance: the slot exists and is empty */
            PyObject **slot = (PyObject **)((char *)o + f->slot);
            PyObject *old = *slot; /* NULL, unless the plan names one slot twice */
            *slot = v;
            Py_XDECREF(old);
        }
        else {
            int rc = PyObject_SetAttr(o, f->attr, v);
            Py_DECREF(v);
            if (rc < 0)
                goto fail;
        }
        continue;
    fail:
        if (s->loc == NULL) {
            s->loc = f;
            s->loc_pos = *pp;
        }
        Py_DECREF(o);
        return NULL;
    }
    return o;
}

/* The bytes of ``data``: any bytes-like object is read in place; anything else goes through
 * bytes(), as the pure path. Fills ``view`` (release it with release_input). */
static int
get_input(PyObject *data, Py_buffer *view, PyObject **owned)
{
    *owned = NULL;
    if (PyBytes_CheckExact(data)) {
        view->obj = NULL;
        view->buf = PyBytes_AS_STRING(data);
        view->len = PyBytes_GET_SIZE(data);
        return 0;
    }
    if (PyObject_GetBuffer(data, view, PyBUF_SIMPLE) == 0)
        return 0;
    PyErr_Clear(); /* e.g. a non-contiguous memoryview: bytes() copes */
    if ((*owned = PyObject_CallOneArg((PyObject *)&PyBytes_Type, data)) == NULL)
        return -1;
    view->obj = NULL;
    view->buf = PyBytes_AS_STRING(*owned);
    view->len = PyBytes_GET_SIZE(*owned);
    return 0;
}

static void
release_input(Py_buffer *view, PyObject *owned)
{
    if (view->obj != NULL)
        PyBuffer_Release(view);
    Py_XDECREF(owned);
}

static PyObject *
struct_decode(StructCodec *c, PyObject *data)
{
    Py_buffer view;
    PyObject *owned;
    if (get_input(data, &view, &owned) < 0)
        return NULL;
    Dec s = {view.buf, view.len, NULL, 0};
    Py_ssize_t p = 0;
    Py_INCREF(c);
    PyObject *r = dec_fields(&s, c, &p);
    if (r == NULL && s.loc != NULL)
        locate_decode_error(s.loc->field, s.loc->tag, s.loc_pos);
    Py_DECREF(c);
    release_input(&view, owned);
    return r;
}

static PyObject *
value_decode(ValueCodec *c, PyObject *data)
{
    Py_buffer view;
    PyObject *owned;
    if (get_input(data, &view, &owned) < 0)
        return NULL;
    Dec s = {view.buf, view.len, NULL, 0};
    Py_ssize_t p = 0;
    int ty;
    PyObject *r = NULL;
    Py_INCREF(c);
    if (seek(&s, &p, 0, &ty) == 0) {
        if (ty < 0)
            dec_fail(p, "required field is missing");
        else
            r = dec_value(&s, c->root, ty, &p);
    }
    if (r == NULL) {
        if (s.loc != NULL)
            locate_decode_error(s.loc->field, s.loc->tag, s.loc_pos);
        else
            locate_decode_error(c->name, -1, p);
    }
    Py_DECREF(c);
    release_input(&view, owned);
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Codec objects                                                                               */

static int
StructCodec_traverse(StructCodec *c, visitproc visit, void *arg)
{
    Py_VISIT(c->cls);
    for (Py_ssize_t i = 0; i < c->nfields; i++) {
        Py_VISIT(c->fields[i].deflt);
        if (node_traverse(c->fields[i].type, visit, arg) < 0)
            return -1;
    }
    return 0;
}

static int
StructCodec_clear(StructCodec *c)
{
    struct_codec_clear_fields(c);
    Py_CLEAR(c->cls);
    return 0;
}

static void
StructCodec_dealloc(StructCodec *c)
{
    PyObject_GC_UnTrack(c);
    struct_codec_clear_fields(c);
    Py_XDECREF(c->cls);
    Py_XDECREF(c->name);
    PyObject_GC_Del(c);
}

static PyObject *
StructCodec_repr(StructCodec *c)
{
    return PyUnicode_FromFormat("<StructCodec %U>", c->name);
}

static PyObject *
StructCodec_encode(StructCodec *c, PyObject *obj)
{
    return struct_encode(c, obj);
}

static PyObject *
StructCodec_decode(StructCodec *c, PyObject *data)
{
    return struct_decode(c, data);
}

/* The fields given as a sequence of values in declared order, no instance needed (a call's
 * results: tarsus.codec.operation). A list is copied first: encoding can run user code. */
static PyObject *
StructCodec_encode_values(StructCodec *c, PyObject *values)
{
    PyObject *t = PyTuple_CheckExact(values) ? Py_NewRef(values) : PySequence_Tuple(values);
    if (t == NULL)
        return NULL;
    if (PyTuple_GET_SIZE(t) != c->nfields) {
        PyErr_Format(PyExc_TypeError, "%U takes %zd values, got %zd", c->name, c->nfields,
                     PyTuple_GET_SIZE(t));
        Py_DECREF(t);
        return NULL;
    }
    Enc e;
    ENC_INIT(e);
    Py_INCREF(c);
    int ok = 1;
    for (Py_ssize_t i = 0; i < c->nfields; i++) {
        FieldSpec *f = &c->fields[i];
        if (enc_value(&e, f->type, f->tag, PyTuple_GET_ITEM(t, i)) < 0) {
            if (e.loc == NULL)
                e.loc = f->field;
            ok = 0;
            break;
        }
    }
    if (!ok)
        locate_encode_error(e.loc);
    Py_DECREF(c);
    Py_DECREF(t);
    return enc_finish(&e, ok);
}

static PyMethodDef StructCodec_methods[] = {
    {"encode", (PyCFunction)StructCodec_encode, METH_O,
     "encode(obj) -> bytes: the fields of obj back to back."},
    {"decode", (PyCFunction)StructCodec_decode, METH_O,
     "decode(data) -> struct: an instance of the struct class read from data."},
    {"encode_values", (PyCFunction)StructCodec_encode_values, METH_O,
     "encode_values(values) -> bytes: the fields, given in declared order, back to back."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject StructCodec_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tarsus.codec._speedups.StructCodec",
    .tp_doc = "The compiled codec of one struct class (build it with compile_struct).",
    .tp_basicsize = sizeof(StructCodec),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)StructCodec_dealloc,
    .tp_traverse = (traverseproc)StructCodec_traverse,
    .tp_clear = (inquiry)StructCodec_clear,
    .tp_repr = (reprfunc)StructCodec_repr,
    .tp_methods = StructCodec_methods,
};

static int
ValueCodec_traverse(ValueCodec *c, visitproc visit, void *arg)
{
    return node_traverse(c->root, visit, arg);
}

static int
ValueCodec_clear(ValueCodec *c)
{
    TNode *root = c->root;
    c->root = NULL;
    node_free(root);
    return 0;
}

static void
ValueCodec_dealloc(ValueCodec *c)
{
    PyObject_GC_UnTrack(c);
    node_free(c->root);
    Py_XDECREF(c->name);
    PyObject_GC_Del(c);
}

static PyObject *
ValueCodec_repr(ValueCodec *c)
{
    return PyUnicode_FromFormat("<ValueCodec %U>", c->name);
}

static PyObject *
ValueCodec_encode(ValueCodec *c, PyObject *value)
{
    if (c->root == NULL)
        return PyErr_Format(PyExc_RuntimeError, "cleared codec");
    return value_encode(c, value);
}

static PyObject *
ValueCodec_decode(ValueCodec *c, PyObject *data)
{
    if (c->root == NULL)
        return PyErr_Format(PyExc_RuntimeError, "cleared codec");
    return value_decode(c, data);
}

static PyMethodDef ValueCodec_methods[] = {
    {"encode", (PyCFunction)ValueCodec_encode, METH_O,
     "encode(value) -> bytes: the value at tag 0."},
    {"decode", (PyCFunction)ValueCodec_decode, METH_O,
     "decode(data) -> value: the value stored at tag 0."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ValueCodec_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tarsus.codec._speedups.ValueCodec",
    .tp_doc = "The compiled codec of one type, at tag 0 (build it with compile_value).",
    .tp_basicsize = sizeof(ValueCodec),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)ValueCodec_dealloc,
    .tp_traverse = (traverseproc)ValueCodec_traverse,
    .tp_clear = (inquiry)ValueCodec_clear,
    .tp_repr = (reprfunc)ValueCodec_repr,
    .tp_methods = ValueCodec_methods,
};

/* ------------------------------------------------------------------------------------------ */
/* Module functions                                                                            */

static PyObject *
mod_compile_struct(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("compile_struct", nargs, 1, 2))
        return NULL;
    PyObject *memo = nargs > 1 && args[1] != Py_None ? args[1] : NULL;
    if (memo != NULL && !PyDict_Check(memo))
        return PyErr_Format(PyExc_TypeError, "memo must be a dict");
    return compile_struct_plan(args[0], memo);
}

static PyObject *
mod_compile_value(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("compile_value", nargs, 2, 3))
        return NULL;
    if (!PyUnicode_Check(args[1]))
        return PyErr_Format(PyExc_TypeError, "name must be a str");
    PyObject *memo = nargs > 2 && args[2] != Py_None ? args[2] : NULL;
    if (memo != NULL && !PyDict_Check(memo))
        return PyErr_Format(PyExc_TypeError, "memo must be a dict");
    TNode *root = node_compile(args[0], memo);
    if (root == NULL)
        return NULL;
    ValueCodec *c = PyObject_GC_New(ValueCodec, &ValueCodec_Type);
    if (c == NULL) {
        node_free(root);
        return NULL;
    }
    c->root = root;
    c->name = Py_NewRef(args[1]);
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

static PyObject *
mod_configure(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("configure", nargs, 3, 3))
        return NULL;
    if (!PyDict_Check(args[0]) || !PyCallable_Check(args[1]) || !PyCallable_Check(args[2]))
        return PyErr_Format(PyExc_TypeError, "configure(dict, callable, callable)");
    Py_XSETREF(struct_registry, Py_NewRef(args[0]));
    Py_XSETREF(struct_miss, Py_NewRef(args[1]));
    Py_XSETREF(value_miss, Py_NewRef(args[2]));
    for (int i = 0; i < VCACHE_SIZE; i++) {
        Py_CLEAR(vcache[i].key);
        Py_CLEAR(vcache[i].codec);
    }
    Py_RETURN_NONE;
}

/* The StructCodec of a class: the registry, else plan.struct_codec(). New reference. */
static StructCodec *
struct_codec_for(PyObject *cls)
{
    if (struct_registry == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tarsus.codec._speedups is not configured");
        return NULL;
    }
    PyObject *c = PyDict_GetItemWithError(struct_registry, cls);
    if (c != NULL && Py_IS_TYPE(c, &StructCodec_Type))
        return (StructCodec *)Py_NewRef(c);
    if (PyErr_Occurred())
        return NULL;
    c = PyObject_CallOneArg(struct_miss, cls);
    if (c != NULL && !Py_IS_TYPE(c, &StructCodec_Type)) {
        Py_DECREF(c);
        PyErr_SetString(PyExc_TypeError, "struct_codec() did not return a StructCodec");
        return NULL;
    }
    return (StructCodec *)c;
}

/* The ValueCodec of a type descriptor: identity cache, else plan.value_codec(). New ref. */
static ValueCodec *
value_codec_for(PyObject *t)
{
    if (value_miss == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tarsus.codec._speedups is not configured");
        return NULL;
    }
    size_t i = ((uintptr_t)t >> 4) % VCACHE_SIZE;
    if (vcache[i].key == t)
        return (ValueCodec *)Py_NewRef(vcache[i].codec);
    PyObject *c = PyObject_CallOneArg(value_miss, t);
    if (c == NULL)
        return NULL;
    if (!Py_IS_TYPE(c, &ValueCodec_Type)) {
        Py_DECREF(c);
        PyErr_SetString(PyExc_TypeError, "value_codec() did not return a ValueCodec");
        return NULL;
    }
    /* Swap in before releasing the old entry: its release can run arbitrary code. */
    PyObject *old_key = vcache[i].key, *old_codec = vcache[i].codec;
    vcache[i].key = Py_NewRef(t);
    vcache[i].codec = Py_NewRef(c);
    Py_XDECREF(old_key);
    Py_XDECREF(old_codec);
    return (ValueCodec *)c;
}

static PyObject *
mod_encode(PyObject *m, PyObject *obj)
{
    StructCodec *c = struct_codec_for((PyObject *)Py_TYPE(obj));
    if (c == NULL)
        return NULL;
    PyObject *r = struct_encode(c, obj);
    Py_DECREF(c);
    return r;
}

static PyObject *
mod_decode(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("decode", nargs, 2, 2))
        return NULL;
    StructCodec *c = struct_codec_for(args[1]);
    if (c == NULL)
        return NULL;
    PyObject *r = struct_decode(c, args[0]);
    Py_DECREF(c);
    return r;
}

static PyObject *
mod_encode_value(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("encode_value", nargs, 2, 2))
        return NULL;
    ValueCodec *c = value_codec_for(args[1]);
    if (c == NULL)
        return NULL;
    PyObject *r = value_encode(c, args[0]);
    Py_DECREF(c);
    return r;
}

static PyObject *
mod_decode_value(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("decode_value", nargs, 2, 2))
        return NULL;
    ValueCodec *c = value_codec_for(args[1]);
    if (c == NULL)
        return NULL;
    PyObject *r = value_decode(c, args[0]);
    Py_DECREF(c);
    return r;
}

/* A whole reply as it goes on the wire: the 4-byte length, then a ResponsePacket
 * (RequestF.tars) with empty status and context maps. The server's hot path; the same bytes
 * as encode(ResponsePacket(...)) behind frame() (tests/codec/test_frame_response.py). */
static PyObject *
mod_frame_response(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    static const int kinds[5] = {K_SHORT, K_BYTE, K_INT, K_INT, K_INT};
    long long v[5];
    if (!check_nargs("frame_response", nargs, 7, 7))
        return NULL;
    for (int i = 0; i < 5; i++) {
        if (get_int(args[i], kinds[i], &v[i]) < 0)
            return NULL;
    }
    Enc e;
    ENC_INIT(e);
    int ok = 0;
    e.len = 4; /* the length, written last */
    if (RESERVE(&e, 60) < 0)
        goto done;
    for (int i = 0; i < 5; i++)
        put_int(&e, i + 1, v[i]);
    if (enc_bytes(&e, 6, args[5]) < 0)
        goto done;
    if (RESERVE(&e, 4) < 0)
        goto done;
    put_head(&e, W_MAP, 7); /* status: {} */
    put_head(&e, W_ZERO, 0);
    if (enc_string(&e, 8, args[6]) < 0)
        goto done;
    if (RESERVE(&e, 2) < 0)
        goto done;
    put_head(&e, W_MAP, 9); /* context: {} */
    put_head(&e, W_ZERO, 0);
    if (e.len > INT32_MAX) {
        enc_fail_obj(PyUnicode_FromFormat("a reply of %zd bytes is too long", e.len));
        goto done;
    }
    {
        Py_ssize_t len = e.len;
        e.len = 0;
        put_be(&e, (uint64_t)len, 4);
        e.len = len;
    }
    ok = 1;
done:
    return enc_finish(&e, ok);
}

static PyMethodDef module_methods[] = {
    {"compile_struct", (PyCFunction)(void (*)(void))mod_compile_struct, METH_FASTCALL,
     "compile_struct(plan, memo=None) -> StructCodec\n\n"
     "Compile a struct plan (cls, name, fields). memo (dict class -> StructCodec) shares\n"
     "nested structs' codecs and receives the new ones."},
    {"compile_value", (PyCFunction)(void (*)(void))mod_compile_value, METH_FASTCALL,
     "compile_value(type_node, name, memo=None) -> ValueCodec"},
    {"configure", (PyCFunction)(void (*)(void))mod_configure, METH_FASTCALL,
     "configure(registry, struct_codec, value_codec)\n\n"
     "Install the class -> StructCodec registry and the functions compiling a missing\n"
     "struct or value codec (plan.py does this)."},
    {"encode", (PyCFunction)mod_encode, METH_O,
     "encode(obj) -> bytes: encode a struct as its fields back to back."},
    {"decode", (PyCFunction)(void (*)(void))mod_decode, METH_FASTCALL,
     "decode(data, cls) -> cls instance: decode the fields of struct cls from data."},
    {"encode_value", (PyCFunction)(void (*)(void))mod_encode_value, METH_FASTCALL,
     "encode_value(value, t) -> bytes: encode one value of type t at tag 0."},
    {"frame_response", (PyCFunction)(void (*)(void))mod_frame_response, METH_FASTCALL,
     "frame_response(iVersion, cPacketType, iRequestId, iMessageType, iRet, sBuffer,\n"
     "               sResultDesc) -> bytes: a framed ResponsePacket, empty status and context."},
    {"decode_value", (PyCFunction)(void (*)(void))mod_decode_value, METH_FASTCALL,
     "decode_value(data, t) -> value: decode one value of type t stored at tag 0."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tarsus.codec._speedups",
    .m_doc = "The Tars binary codec in C (see tarsus/codec/plan.py for the plan format).",
    .m_size = -1,
    .m_methods = module_methods,
};

static PyObject *
import_attr(const char *module, const char *name)
{
    PyObject *mod = PyImport_ImportModule(module);
    if (mod == NULL)
        return NULL;
    PyObject *r = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return r;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&StructCodec_Type) < 0 || PyType_Ready(&ValueCodec_Type) < 0)
        return NULL;
    if ((DecodeError = import_attr("tarsus.codec.errors", "DecodeError")) == NULL
        || (EncodeError = import_attr("tarsus.codec.errors", "EncodeError")) == NULL
        || (StructError = import_attr("struct", "error")) == NULL)
        return NULL;
    /* api._LOW_LEVEL */
    LowLevel = PyTuple_Pack(6, PyExc_IndexError, StructError, PyExc_TypeError,
                            PyExc_ValueError, PyExc_AttributeError, PyExc_OverflowError);
    S_locate = PyUnicode_InternFromString("locate");
    S_reason = PyUnicode_InternFromString("reason");
    S_field = PyUnicode_InternFromString("field");
    S_items = PyUnicode_InternFromString("items");
    KW_locate = Py_BuildValue("(sss)", "field", "tag", "offset");
    KW_field = Py_BuildValue("(s)", "field");
    Zero = PyLong_FromLong(0);
    if (!LowLevel || !S_locate || !S_reason || !S_field || !S_items || !KW_locate || !KW_field
        || !Zero)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "StructCodec", (PyObject *)&StructCodec_Type) < 0
        || PyModule_AddObjectRef(m, "ValueCodec", (PyObject *)&ValueCodec_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
