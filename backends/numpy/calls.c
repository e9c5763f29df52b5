/* How generated code calls a native kernel: a Python extension with one function.
 *
 *   run(lo, hi, kernel_address, arrays) -> bool
 *
 * calls `void kernel(int64_t lo, int64_t hi, void *const *args)` (the ABI of every
 * kernel in native.py) with the data pointers of `arrays`, the GIL released, so that
 * threads can run pieces of one kernel at once. It returns False, and calls nothing,
 * when an array is not a C-contiguous, aligned ndarray in the machine's byte order:
 * the caller then copies it and calls again. ctypes can make the same call, but it
 * costs ~2 us per array to find each array's pointer; here it is a field read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#define MAX_ARRAYS 1024

typedef void (*Kernel)(int64_t lo, int64_t hi, void *const *args);

static PyObject *run(PyObject *module, PyObject *const *argv, Py_ssize_t argc) {
    if (argc != 4 || !PyTuple_Check(argv[3])) {
        PyErr_SetString(PyExc_TypeError, "run(lo, hi, kernel_address, arrays: tuple)");
        return NULL;
    }
    int64_t lo = PyLong_AsLongLong(argv[0]), hi = PyLong_AsLongLong(argv[1]);
    Kernel kernel = (Kernel)PyLong_AsVoidPtr(argv[2]);
    if (PyErr_Occurred())
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(argv[3]);
    if (n > MAX_ARRAYS) {
        PyErr_SetString(PyExc_ValueError, "a native kernel takes at most 1024 arrays");
        return NULL;
    }
    void *pointers[MAX_ARRAYS];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyTuple_GET_ITEM(argv[3], i);
        if (!PyArray_CheckExact(a))
            Py_RETURN_FALSE;
        PyArrayObject *array = (PyArrayObject *)a;
        if (!PyArray_IS_C_CONTIGUOUS(array) || !PyArray_ISALIGNED(array) ||
            PyArray_ISBYTESWAPPED(array))
            Py_RETURN_FALSE;
        pointers[i] = PyArray_DATA(array);
    }
    Py_BEGIN_ALLOW_THREADS
    kernel(lo, hi, pointers);
    Py_END_ALLOW_THREADS
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"run", (PyCFunction)(void (*)(void))run, METH_FASTCALL,
     "run(lo, hi, kernel_address, arrays): call a native kernel on the arrays' data"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "graphc_calls", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit_graphc_calls(void) {
    import_array();
    return PyModule_Create(&module_def);
}
