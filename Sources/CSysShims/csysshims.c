// The header's static inline functions are the whole module; SwiftPM needs one source file.
#include "csysshims.h"
