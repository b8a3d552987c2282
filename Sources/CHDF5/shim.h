// libhdf5 for Swift: the macros that hide globals behind H5OPEN do not import, so they are wrapped here.
#include <hdf5.h>

static inline unsigned kedge_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline hid_t kedge_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t kedge_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t kedge_H5T_C_S1(void) { return H5T_C_S1; }
static inline size_t kedge_H5T_VARIABLE(void) { return H5T_VARIABLE; }

// Turns off the error stacks libhdf5 prints to stderr; failures are reported through return values instead.
static inline herr_t kedge_H5_silence_errors(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
