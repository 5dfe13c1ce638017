/*
 * corral._ccount.count_newlines(buffer) -> int
 *
 * Counts b"\n" in any bytes-like object.  corral counts every line a command
 * prints, including the ones it does not keep, so this runs over every byte
 * read; bytes.count() manages about 3 GB/s on line-dense output, while this
 * loop, which compilers vectorise, keeps the count off the reader's profile.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static Py_ssize_t
count(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t total = 0;
    /* Sum in blocks small enough for an 8-bit lane per byte not to overflow,
     * which lets the inner loop vectorise. */
    while (n > 0) {
        Py_ssize_t block = n < 255 * 16 ? n : 255 * 16;
        unsigned int sum = 0;
        for (Py_ssize_t i = 0; i < block; i++)
            sum += p[i] == '\n';
        total += sum;
        p += block;
        n -= block;
    }
    return total;
}

static PyObject *
count_newlines(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0)
        return NULL;
    Py_ssize_t total;
    Py_BEGIN_ALLOW_THREADS
    total = count(view.buf, view.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(total);
}

static PyMethodDef methods[] = {
    {"count_newlines", count_newlines, METH_O, "Number of b'\\n' bytes in a buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "corral._ccount",
    .m_doc = "Fast newline counting for output capture.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__ccount(void)
{
    return PyModule_Create(&module);
}
