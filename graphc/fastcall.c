/* graphc's call fast path in C: the base type of a compiled function.
 *
 * A call whose arguments are all positional numpy arrays is looked up by each
 * array's dtype and shape in a short list of signatures already compiled; a hit
 * calls the generated function straight away and returns its single output (or the
 * result of the entry's rebuild). Anything else goes to the Python method
 * `_py_call`, which traces, compiles, checks arguments, registers new signatures
 * with `_register` and evicts old ones with `_forget`. In Python the same lookup
 * costs ~0.5 us, as much as the numpy call it guards on a small array; here it costs
 * ~0.05 us.
 *
 * Built at first use by the C compiler (backends/numpy/toolchain.py); without one,
 * graphc/fastcall.py's Python base class does the same, slower.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#define KEY_WORDS 256  /* arguments x (ndim + 2) words a key can hold */

/* A compiled function's hit clock: an iterator like itertools.count(), whose value
 * the fast path also advances in place. Every hit, ours or Python's, takes the next
 * value, so Python counts all hits and stamps each entry with its last one on one
 * scale; the signature cache evicts the entry with the oldest stamp. */
typedef struct {
    PyObject_HEAD
    Py_ssize_t value;
} Clock;

static PyObject *clock_next(PyObject *op) {
    return PyLong_FromSsize_t(((Clock *)op)->value++);
}

static PyType_Slot clock_slots[] = {
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, clock_next},
    {Py_tp_doc, "a hit counter shared by the C fast path and Python"},
    {0, NULL},
};

static PyType_Spec clock_spec = {
    "graphc_fastcall.Clock", sizeof(Clock), 0, Py_TPFLAGS_DEFAULT, clock_slots,
};

static PyObject *clock_type;  /* set at module init */

typedef struct {
    PyObject_HEAD
    PyObject *entries;      /* list of (key bytes, run, rebuild or None) */
    Py_ssize_t fast_hits;   /* counted under the GIL: exact */
    Clock *clock;           /* the function's hit clock (from _new_clock), or NULL */
    Py_ssize_t *used;       /* per entry: the clock's value at its last hit */
    Py_ssize_t used_cap;
} Dispatcher;

/* The key of positional args: per array (dtype number, byte order, ndim, dims...).
 * Returns the number of words, or -1 where some argument is not an ndarray. */
static Py_ssize_t make_key(PyObject *args, npy_intp *key) {
    Py_ssize_t n = PyTuple_GET_SIZE(args), len = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyTuple_GET_ITEM(args, i);
        if (!PyArray_CheckExact(a))
            return -1;
        PyArrayObject *arr = (PyArrayObject *)a;
        int nd = PyArray_NDIM(arr);
        if (len + nd + 3 > KEY_WORDS)
            return -1;
        PyArray_Descr *d = PyArray_DESCR(arr);
        key[len++] = d->type_num;
        key[len++] = d->byteorder == '>' ? 1 : 0;
        key[len++] = nd;
        npy_intp *dims = PyArray_DIMS(arr);
        for (int k = 0; k < nd; k++)
            key[len++] = dims[k];
    }
    return len;
}

static PyObject *slow_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    PyObject *method = PyObject_GetAttrString(self, "_py_call");
    if (method == NULL)
        return NULL;
    PyObject *out = PyObject_Call(method, args, kwargs);
    Py_DECREF(method);
    return out;
}

static PyObject *dispatcher_call(PyObject *op, PyObject *args, PyObject *kwargs) {
    Dispatcher *self = (Dispatcher *)op;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)
        return slow_call(op, args, kwargs);
    npy_intp key[KEY_WORDS];
    Py_ssize_t len = make_key(args, key);
    if (len < 0 || self->entries == NULL)
        return slow_call(op, args, kwargs);
    Py_ssize_t bytes = len * (Py_ssize_t)sizeof(npy_intp);
    Py_ssize_t count = PyList_GET_SIZE(self->entries);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *entry = PyList_GET_ITEM(self->entries, i);
        PyObject *stored = PyTuple_GET_ITEM(entry, 0);
        if (PyBytes_GET_SIZE(stored) != bytes ||
            memcmp(PyBytes_AS_STRING(stored), key, (size_t)bytes) != 0)
            continue;
        self->fast_hits++;
        if (self->clock != NULL)
            self->used[i] = self->clock->value++;
        PyObject *run = PyTuple_GET_ITEM(entry, 1), *rebuild = PyTuple_GET_ITEM(entry, 2);
        Py_INCREF(entry);  /* a concurrent _clear must not free what we call */
        PyObject *outputs = PyObject_Call(run, args, NULL);
        PyObject *result = NULL;
        if (outputs != NULL) {
            if (rebuild == Py_None) {
                result = PyTuple_GET_ITEM(outputs, 0);
                Py_INCREF(result);
            } else {
                result = PyObject_CallOneArg(rebuild, outputs);
            }
            Py_DECREF(outputs);
        }
        Py_DECREF(entry);
        return result;
    }
    return slow_call(op, args, kwargs);
}

/* _register(args, run, rebuild, clock): later calls with arguments like `args` go to
 * run; each such hit advances `clock` (a Clock from _new_clock) and stamps the entry. */
static PyObject *dispatcher_register(PyObject *op, PyObject *const *argv, Py_ssize_t argc) {
    Dispatcher *self = (Dispatcher *)op;
    if (argc != 4 || !PyTuple_Check(argv[0]) ||
            !PyObject_TypeCheck(argv[3], (PyTypeObject *)clock_type)) {
        PyErr_SetString(PyExc_TypeError, "_register(args: tuple, run, rebuild, clock: Clock)");
        return NULL;
    }
    Py_INCREF(argv[3]);
    Py_XSETREF(self->clock, (Clock *)argv[3]);
    npy_intp key[KEY_WORDS];
    Py_ssize_t len = make_key(argv[0], key);
    if (len < 0)  /* not all plain arrays: such calls keep taking the Python path */
        Py_RETURN_FALSE;
    if (self->entries == NULL && (self->entries = PyList_New(0)) == NULL)
        return NULL;
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)key,
                                                len * (Py_ssize_t)sizeof(npy_intp));
    if (bytes == NULL)
        return NULL;
    PyObject *entry = PyTuple_Pack(3, bytes, argv[1], argv[2]);
    Py_DECREF(bytes);
    if (entry == NULL)
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(self->entries);
    if (count >= self->used_cap) {
        Py_ssize_t cap = 2 * count + 8;
        Py_ssize_t *used = PyMem_Realloc(self->used, (size_t)cap * sizeof(Py_ssize_t));
        if (used == NULL) {
            Py_DECREF(entry);
            return PyErr_NoMemory();
        }
        self->used = used;
        self->used_cap = cap;
    }
    int failed = PyList_Append(self->entries, entry);
    Py_DECREF(entry);
    if (failed)
        return NULL;
    self->used[count] = 0;
    Py_RETURN_TRUE;
}

/* _forget(run): drop every entry that calls `run` (an evicted signature). */
static PyObject *dispatcher_forget(PyObject *op, PyObject *run) {
    Dispatcher *self = (Dispatcher *)op;
    if (self->entries == NULL)
        Py_RETURN_NONE;
    Py_ssize_t kept = 0, count = PyList_GET_SIZE(self->entries);
    PyObject *left = PyList_New(0);
    if (left == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *entry = PyList_GET_ITEM(self->entries, i);
        if (PyTuple_GET_ITEM(entry, 1) == run)
            continue;
        if (PyList_Append(left, entry) < 0) {
            Py_DECREF(left);
            return NULL;
        }
        self->used[kept++] = self->used[i];
    }
    Py_SETREF(self->entries, left);  /* a call under way holds its own entry */
    Py_RETURN_NONE;
}

/* _fast_used() -> [(run, stamp of its last hit here, 0 if none)] */
static PyObject *dispatcher_used(PyObject *op, PyObject *unused) {
    Dispatcher *self = (Dispatcher *)op;
    Py_ssize_t count = self->entries == NULL ? 0 : PyList_GET_SIZE(self->entries);
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *run = PyTuple_GET_ITEM(PyList_GET_ITEM(self->entries, i), 1);
        PyObject *pair = Py_BuildValue("(On)", run, self->used[i]);
        if (pair == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, pair);
    }
    return out;
}

static PyObject *dispatcher_clear(PyObject *op, PyObject *unused) {
    Dispatcher *self = (Dispatcher *)op;
    Py_CLEAR(self->entries);
    Py_CLEAR(self->clock);
    self->fast_hits = 0;
    Py_RETURN_NONE;
}

/* _new_clock() -> a fresh Clock at 0 (the hit counter of a compiled function) */
static PyObject *dispatcher_new_clock(PyObject *unused_cls, PyObject *unused) {
    return PyObject_CallNoArgs(clock_type);
}

static int dispatcher_traverse(PyObject *op, visitproc visit, void *arg) {
    Py_VISIT(((Dispatcher *)op)->entries);
    Py_VISIT(((Dispatcher *)op)->clock);
    Py_VISIT(Py_TYPE(op));
    return 0;
}

static int dispatcher_tp_clear(PyObject *op) {
    Py_CLEAR(((Dispatcher *)op)->entries);
    Py_CLEAR(((Dispatcher *)op)->clock);
    return 0;
}

static void dispatcher_dealloc(PyObject *op) {
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    dispatcher_tp_clear(op);
    PyMem_Free(((Dispatcher *)op)->used);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMethodDef dispatcher_methods[] = {
    {"_register", (PyCFunction)(void (*)(void))dispatcher_register, METH_FASTCALL,
     "_register(args, run, rebuild, clock): route calls with arguments like args to run"},
    {"_forget", dispatcher_forget, METH_O, "_forget(run): drop the entries that call run"},
    {"_fast_used", dispatcher_used, METH_NOARGS,
     "[(run, clock value at its last hit)] of every registered signature"},
    {"_clear_fast", dispatcher_clear, METH_NOARGS, "forget every registered signature"},
    {"_new_clock", dispatcher_new_clock, METH_NOARGS | METH_STATIC,
     "a hit counter that this fast path advances too"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef dispatcher_members[] = {
    {"_fast_hits", T_PYSSIZET, offsetof(Dispatcher, fast_hits), READONLY,
     "calls served by the C fast path"},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot dispatcher_slots[] = {
    {Py_tp_call, dispatcher_call},
    {Py_tp_methods, dispatcher_methods},
    {Py_tp_members, dispatcher_members},
    {Py_tp_traverse, dispatcher_traverse},
    {Py_tp_clear, dispatcher_tp_clear},
    {Py_tp_dealloc, dispatcher_dealloc},
    {Py_tp_doc, "graphc's call fast path (see graphc/fastcall.c)"},
    {0, NULL},
};

static PyType_Spec dispatcher_spec = {
    "graphc_fastcall.Dispatcher", sizeof(Dispatcher), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, dispatcher_slots,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "graphc_fastcall", NULL, -1, NULL,
};

PyMODINIT_FUNC PyInit_graphc_fastcall(void) {
    import_array();
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    clock_type = PyType_FromSpec(&clock_spec);
    if (clock_type == NULL) {
        Py_DECREF(module);
        return NULL;
    }
    PyObject *type = PyType_FromSpec(&dispatcher_spec);
    if (type == NULL || PyModule_AddObject(module, "Dispatcher", type) < 0) {
        Py_XDECREF(type);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
