/*
 * HMAC-SHA256 (RFC 2104) over every value of an Arrow string/binary array, in one C loop.
 *
 * The hash is OpenSSL's (libcrypto's SHA-256, which uses the CPU's SHA extensions where it has them); this file
 * only holds the loop: the key's inner and outer pad states are computed once per key (the same midstate trick
 * OpenSSL's own HMAC uses), then for each value the inner state is copied, the value hashed, the outer state
 * copied and the inner digest hashed, and the MAC written as 64 lowercase hex characters. Calling OpenSSL once
 * per value from Python costs about 0.55 us a value; this loop about 0.13 us.
 *
 * The object keeps the two pad states, never the key (they are wiped when it is freed), and its repr shows
 * nothing. The GIL is released during the loop. Offsets are checked against the data buffer before any byte is
 * read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* SHA256_Init/Update/Final are deprecated in OpenSSL 3.0 but kept through 3.x; their context is a plain struct
 * that can be copied by value, which is what makes the per-value midstate copy cheap (an EVP context copy
 * allocates). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

static const char HEXDIGITS[] = "0123456789abcdef";

typedef struct {
    PyObject_HEAD
    SHA256_CTX inner;
    SHA256_CTX outer;
} HmacObject;

static int Hmac_init(HmacObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"key", NULL};
    Py_buffer key;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*", kwlist, &key)) return -1;
    unsigned char k[SHA256_CBLOCK], pad[SHA256_CBLOCK];
    memset(k, 0, sizeof k);
    if (key.len > SHA256_CBLOCK) {
        SHA256((const unsigned char *)key.buf, (size_t)key.len, k); /* RFC 2104: a long key is hashed first */
    } else if (key.len > 0) {
        memcpy(k, key.buf, (size_t)key.len);
    }
    PyBuffer_Release(&key);
    for (int j = 0; j < SHA256_CBLOCK; j++) pad[j] = k[j] ^ 0x36;
    SHA256_Init(&self->inner);
    SHA256_Update(&self->inner, pad, SHA256_CBLOCK);
    for (int j = 0; j < SHA256_CBLOCK; j++) pad[j] = k[j] ^ 0x5c;
    SHA256_Init(&self->outer);
    SHA256_Update(&self->outer, pad, SHA256_CBLOCK);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    return 0;
}

static void Hmac_dealloc(HmacObject *self) {
    OPENSSL_cleanse(&self->inner, sizeof self->inner);
    OPENSSL_cleanse(&self->outer, sizeof self->outer);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Hmac_repr(HmacObject *self) { return PyUnicode_FromString("HmacSha256(key=***)"); }

/* hex(data, offsets, start, count, wide) -> bytes of 64 * count hex characters.
 * data: the array's value buffer; offsets: its offsets buffer (int32, or int64 when wide); start: the array's
 * offset (first slot); count: its length. A NULL slot is hashed like any other (the caller masks it). */
static PyObject *Hmac_hex(HmacObject *self, PyObject *args) {
    Py_buffer data, offsets;
    Py_ssize_t start, count;
    int wide;
    if (!PyArg_ParseTuple(args, "y*y*nnp", &data, &offsets, &start, &count, &wide)) return NULL;
    PyObject *out = NULL;
    const Py_ssize_t width = wide ? 8 : 4;
    if (start < 0 || count < 0 || (count > 0 && (start + count + 1) > offsets.len / width)) {
        PyErr_SetString(PyExc_ValueError, "offsets buffer shorter than start + count + 1 entries");
        goto done;
    }
    if (count > PY_SSIZE_T_MAX / 64) {
        PyErr_SetString(PyExc_OverflowError, "too many values");
        goto done;
    }
    /* every offset checked before any value is read */
    for (Py_ssize_t i = 0; i <= count && count > 0; i++) {
        int64_t a = wide ? ((const int64_t *)offsets.buf)[start + i] : ((const int32_t *)offsets.buf)[start + i];
        int64_t prev = i == 0 ? 0 : (wide ? ((const int64_t *)offsets.buf)[start + i - 1]
                                          : ((const int32_t *)offsets.buf)[start + i - 1]);
        if (a < 0 || a > (int64_t)data.len || (i > 0 && a < prev)) {
            PyErr_SetString(PyExc_ValueError, "offsets out of range of the data buffer");
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, count * 64);
    if (out == NULL) goto done;
    char *o = PyBytes_AS_STRING(out);
    const unsigned char *base = (const unsigned char *)data.buf;
    const SHA256_CTX inner = self->inner, outer = self->outer;
    Py_BEGIN_ALLOW_THREADS
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256_CTX c;
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t a, b;
        if (wide) {
            a = ((const int64_t *)offsets.buf)[start + i];
            b = ((const int64_t *)offsets.buf)[start + i + 1];
        } else {
            a = ((const int32_t *)offsets.buf)[start + i];
            b = ((const int32_t *)offsets.buf)[start + i + 1];
        }
        c = inner;
        SHA256_Update(&c, base + a, (size_t)(b - a));
        SHA256_Final(d, &c);
        c = outer;
        SHA256_Update(&c, d, SHA256_DIGEST_LENGTH);
        SHA256_Final(d, &c);
        char *h = o + 64 * i;
        for (int j = 0; j < SHA256_DIGEST_LENGTH; j++) {
            h[2 * j] = HEXDIGITS[d[j] >> 4];
            h[2 * j + 1] = HEXDIGITS[d[j] & 15];
        }
    }
    OPENSSL_cleanse(&c, sizeof c);
    OPENSSL_cleanse(d, sizeof d);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    return out;
}

static PyMethodDef Hmac_methods[] = {
    {"hex", (PyCFunction)Hmac_hex, METH_VARARGS,
     "hex(data, offsets, start, count, wide) -> bytes: 64 lowercase hex characters per value"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HmacType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lakehouse_phi_native._hmac.HmacSha256",
    .tp_doc = "HMAC-SHA256 under one key, over the values of Arrow string/binary buffers",
    .tp_basicsize = sizeof(HmacObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Hmac_init,
    .tp_dealloc = (destructor)Hmac_dealloc,
    .tp_repr = (reprfunc)Hmac_repr,
    .tp_methods = Hmac_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hmac", "HMAC-SHA256 over Arrow buffers", -1, NULL};

PyMODINIT_FUNC PyInit__hmac(void) {
    if (PyType_Ready(&HmacType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&HmacType);
    if (PyModule_AddObject(m, "HmacSha256", (PyObject *)&HmacType) < 0) {
        Py_DECREF(&HmacType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddStringConstant(m, "OPENSSL_VERSION", OpenSSL_version(OPENSSL_VERSION)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
