// libhdf5 for Swift: the macros that hide globals behind H5OPEN do not import, so they are wrapped here.
#include <hdf5.h>
