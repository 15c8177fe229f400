/* The offsets pytrace reads in CPython 3.8-3.12, from the interpreter's own
 * headers: compiled by `cargo xtask cpython-offsets` once per version against
 * its include directory (internal headers included, Py_BUILD_CORE), printed
 * as "name value" lines. 3.13 and later publish them in _Py_DebugOffsets. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <frameobject.h>
#if PY_MINOR_VERSION >= 9
#include <internal/pycore_interp.h>
#endif
#if PY_MINOR_VERSION >= 11
#include <internal/pycore_frame.h>
#endif
#include <internal/pycore_pystate.h>
#include <stddef.h>
#include <stdio.h>

#define SHOW(name, value) printf("%s %zu\n", name, (size_t)(value))

int main(void) {
    SHOW("interpreters_head", offsetof(_PyRuntimeState, interpreters.head));
    SHOW("tstate_next", offsetof(PyThreadState, next));
    SHOW("tstate_interp", offsetof(PyThreadState, interp));
#if PY_MINOR_VERSION <= 10
    SHOW("threads_head", offsetof(PyInterpreterState, tstate_head));
    SHOW("tstate_frame", offsetof(PyThreadState, frame));
    SHOW("frame_back", offsetof(PyFrameObject, f_back));
    SHOW("frame_code", offsetof(PyFrameObject, f_code));
    SHOW("frame_instr", offsetof(PyFrameObject, f_lasti));
#if PY_MINOR_VERSION == 10
    SHOW("frame_state", offsetof(PyFrameObject, f_state));
#else
    SHOW("frame_state", offsetof(PyFrameObject, f_stacktop));
#endif
#if PY_MINOR_VERSION == 10
    SHOW("code_linetable", offsetof(PyCodeObject, co_linetable));
#else
    SHOW("code_linetable", offsetof(PyCodeObject, co_lnotab));
#endif
#else
    SHOW("threads_head", offsetof(PyInterpreterState, threads.head));
    SHOW("tstate_native_thread_id", offsetof(PyThreadState, native_thread_id));
    SHOW("tstate_frame", offsetof(PyThreadState, cframe));
    SHOW("cframe_current", offsetof(_PyCFrame, current_frame));
    SHOW("frame_back", offsetof(_PyInterpreterFrame, previous));
    SHOW("frame_code", offsetof(_PyInterpreterFrame, f_code));
    SHOW("frame_instr", offsetof(_PyInterpreterFrame, prev_instr));
    SHOW("frame_owner", offsetof(_PyInterpreterFrame, owner));
    SHOW("code_qualname", offsetof(PyCodeObject, co_qualname));
    SHOW("code_linetable", offsetof(PyCodeObject, co_linetable));
    SHOW("code_adaptive", offsetof(PyCodeObject, co_code_adaptive));
#endif
    SHOW("code_filename", offsetof(PyCodeObject, co_filename));
    SHOW("code_name", offsetof(PyCodeObject, co_name));
    SHOW("code_firstlineno", offsetof(PyCodeObject, co_firstlineno));
    SHOW("unicode_length", offsetof(PyASCIIObject, length));
    SHOW("unicode_state", offsetof(PyASCIIObject, state));
    SHOW("unicode_ascii_data", sizeof(PyASCIIObject));
    SHOW("unicode_compact_data", sizeof(PyCompactUnicodeObject));
    SHOW("bytes_size", offsetof(PyVarObject, ob_size));
    SHOW("bytes_data", offsetof(PyBytesObject, ob_sval));
    return 0;
}
